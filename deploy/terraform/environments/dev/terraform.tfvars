# DEV: smallest sizes, no zone redundancy, serverless SQL that pauses when idle.
environment = "dev"
location    = "westeurope"
tags = {
  cost_center = "data-platform"
  owner       = "platform-data-engineering"
}

vnet_address_space = ["10.40.0.0/16"]
subnet_prefixes = {
  private_endpoints    = "10.40.0.0/24"
  aks                  = "10.40.4.0/22"
  databricks_host      = "10.40.8.0/24"
  databricks_container = "10.40.9.0/24"
}
availability_zones = []

log_retention_days = 90

lake_replication_type           = "GRS"
lake_soft_delete_retention_days = 7

key_vault_secret_names     = ["alert-webhook-url", "dagster-postgresql-password", "source-erp-jdbc-url"]
secrets_officer_group_name = "sg-data-mesh-dev-secrets-officers"

sql_admin_group_name = "sg-data-mesh-dev-sql-admins"
sql_databases = {
  metadata = {
    name                        = "data_mesh_metadata"
    sku_name                    = "GP_S_Gen5_1"
    max_size_gb                 = 8
    zone_redundant              = false
    backup_storage_redundancy   = "Local"
    short_term_retention_days   = 7
    min_capacity                = 0.5
    auto_pause_delay_in_minutes = 60
  }
  ddz = {
    name                        = "data_mesh_ddz"
    sku_name                    = "GP_S_Gen5_2"
    max_size_gb                 = 32
    zone_redundant              = false
    backup_storage_redundancy   = "Local"
    short_term_retention_days   = 7
    min_capacity                = 0.5
    auto_pause_delay_in_minutes = 60
  }
}
security_alert_emails = ["data-platform-security@contoso.com"]

databricks_node_types  = ["Standard_D4ds_v5"]
databricks_max_workers = 2

aks_sku_tier         = "Standard"
aks_admin_group_name = "sg-data-mesh-dev-aks-admins"
aks_system_node_pool = {
  vm_size         = "Standard_D2ds_v5"
  min_count       = 1
  max_count       = 2
  os_disk_size_gb = 64
}
aks_user_node_pool = {
  vm_size         = "Standard_D4ds_v5"
  min_count       = 1
  max_count       = 3
  os_disk_size_gb = 128
}
container_registry_name                = "acrdatamesh"
container_registry_resource_group_name = "rg-data-mesh-shared"

dagster_writes_cdz = true

postgres_admin_group_name             = "sg-data-mesh-dev-postgres-admins"
postgres_sku_name                     = "B_Standard_B1ms"
postgres_backup_retention_days        = 7
postgres_geo_redundant_backup_enabled = false
postgres_high_availability            = false
