variable "log_analytics_workspace_id" {
  description = "Workspace every diagnostic setting sends to."
  type        = string
}

variable "targets" {
  description = <<-EOT
    Resources whose diagnostic settings send every log category and every metric to this
    workspace, keyed by a static name (the keys must be known at plan time, the IDs need not be).
    Sub-resources work too, e.g. "<storage account id>/blobServices/default" or
    "<sql server id>/databases/master" (where SQL auditing's SQLSecurityAuditEvents are emitted).
  EOT
  type    = map(string)
  default = {}
}
