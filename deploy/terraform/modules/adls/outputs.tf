output "storage_account_id" {
  description = "Resource ID of the lake storage account."
  value       = azurerm_storage_account.this.id
}

output "storage_account_name" {
  description = "Lake account name: DATA_MESH_ADLS_ACCOUNT."
  value       = azurerm_storage_account.this.name
}

output "primary_dfs_endpoint" {
  description = "DFS endpoint (abfss://) of the lake."
  value       = azurerm_storage_account.this.primary_dfs_endpoint
}

output "primary_blob_endpoint" {
  description = "Blob endpoint of the lake."
  value       = azurerm_storage_account.this.primary_blob_endpoint
}

output "container_names" {
  description = "Containers of the lake."
  value       = [for container in azurerm_storage_container.this : container.name]
}

output "container_scopes" {
  description = "Azure RBAC scope (Resource Manager ID) of each container, for container-level role assignments."
  value = {
    for name in var.containers :
    name => "${azurerm_storage_account.this.id}/blobServices/default/containers/${name}"
  }
}
