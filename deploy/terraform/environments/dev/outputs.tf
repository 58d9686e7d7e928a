output "resource_group_name" {
  description = "Resource group of the environment."
  value       = azurerm_resource_group.this.name
}

output "data_mesh_settings" {
  description = "DATA_MESH_* settings of this environment."
  value       = local.app_settings
}

output "key_vault_secret_references" {
  description = "keyvault:// references to put in metadata rows; set the values with az keyvault secret set."
  value       = module.key_vault.secret_references
}

output "user_code_identity_client_id" {
  description = "USER_CODE_IDENTITY_CLIENT_ID of the CD pipeline's variable group (data-mesh-user-code service account)."
  value       = module.aks_dagster.user_code_identity_client_id
}

output "system_identity_client_id" {
  description = "Client ID of the webserver/daemon identity (set on the dagster service account by Terraform)."
  value       = module.aks_dagster.system_identity_client_id
}

output "sql_create_user_statements" {
  description = "Run once per database as a SQL Azure AD admin (CREATE USER ... FROM EXTERNAL PROVIDER)."
  value       = module.aks_dagster.sql_create_user_statements
}

output "postgres_bootstrap_statements" {
  description = "Run once as a PostgreSQL Azure AD admin, then create the Kubernetes secret."
  value       = module.aks_dagster.postgres_bootstrap_statements
}

output "databricks_workspace_url" {
  description = "Workspace host for Databricks Connect (DATA_MESH_SPARK_REMOTE)."
  value       = module.databricks.workspace_url
}

output "databricks_access_connector_id" {
  description = "Access connector for the Unity Catalog storage credential."
  value       = module.databricks.access_connector_id
}

output "aks_cluster_name" {
  description = "AKS_CLUSTER_NAME of the CD pipeline's variable group (AKS_RESOURCE_GROUP is resource_group_name)."
  value       = module.aks_dagster.cluster_name
}

output "log_analytics_workspace_id" {
  description = "Log Analytics workspace with every diagnostic log and SQL audit record."
  value       = module.log_analytics.workspace_id
}
