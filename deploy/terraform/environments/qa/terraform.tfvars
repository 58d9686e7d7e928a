# QA: production-like redundancy (zones, zone-redundant SQL and lake) at smaller sizes.
environment = "qa"
location    = "westeurope"
tags = {
  cost_center = "data-platform"
  owner       = "platform-data-engineering"
}

vnet_address_space = ["10.42.0.0/16"]
subnet_prefixes = {
  private_endpoints    = "10.42.0.0/24"
  aks                  = "10.42.4.0/22"
  databricks_host      = "10.42.8.0/24"
  databricks_container = "10.42.9.0/24"
}
availability_zones = ["1", "2", "3"]

log_retention_days = 180

lake_replication_type           = "GZRS"
lake_soft_delete_retention_days = 14

key_vault_secret_names     = ["alert-webhook-url", "dagster-postgresql-password", "source-erp-jdbc-url"]
secrets_officer_group_name = "sg-data-mesh-qa-secrets-officers"

sql_admin_group_name = "sg-data-mesh-qa-sql-admins"
sql_databases = {
  metadata = {
    name                        = "data_mesh_metadata"
    sku_name                    = "GP_S_Gen5_2"
    max_size_gb                 = 16
    zone_redundant              = true
    backup_storage_redundancy   = "Zone"
    short_term_retention_days   = 14
    min_capacity                = 0.5
    auto_pause_delay_in_minutes = -1
  }
  ddz = {
    name                      = "data_mesh_ddz"
    sku_name                  = "GP_Gen5_4"
    max_size_gb               = 128
    zone_redundant            = true
    backup_storage_redundancy = "Zone"
    short_term_retention_days = 14
  }
}
security_alert_emails = ["data-platform-security@contoso.com"]

databricks_node_types  = ["Standard_D4ds_v5", "Standard_D8ds_v5"]
databricks_max_workers = 6

aks_sku_tier         = "Standard"
aks_admin_group_name = "sg-data-mesh-qa-aks-admins"
aks_system_node_pool = {
  vm_size         = "Standard_D2ds_v5"
  min_count       = 2
  max_count       = 3
  os_disk_size_gb = 64
}
aks_user_node_pool = {
  vm_size         = "Standard_D4ds_v5"
  min_count       = 2
  max_count       = 4
  os_disk_size_gb = 128
}
container_registry_name                = "acrdatamesh"
container_registry_resource_group_name = "rg-data-mesh-shared"

dagster_writes_cdz = false

postgres_admin_group_name             = "sg-data-mesh-qa-postgres-admins"
postgres_sku_name                     = "GP_Standard_D2ds_v5"
postgres_backup_retention_days        = 14
postgres_geo_redundant_backup_enabled = false
postgres_high_availability            = true
