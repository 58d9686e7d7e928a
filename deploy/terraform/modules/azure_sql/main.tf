# Azure SQL for the metadata store and the DDZ. data_mesh connects with Azure AD tokens from its
# managed identity (DATA_MESH_METADATA_AZURE_AUTH=token, DATA_MESH_DDZ_AZURE_AUTH=token), so the
# server runs Azure AD-only authentication: no SQL admin login, no password anywhere. The server
# has no public endpoint and no firewall rule (in particular no 0.0.0.0 "allow Azure services"
# rule); clients come through the private endpoint.

data "azuread_group" "sql_admins" {
  display_name     = var.aad_admin_group_name
  security_enabled = true
}

resource "azurerm_mssql_server" "this" {
  name                          = var.server_name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  version                       = "12.0"
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false

  # Vulnerability assessment in the express configuration: scans run periodically without a
  # storage account for the results (the classic configuration needs one reachable by key or
  # through the trusted-services firewall exception).
  express_vulnerability_assessment_enabled = true

  azuread_administrator {
    login_username              = var.aad_admin_group_name
    object_id                   = data.azuread_group.sql_admins.object_id
    tenant_id                   = var.tenant_id
    azuread_authentication_only = true
  }

  identity {
    type = "SystemAssigned"
  }

  tags = var.tags
}

resource "azurerm_mssql_database" "this" {
  #checkov:skip=CKV_AZURE_224:Ledger makes every table a ledger table for good; the DDZ writer creates, drops and sp_renames staging and chunk tables on every load and the metadata store's Alembic migrations rebuild tables, so a ledger database would keep every dropped table and its history forever. Integrity evidence comes from SQL auditing to Log Analytics and the AuditLog table.
  #checkov:skip=CKV_AZURE_229:Zone redundancy is chosen per environment (databases[*].zone_redundant): true in QA and PROD, off in DEV and INT to keep the small serverless SKUs; test_deploy_terraform asserts PROD keeps it on.
  for_each = var.databases

  name                        = each.value.name
  server_id                   = azurerm_mssql_server.this.id
  collation                   = "SQL_Latin1_General_CP1_CI_AS"
  sku_name                    = each.value.sku_name
  max_size_gb                 = each.value.max_size_gb
  zone_redundant              = each.value.zone_redundant
  storage_account_type        = each.value.backup_storage_redundancy
  min_capacity                = each.value.min_capacity
  auto_pause_delay_in_minutes = each.value.auto_pause_delay_in_minutes

  # Transparent data encryption with the service-managed key (Azure's default, stated here so a
  # change is a reviewed diff). A customer-managed TDE protector would be set on the server with
  # transparent_data_encryption_key_vault_key_id.
  transparent_data_encryption_enabled = true
  ledger_enabled                      = false

  short_term_retention_policy {
    retention_days           = each.value.short_term_retention_days
    backup_interval_in_hours = 12
  }

  tags = var.tags
}

# Server-level auditing (inherited by every database) to Azure Monitor: the records are emitted
# as SQLSecurityAuditEvents by the master database, whose diagnostic setting sends them to Log
# Analytics (module diagnostic_settings, target "sql_master").
resource "azurerm_mssql_server_extended_auditing_policy" "this" {
  server_id              = azurerm_mssql_server.this.id
  log_monitoring_enabled = true
  retention_in_days      = var.audit_retention_days
}

# Microsoft Defender for SQL threat detection: every alert type, mailed to the platform team and
# to the subscription admins.
resource "azurerm_mssql_server_security_alert_policy" "this" {
  resource_group_name  = var.resource_group_name
  server_name          = azurerm_mssql_server.this.name
  state                = "Enabled"
  disabled_alerts      = []
  email_account_admins = true
  email_addresses      = var.security_alert_emails
}

resource "azurerm_private_endpoint" "sql" {
  name                = "pe-${var.server_name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.server_name}"
    private_connection_resource_id = azurerm_mssql_server.this.id
    subresource_names              = ["sqlServer"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}
