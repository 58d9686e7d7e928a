variable "name" {
  description = "Storage account name (3-24 lowercase letters and digits, globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.name))
    error_message = "A storage account name has 3 to 24 lowercase letters and digits."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the lake."
  type        = string
}

variable "account_replication_type" {
  description = "Replication of the lake. Only geo-redundant kinds: the CDZ is the source every DDZ table is rebuilt from."
  type        = string

  validation {
    condition     = contains(["GRS", "RAGRS", "GZRS", "RAGZRS"], var.account_replication_type)
    error_message = "account_replication_type must be GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "containers" {
  description = "Containers of the lake: cdz (curated inputs), queries (.properties files), quarantine (rows rejected by drop rules), dagster-logs (compute logs), spool (each DDZ load spooled once by the Spark cluster, removed after publish), dagster-defs-state (the Dagster instance's defs_state_storage: the versions of the data_mesh definitions' state, never expired, as the latest one is what every code server loads)."
  type        = list(string)
  default     = ["cdz", "queries", "quarantine", "dagster-logs", "spool", "dagster-defs-state"]
}

variable "blob_soft_delete_retention_days" {
  description = "Days a deleted blob (or directory) can be restored."
  type        = number
  default     = 14
}

variable "container_soft_delete_retention_days" {
  description = "Days a deleted container can be restored."
  type        = number
  default     = 14
}

variable "dagster_logs_retention_days" {
  description = "Compute logs under dagster-logs/ are deleted after this many days."
  type        = number
  default     = 30
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the private endpoints."
  type        = string
}

variable "private_dns_zone_ids" {
  description = "Private DNS zone per storage sub-resource that gets a private endpoint (blob and dfs)."
  type = object({
    blob = string
    dfs  = string
  })
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
