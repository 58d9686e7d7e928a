output "cluster_id" {
  description = "Resource ID of the AKS cluster."
  value       = azurerm_kubernetes_cluster.this.id
}

output "cluster_name" {
  description = "AKS cluster name (az aks get-credentials, then kubelogin convert-kubeconfig -l azurecli)."
  value       = azurerm_kubernetes_cluster.this.name
}

output "kube_host" {
  description = "Private API server endpoint."
  value       = azurerm_kubernetes_cluster.this.kube_config[0].host
  sensitive   = true
}

output "cluster_ca_certificate" {
  description = "Base64 CA certificate of the API server."
  value       = azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate
  sensitive   = true
}

output "oidc_issuer_url" {
  description = "OIDC issuer the federated credential trusts."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "system_identity_client_id" {
  description = "Client ID of the webserver/daemon identity (annotation of the dagster service account; Terraform sets it)."
  value       = azurerm_user_assigned_identity.system.client_id
}

output "user_code_identity_name" {
  description = "Name of the user-code identity: the SQL user name, the Databricks service principal's display name."
  value       = azurerm_user_assigned_identity.user_code.name
}

output "user_code_identity_client_id" {
  description = "Client ID of the user-code identity: USER_CODE_IDENTITY_CLIENT_ID of the CD pipeline (annotation of the data-mesh-user-code service account), AZURE_CLIENT_ID in those pods."
  value       = azurerm_user_assigned_identity.user_code.client_id
}

output "user_code_identity_principal_id" {
  description = "Object (principal) ID of the user-code identity."
  value       = azurerm_user_assigned_identity.user_code.principal_id
}

output "databricks_token_scope" {
  description = "Scope the user-code identity asks an Azure AD token for when it calls Databricks (the Azure Databricks application)."
  value       = "${local.azure_databricks_resource}/.default"
}

output "sql_create_user_statements" {
  description = <<-EOT
    T-SQL to run once per database as a member of the SQL Azure AD admin group (sqlcmd -G, or the
    portal's query editor). Terraform cannot run it: that needs a SQL provider and a network path
    into the database.
  EOT
  value = {
    for key, database in var.sql_database_names : key => join("\n", concat(
      ["-- database ${database}", "CREATE USER [${azurerm_user_assigned_identity.user_code.name}] FROM EXTERNAL PROVIDER;"],
      [for role in local.sql_roles[key] : "ALTER ROLE ${role} ADD MEMBER [${azurerm_user_assigned_identity.user_code.name}];"],
    ))
  }
}

output "postgres_server_id" {
  description = "Resource ID of the PostgreSQL server."
  value       = azurerm_postgresql_flexible_server.dagster.id
}

output "postgres_fqdn" {
  description = "Host of Dagster's PostgreSQL (resolves to the private endpoint inside the VNet)."
  value       = azurerm_postgresql_flexible_server.dagster.fqdn
}

output "postgres_bootstrap_statements" {
  description = <<-EOT
    Run once, connected to the postgres database as a member of the PostgreSQL Azure AD admin group
    (psql with an Azure AD access token as the password), with the dagster role's password from
    Key Vault in the psql variable dagster_pw (\set dagster_pw ...). Then create the Kubernetes
    secret the chart reads from the same Key Vault secret (the last line, run in a shell).
  EOT
  value = join("\n", [
    "CREATE ROLE ${var.postgres_dagster_role} WITH LOGIN PASSWORD :'dagster_pw';",
    "CREATE DATABASE ${var.postgres_database_name} OWNER ${var.postgres_dagster_role};",
    "-- az keyvault secret show --vault-name <vault> --name ${var.postgres_password_secret_name} --query value -o tsv | tr -d '\\n' | kubectl -n ${var.kubernetes_namespace} create secret generic ${local.postgres_password_k8s} --from-file=postgresql-password=/dev/stdin",
  ])
}

output "kubernetes_namespace" {
  description = "Namespace of the Dagster release."
  value       = kubernetes_namespace_v1.dagster.metadata[0].name
}
