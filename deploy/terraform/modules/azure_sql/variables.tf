variable "server_name" {
  description = "Logical SQL server name; DATA_MESH_METADATA_AZURE_SERVER is <name>.database.windows.net."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the server."
  type        = string
}

variable "tenant_id" {
  description = "Azure AD tenant."
  type        = string
}

variable "aad_admin_group_name" {
  description = "Azure AD security group that administers the server. Azure AD is the only authentication: there is no SQL login and no password."
  type        = string
}

variable "databases" {
  description = <<-EOT
    The two databases: "metadata" (the metadata store, DATA_MESH_METADATA_AZURE_DATABASE) and
    "ddz" (the DDZ tables, the database of DATA_MESH_DDZ_JDBC_URL). backup_storage_redundancy is
    Geo, GeoZone, Local or Zone. min_capacity and auto_pause_delay_in_minutes apply to serverless
    SKUs (GP_S_*) only; leave them null otherwise.
  EOT
  type = map(object({
    name                        = string
    sku_name                    = string
    max_size_gb                 = number
    zone_redundant              = bool
    backup_storage_redundancy   = string
    short_term_retention_days   = number
    min_capacity                = optional(number)
    auto_pause_delay_in_minutes = optional(number)
  }))

  validation {
    condition     = alltrue([for key in ["metadata", "ddz"] : contains(keys(var.databases), key)])
    error_message = "databases needs the keys metadata and ddz."
  }
}

variable "security_alert_emails" {
  description = "Addresses Microsoft Defender for SQL alerts (threat detection) are sent to."
  type        = list(string)

  validation {
    condition     = length(var.security_alert_emails) > 0
    error_message = "Give at least one address for SQL security alerts."
  }
}

variable "audit_retention_days" {
  description = "Retention of the auditing policy (the Log Analytics workspace retention must be at least as long)."
  type        = number
  default     = 90

  validation {
    condition     = var.audit_retention_days >= 90
    error_message = "Keep SQL audit records at least 90 days."
  }
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the private endpoints."
  type        = string
}

variable "private_dns_zone_id" {
  description = "privatelink.database.windows.net zone ID."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
