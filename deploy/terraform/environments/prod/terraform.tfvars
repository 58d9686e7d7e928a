# PROD: zone-redundant everything, geo-redundant backups and lake (RA-GZRS), longest retention.
environment = "prod"
location    = "westeurope"
tags = {
  cost_center = "data-platform"
  owner       = "platform-data-engineering"
}

vnet_address_space = ["10.43.0.0/16"]
subnet_prefixes = {
  private_endpoints    = "10.43.0.0/24"
  aks                  = "10.43.4.0/22"
  databricks_host      = "10.43.8.0/23"
  databricks_container = "10.43.10.0/23"
}
availability_zones = ["1", "2", "3"]

log_retention_days = 365

lake_replication_type           = "RAGZRS"
lake_soft_delete_retention_days = 30

key_vault_secret_names     = ["alert-webhook-url", "dagster-postgresql-password", "source-erp-jdbc-url"]
secrets_officer_group_name = "sg-data-mesh-prod-secrets-officers"

sql_admin_group_name = "sg-data-mesh-prod-sql-admins"
sql_databases = {
  metadata = {
    name                      = "data_mesh_metadata"
    sku_name                  = "GP_Gen5_2"
    max_size_gb               = 32
    zone_redundant            = true
    backup_storage_redundancy = "GeoZone"
    short_term_retention_days = 35
  }
  ddz = {
    name                      = "data_mesh_ddz"
    sku_name                  = "GP_Gen5_8"
    max_size_gb               = 512
    zone_redundant            = true
    backup_storage_redundancy = "GeoZone"
    short_term_retention_days = 35
  }
}
security_alert_emails = ["data-platform-security@contoso.com", "soc@contoso.com"]

databricks_node_types  = ["Standard_D8ds_v5", "Standard_E8ds_v5", "Standard_D16ds_v5"]
databricks_max_workers = 16

aks_sku_tier         = "Standard"
aks_admin_group_name = "sg-data-mesh-prod-aks-admins"
aks_system_node_pool = {
  vm_size         = "Standard_D4ds_v5"
  min_count       = 3
  max_count       = 4
  os_disk_size_gb = 128
}
aks_user_node_pool = {
  vm_size         = "Standard_D8ds_v5"
  min_count       = 3
  max_count       = 8
  os_disk_size_gb = 128
}
container_registry_name                = "acrdatamesh"
container_registry_resource_group_name = "rg-data-mesh-shared"

dagster_writes_cdz = false

postgres_admin_group_name             = "sg-data-mesh-prod-postgres-admins"
postgres_sku_name                     = "GP_Standard_D4ds_v5"
postgres_storage_mb                   = 131072
postgres_backup_retention_days        = 35
postgres_geo_redundant_backup_enabled = true
postgres_high_availability            = true
