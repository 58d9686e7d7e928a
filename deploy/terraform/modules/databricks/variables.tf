variable "name" {
  description = "Workspace name."
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

variable "managed_resource_group_name" {
  description = "Resource group Azure Databricks manages for the workspace (DBFS root, cluster VMs' disks)."
  type        = string
}

variable "virtual_network_id" {
  description = "VNet the clusters are injected into."
  type        = string
}

variable "host_subnet_name" {
  description = "Host (\"public\") subnet, delegated to Microsoft.Databricks/workspaces."
  type        = string
}

variable "container_subnet_name" {
  description = "Container (\"private\") subnet, delegated to Microsoft.Databricks/workspaces."
  type        = string
}

variable "host_nsg_association_id" {
  description = "NSG association of the host subnet."
  type        = string
}

variable "container_nsg_association_id" {
  description = "NSG association of the container subnet."
  type        = string
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the private endpoints."
  type        = string
}

variable "private_dns_zone_id" {
  description = "privatelink.azuredatabricks.net zone ID."
  type        = string
}

variable "create_browser_authentication_endpoint" {
  description = "Create the browser_authentication private endpoint (one per region and private DNS zone is enough; turn off when a hub network already has it)."
  type        = bool
  default     = true
}

variable "lake_storage_account_id" {
  description = "Lake storage account; the Unity Catalog access connector gets Storage Blob Data Contributor on it."
  type        = string
}

variable "dagster_client_id" {
  description = "Client (application) ID of the Dagster user-code workload identity, registered in the workspace as a service principal."
  type        = string
}

variable "dagster_identity_name" {
  description = "Display name of that service principal."
  type        = string
}

variable "allowed_node_types" {
  description = "VM sizes the data_mesh cluster policy allows; the first is the default."
  type        = list(string)
}

variable "max_workers" {
  description = "Largest autoscaling size the cluster policy allows."
  type        = number
}

variable "autotermination_minutes" {
  description = "Idle minutes after which a cluster created under the policy stops."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
