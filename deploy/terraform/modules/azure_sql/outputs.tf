output "server_id" {
  description = "Resource ID of the SQL server."
  value       = azurerm_mssql_server.this.id
}

output "server_name" {
  description = "SQL server name."
  value       = azurerm_mssql_server.this.name
}

output "server_fqdn" {
  description = "DATA_MESH_METADATA_AZURE_SERVER."
  value       = azurerm_mssql_server.this.fully_qualified_domain_name
}

output "database_ids" {
  description = "Database resource IDs by key (metadata, ddz)."
  value       = { for key, database in azurerm_mssql_database.this : key => database.id }
}

output "database_names" {
  description = "Database names by key (metadata, ddz)."
  value       = { for key, database in azurerm_mssql_database.this : key => database.name }
}

output "master_database_id" {
  description = "The master database, whose diagnostic setting carries the server's audit records."
  value       = "${azurerm_mssql_server.this.id}/databases/master"
}

output "ddz_jdbc_url" {
  description = "DATA_MESH_DDZ_JDBC_URL (no credentials: the identity's token is passed separately)."
  value       = "jdbc:sqlserver://${azurerm_mssql_server.this.fully_qualified_domain_name}:1433;database=${azurerm_mssql_database.this["ddz"].name};encrypt=true;trustServerCertificate=false;hostNameInCertificate=*.database.windows.net;loginTimeout=30"
}
