variable "name" {
  description = "Key Vault name (3-24 letters, digits and hyphens); the <vault> of keyvault://<vault>/<secret>."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$", var.name))
    error_message = "A Key Vault name has 3 to 24 letters, digits and hyphens, starts with a letter and does not end with a hyphen."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the vault."
  type        = string
}

variable "tenant_id" {
  description = "Azure AD tenant of the vault."
  type        = string
}

variable "sku_name" {
  description = "standard or premium."
  type        = string
  default     = "standard"
}

variable "soft_delete_retention_days" {
  description = "Days a deleted secret or vault can be recovered (7-90)."
  type        = number
  default     = 90
}

variable "secret_names" {
  description = <<-EOT
    Names of the secrets the metadata store references as keyvault://<vault>/<name>: the alert
    webhook URL (alerts.webhook_url), source database JDBC URLs with credentials
    (DataSources.ConnectionString), the Dagster PostgreSQL password. Terraform only declares the
    names; the values are set once by a member of the secrets officer group (az keyvault secret
    set) and never pass through Terraform.
  EOT
  type = list(string)

  validation {
    condition     = alltrue([for name in var.secret_names : can(regex("^[A-Za-z0-9-]{1,127}$", name))])
    error_message = "Secret names have 1 to 127 letters, digits and hyphens (data_mesh.secrets accepts nothing else)."
  }
}

variable "secrets_officer_group_name" {
  description = "Azure AD group allowed to set and rotate secret values (Key Vault Secrets Officer). Empty: no assignment."
  type        = string
  default     = ""
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the private endpoints."
  type        = string
}

variable "private_dns_zone_id" {
  description = "privatelink.vaultcore.azure.net zone ID."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
