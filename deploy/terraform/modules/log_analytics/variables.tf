variable "name" {
  description = "Name of the Log Analytics workspace."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the workspace."
  type        = string
}

variable "retention_in_days" {
  description = "Retention of the workspace. Audit logs (SQL auditing, Key Vault, AKS audit) land here, so at least 90 days."
  type        = number
  default     = 90

  validation {
    condition     = var.retention_in_days >= 90 && var.retention_in_days <= 730
    error_message = "retention_in_days must be between 90 and 730: audit logs are kept here."
  }
}

variable "daily_quota_gb" {
  description = "Daily ingestion cap in GB; -1 for none."
  type        = number
  default     = -1
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
