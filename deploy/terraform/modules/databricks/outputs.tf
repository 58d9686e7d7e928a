output "workspace_id" {
  description = "Azure resource ID of the workspace (azure_workspace_resource_id of the databricks provider)."
  value       = azurerm_databricks_workspace.this.id
}

output "workspace_url" {
  description = "Workspace host name (adb-<id>.<n>.azuredatabricks.net); Databricks Connect and DATA_MESH_SPARK_REMOTE point here."
  value       = azurerm_databricks_workspace.this.workspace_url
}

output "workspace_numeric_id" {
  description = "Numeric workspace ID."
  value       = azurerm_databricks_workspace.this.workspace_id
}

output "access_connector_id" {
  description = "Unity Catalog access connector; use it for the storage credential of the lake's external location."
  value       = azurerm_databricks_access_connector.unity_catalog.id
}

output "cluster_policy_id" {
  description = "ID of the data_mesh cluster policy."
  value       = databricks_cluster_policy.data_mesh.id
}
