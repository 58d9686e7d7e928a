# data_mesh in one environment. The four roots (dev, int, qa, prod) have the same main.tf,
# variables.tf, providers.tf and outputs.tf (test_deploy_terraform checks they are identical);
# only terraform.tfvars (sizes, SKUs, redundancy) and backend.tf (the state key) differ.

data "azurerm_client_config" "current" {}

locals {
  # Names: <kind>-<prefix>-<env>, e.g. sql-data-mesh-dev, psql-data-mesh-dev, aks-data-mesh-dev;
  # the storage account has no hyphens (stdatameshdev). deploy/helm/values-<env>.yaml and the CD
  # pipeline's variable groups use the same names.
  name_prefix = "${var.name_prefix}-${var.environment}"

  tags = merge(var.tags, {
    application = "data_mesh"
    environment = var.environment
    managed_by  = "terraform"
  })

  # Lake containers for the user-code identity (see modules/aks_dagster,
  # azurerm_role_assignment.user_code_lake): it reads the CDZ and the query files, and writes
  # quarantined rows, compute logs, the DDZ spool (which it removes after each load) and the
  # definitions' state (dagster-defs-state: the CD pipeline's refresh Job runs as this identity
  # and publishes it; code servers read it). The CD pipeline publishes the query files.
  lake_container_roles = {
    for name, scope in module.adls.container_scopes : name => {
      scope = scope
      role  = (
        contains(["quarantine", "dagster-logs", "spool", "dagster-defs-state"], name) || (name == "cdz" && var.dagster_writes_cdz)
        ? "Storage Blob Data Contributor"
        : "Storage Blob Data Reader"
      )
    }
  }

  # What data_mesh reads from its environment (README "Point data_mesh at Azure"), for the Helm
  # values and the CD pipeline's variable group. No secret: the workload identity authenticates
  # to the lake, SQL and Key Vault.
  app_settings = merge({
    DATA_MESH_ENV                     = upper(var.environment)
    DATA_MESH_METADATA_AZURE_SERVER   = module.azure_sql.server_fqdn
    DATA_MESH_METADATA_AZURE_DATABASE = module.azure_sql.database_names["metadata"]
    DATA_MESH_METADATA_AZURE_AUTH     = "token"
    DATA_MESH_LAKE                    = "adls"
    DATA_MESH_ADLS_ACCOUNT            = module.adls.storage_account_name
    DATA_MESH_ADLS_CREDENTIAL         = "default"
    DATA_MESH_ADLS_ENDPOINT_SUFFIX    = "core.windows.net"
    DATA_MESH_DDZ_JDBC_URL            = module.azure_sql.ddz_jdbc_url
    DATA_MESH_DDZ_AZURE_AUTH          = "token"
  }, var.spark_remote == "" ? {} : { DATA_MESH_SPARK_REMOTE = var.spark_remote })
}

# The shared registry with the data-mesh-user-code image (not managed here).
data "azurerm_container_registry" "images" {
  count = var.container_registry_name == "" ? 0 : 1

  name                = var.container_registry_name
  resource_group_name = var.container_registry_resource_group_name
}

resource "azurerm_resource_group" "this" {
  name     = "rg-${local.name_prefix}"
  location = var.location
  tags     = local.tags
}

module "network" {
  source = "../../modules/network"

  name_prefix         = local.name_prefix
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = var.vnet_address_space
  subnet_prefixes     = var.subnet_prefixes
  tags                = local.tags
}

module "log_analytics" {
  source = "../../modules/log_analytics"

  name                = "log-${local.name_prefix}"
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

module "adls" {
  source = "../../modules/adls"

  name                                 = "st${var.storage_name_prefix}${var.environment}"
  location                             = var.location
  resource_group_name                  = azurerm_resource_group.this.name
  account_replication_type             = var.lake_replication_type
  blob_soft_delete_retention_days      = var.lake_soft_delete_retention_days
  container_soft_delete_retention_days = var.lake_soft_delete_retention_days
  private_endpoint_subnet_id           = module.network.private_endpoints_subnet_id
  tags                                 = local.tags

  private_dns_zone_ids = {
    blob = module.network.private_dns_zone_ids["blob"]
    dfs  = module.network.private_dns_zone_ids["dfs"]
  }
}

module "key_vault" {
  source = "../../modules/key_vault"

  name                       = "kv-${local.name_prefix}"
  location                   = var.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  secret_names               = var.key_vault_secret_names
  secrets_officer_group_name = var.secrets_officer_group_name
  private_endpoint_subnet_id = module.network.private_endpoints_subnet_id
  private_dns_zone_id        = module.network.private_dns_zone_ids["vault"]
  tags                       = local.tags
}

module "azure_sql" {
  source = "../../modules/azure_sql"

