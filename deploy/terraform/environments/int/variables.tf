variable "environment" {
  description = "Environment name (lowercase); DATA_MESH_ENV is its uppercase form."
  type        = string

  validation {
    condition     = contains(["dev", "int", "qa", "prod"], var.environment)
    error_message = "environment must be dev, int, qa or prod."
  }
}

variable "location" {
  description = "Azure region of every resource."
  type        = string
}

variable "name_prefix" {
  description = "Middle part of every resource name: <kind>-<prefix>-<env> (sql-data-mesh-dev); without hyphens in the storage account name (stdatameshdev)."
  type        = string
  default     = "data-mesh"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,10}[a-z0-9]$", var.name_prefix)) && length(replace(var.name_prefix, "-", "")) <= 18
    error_message = "name_prefix has 2 to 12 lowercase letters, digits and hyphens (it is part of globally unique names)."
  }
}

variable "storage_name_prefix" {
  description = "name_prefix without hyphens, for the storage account name (st<prefix><env>)."
  type        = string
  default     = "datamesh"

  validation {
    condition     = var.storage_name_prefix == replace(var.name_prefix, "-", "")
    error_message = "storage_name_prefix must be name_prefix without its hyphens."
  }
}

variable "tags" {
  description = "Extra tags (cost center, owner) on every resource."
  type        = map(string)
  default     = {}
}

# --- Network ------------------------------------------------------------------------------------

variable "vnet_address_space" {
  description = "Address space of the environment's VNet."
  type        = list(string)
}

variable "subnet_prefixes" {
  description = "CIDR of each subnet."
  type = object({
    private_endpoints    = string
    aks                  = string
    databricks_host      = string
    databricks_container = string
  })
}

variable "availability_zones" {
  description = "Zones for the AKS node pools; [] in DEV."
  type        = list(string)
  default     = []
}

# --- Monitoring -----------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of Log Analytics and of SQL auditing (>= 90)."
  type        = number
  default     = 90
}

# --- Lake -------------------------------------------------------------------------------------------

variable "lake_replication_type" {
  description = "GRS, RAGRS, GZRS or RAGZRS."
  type        = string
}

variable "lake_soft_delete_retention_days" {
  description = "Soft delete retention of blobs and containers."
  type        = number
  default     = 14
}

# --- Key Vault ---------------------------------------------------------------------------------------

variable "key_vault_secret_names" {
  description = "Secrets referenced as keyvault://<vault>/<name> (values are set outside Terraform)."
  type        = list(string)
}

variable "secrets_officer_group_name" {
  description = "Azure AD group that sets secret values; empty for none."
  type        = string
  default     = ""
}

# --- Azure SQL ------------------------------------------------------------------------------------

variable "sql_admin_group_name" {
  description = "Azure AD group administering the SQL server."
  type        = string
}

variable "sql_databases" {
  description = "metadata and ddz databases (see modules/azure_sql)."
  type = map(object({
    name                        = string
    sku_name                    = string
    max_size_gb                 = number
    zone_redundant              = bool
    backup_storage_redundancy   = string
    short_term_retention_days   = number
    min_capacity                = optional(number)
    auto_pause_delay_in_minutes = optional(number)
  }))
}

variable "security_alert_emails" {
  description = "Recipients of Defender for SQL alerts."
  type        = list(string)
}

# --- Databricks ---------------------------------------------------------------------------------

variable "databricks_node_types" {
  description = "VM sizes the data_mesh cluster policy allows (first is the default)."
  type        = list(string)
}

variable "databricks_max_workers" {
  description = "Largest autoscaling size of a data_mesh cluster."
  type        = number
}

variable "databricks_autotermination_minutes" {
  description = "Idle minutes before a cluster stops."
  type        = number
  default     = 30
}

variable "spark_remote" {
  description = "DATA_MESH_SPARK_REMOTE for the pods (sc://<workspace_url>:443/;x-databricks-cluster-id=<id>); empty until the cluster exists."
  type        = string
  default     = ""
}

# --- AKS and Dagster ----------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "AKS Kubernetes version; null for AKS's default."
  type        = string
  default     = null
}

variable "aks_sku_tier" {
  description = "AKS tier: Standard (uptime SLA) or Premium."
  type        = string
  default     = "Standard"
}

variable "aks_admin_group_name" {
  description = "Azure AD group with cluster-admin; the Terraform runner must be in it."
  type        = string
}

variable "aks_system_node_pool" {
  description = "System node pool size."
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = number
  })
}

variable "aks_user_node_pool" {
  description = "Dagster node pool size."
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = number
  })
}

variable "container_registry_name" {
  description = "Azure Container Registry with the data-mesh-user-code image (the kubelet identity gets AcrPull); empty for none."
  type        = string
  default     = ""
}

variable "container_registry_resource_group_name" {
  description = "Resource group of that registry."
  type        = string
  default     = ""
}

variable "kubelogin_login" {
  description = "kubelogin login mode of the kubernetes and helm providers: azurecli (az login, AzureCLI@2 tasks) or workloadidentity (federated token in AZURE_FEDERATED_TOKEN_FILE)."
  type        = string
  default     = "azurecli"

  validation {
    condition     = contains(["azurecli", "workloadidentity"], var.kubelogin_login)
    error_message = "kubelogin_login must be azurecli or workloadidentity."
  }
}

variable "dagster_writes_cdz" {
  description = "Give the Dagster identity write access to the CDZ container (DEV: data-mesh generate-sample-data)."
  type        = bool
  default     = false
}

variable "install_dagster_chart" {
  description = "Install the Dagster Helm release (false on the very first apply, see README)."
  type        = bool
  default     = true
}

variable "dagster_chart_version" {
  description = "Version of the dagster Helm chart."
  type        = string
  default     = "1.13.27"
}

variable "postgres_admin_group_name" {
  description = "Azure AD group administering Dagster's PostgreSQL."
  type        = string
}

variable "postgres_sku_name" {
  description = "PostgreSQL Flexible Server SKU."
  type        = string
}

variable "postgres_storage_mb" {
  description = "PostgreSQL storage in MB."
  type        = number
  default     = 32768
}

variable "postgres_backup_retention_days" {
  description = "PostgreSQL point-in-time restore window."
  type        = number
  default     = 7
}

variable "postgres_geo_redundant_backup_enabled" {
  description = "Geo-redundant PostgreSQL backups (PROD)."
  type        = bool
}

variable "postgres_high_availability" {
  description = "Zone-redundant PostgreSQL standby."
  type        = bool
  default     = false
}