  server_name                = "sql-${local.name_prefix}"
  location                   = var.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  aad_admin_group_name       = var.sql_admin_group_name
  databases                  = var.sql_databases
  security_alert_emails      = var.security_alert_emails
  audit_retention_days       = var.log_retention_days
  private_endpoint_subnet_id = module.network.private_endpoints_subnet_id
  private_dns_zone_id        = module.network.private_dns_zone_ids["sql"]
  tags                       = local.tags
}

module "databricks" {
  source = "../../modules/databricks"

  name                         = "dbw-${local.name_prefix}"
  location                     = var.location
  resource_group_name          = azurerm_resource_group.this.name
  managed_resource_group_name  = "rg-${local.name_prefix}-databricks-managed"
  virtual_network_id           = module.network.virtual_network_id
  host_subnet_name             = module.network.databricks_host_subnet_name
  container_subnet_name        = module.network.databricks_container_subnet_name
  host_nsg_association_id      = module.network.databricks_host_nsg_association_id
  container_nsg_association_id = module.network.databricks_container_nsg_association_id
  private_endpoint_subnet_id   = module.network.private_endpoints_subnet_id
  private_dns_zone_id          = module.network.private_dns_zone_ids["databricks"]
  lake_storage_account_id      = module.adls.storage_account_id
  dagster_client_id            = module.aks_dagster.user_code_identity_client_id
  dagster_identity_name        = module.aks_dagster.user_code_identity_name
  allowed_node_types           = var.databricks_node_types
  max_workers                  = var.databricks_max_workers
  autotermination_minutes      = var.databricks_autotermination_minutes
  tags                         = local.tags
}

module "aks_dagster" {
  source = "../../modules/aks_dagster"

  name_prefix                = local.name_prefix
  location                   = var.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  kubernetes_version         = var.kubernetes_version
  sku_tier                   = var.aks_sku_tier
  aks_subnet_id              = module.network.aks_subnet_id
  aks_admin_group_name       = var.aks_admin_group_name
  availability_zones         = var.availability_zones
  system_node_pool           = var.aks_system_node_pool
  user_node_pool             = var.aks_user_node_pool
  log_analytics_workspace_id = module.log_analytics.workspace_id
  container_registry_id      = var.container_registry_name == "" ? null : data.azurerm_container_registry.images[0].id
  key_vault_id               = module.key_vault.id
  sql_database_names         = module.azure_sql.database_names

  lake_container_roles         = local.lake_container_roles
  compute_logs_container_scope = module.adls.container_scopes["dagster-logs"]

  postgres_admin_group_name             = var.postgres_admin_group_name
  postgres_sku_name                     = var.postgres_sku_name
  postgres_storage_mb                   = var.postgres_storage_mb
  postgres_backup_retention_days        = var.postgres_backup_retention_days
  postgres_geo_redundant_backup_enabled = var.postgres_geo_redundant_backup_enabled
  postgres_high_availability            = var.postgres_high_availability
  private_endpoint_subnet_id            = module.network.private_endpoints_subnet_id
  postgres_private_dns_zone_id          = module.network.private_dns_zone_ids["postgres"]

  install_dagster_chart = var.install_dagster_chart
  dagster_chart_version = var.dagster_chart_version
  dagster_values_file   = "${path.root}/../../../helm/values-${var.environment}.yaml"
  tags                  = local.tags
}

# The deployment identity (the CD pipeline's service connection, or whoever runs Terraform)
# publishes the .properties query files with data-mesh load.
resource "azurerm_role_assignment" "deployer_queries" {
  scope                = module.adls.container_scopes["queries"]
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = data.azurerm_client_config.current.object_id
}

# Every log category and metric of every resource to Log Analytics. The storage sub-services carry
# the read/write/delete logs; the master database carries the server's SQL audit records.
module "diagnostic_settings" {
  source = "../../modules/log_analytics/diagnostic_settings"

  log_analytics_workspace_id = module.log_analytics.workspace_id

  targets = {
    lake         = module.adls.storage_account_id
    lake_blob    = "${module.adls.storage_account_id}/blobServices/default"
    lake_queue   = "${module.adls.storage_account_id}/queueServices/default"
    key_vault    = module.key_vault.id
    sql_master   = module.azure_sql.master_database_id
    sql_metadata = module.azure_sql.database_ids["metadata"]
    sql_ddz      = module.azure_sql.database_ids["ddz"]
    aks          = module.aks_dagster.cluster_id
    postgres     = module.aks_dagster.postgres_server_id
    databricks   = module.databricks.workspace_id
  }
}
