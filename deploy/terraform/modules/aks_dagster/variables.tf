variable "name_prefix" {
  description = "Prefix of every resource name, e.g. data-mesh-dev."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the cluster, the identities and PostgreSQL."
  type        = string
}

variable "tenant_id" {
  description = "Azure AD tenant."
  type        = string
}

# --- AKS ---------------------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "Kubernetes version; null takes AKS's default, then the patch channel keeps it current."
  type        = string
  default     = null
}

variable "sku_tier" {
  description = "AKS control plane tier. Standard has the financially backed uptime SLA."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Standard", "Premium"], var.sku_tier)
    error_message = "sku_tier must be Standard or Premium: Dagster's scheduler and sensors run on this control plane."
  }
}

variable "aks_subnet_id" {
  description = "Subnet of the node pools."
  type        = string
}

variable "aks_admin_group_name" {
  description = "Azure AD group with cluster-admin (Azure RBAC for Kubernetes). The Terraform runner must be a member to install the Helm chart."
  type        = string
}

variable "availability_zones" {
  description = "Zones of the node pools; [] for a regional (non-zonal) cluster."
  type        = list(string)
  default     = []
}

variable "system_node_pool" {
  description = "System pool (critical add-ons only). The OS disk is ephemeral, so os_disk_size_gb must fit the VM size's cache or temp disk."
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = number
  })
}

variable "user_node_pool" {
  description = "Pool for Dagster's webserver, daemon, code location and run pods."
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = number
  })
}

variable "max_pods" {
  description = "Pods per node (Azure CNI overlay)."
  type        = number
  default     = 60
}

variable "service_cidr" {
  description = "Kubernetes service CIDR (must not overlap the VNet)."
  type        = string
  default     = "10.100.0.0/16"
}

variable "dns_service_ip" {
  description = "Cluster DNS address inside service_cidr."
  type        = string
  default     = "10.100.0.10"
}

variable "pod_cidr" {
  description = "Overlay pod CIDR (must not overlap the VNet)."
  type        = string
  default     = "10.244.0.0/16"
}

variable "log_analytics_workspace_id" {
  description = "Workspace for Container insights."
  type        = string
}

variable "container_registry_id" {
  description = "Azure Container Registry with the data-mesh-user-code image; the kubelet identity gets AcrPull on it. null: none."
  type        = string
  default     = null
}

# --- Dagster workload identities ---------------------------------------------------------------------

variable "kubernetes_namespace" {
  description = "Namespace of the Dagster releases."
  type        = string
  default     = "dagster"
}

variable "system_service_account_name" {
  description = "Service account of the webserver and the daemon (chart dagster, serviceAccount.name)."
  type        = string
  default     = "dagster"
}

variable "user_code_service_account_name" {
  description = "Service account of the code location and the run pods (chart dagster-user-deployments, serviceAccount.name)."
  type        = string
  default     = "data-mesh-user-code"
}

variable "lake_container_roles" {
  description = <<-EOT
    Role of the user-code identity on each lake container, keyed by container name (static keys:
    the scopes are only known after apply). scope is the container's Resource Manager ID.
  EOT
  type = map(object({
    scope = string
    role  = string
  }))
}

variable "compute_logs_container_scope" {
  description = "Resource Manager ID of the dagster-logs container; the webserver's identity reads compute logs there."
  type        = string
}

variable "key_vault_id" {
  description = "Vault with the secrets the metadata store references; the identity gets Key Vault Secrets User."
  type        = string
}

variable "sql_database_names" {
  description = "Names of the metadata and ddz databases, for the CREATE USER statements of the user-code identity."
  type = object({
    metadata = string
    ddz      = string
  })
}

# --- PostgreSQL for Dagster's run, event log and schedule storage ----------------------------------

variable "postgres_admin_group_name" {
  description = "Azure AD group that administers the PostgreSQL server (creates the dagster role and database)."
  type        = string
}

variable "postgres_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "postgres_sku_name" {
  description = "Flexible Server SKU, e.g. B_Standard_B1ms (DEV) or GP_Standard_D2ds_v5 (PROD)."
  type        = string
}

variable "postgres_storage_mb" {
  description = "Storage size in MB."
  type        = number
  default     = 32768
}

variable "postgres_backup_retention_days" {
  description = "Point-in-time restore window (7-35 days)."
  type        = number
  default     = 7
}

variable "postgres_geo_redundant_backup_enabled" {
  description = "Geo-redundant backups (PROD); cannot be changed after creation."
  type        = bool
}

variable "postgres_high_availability" {
  description = "Zone-redundant standby (not available on Burstable SKUs)."
  type        = bool
  default     = false
}

variable "postgres_zone" {
  description = "Availability zone of the primary."
  type        = string
  default     = "1"
}

variable "postgres_database_name" {
  description = "Database of Dagster's storage."
  type        = string
  default     = "dagster"
}

variable "postgres_dagster_role" {
  description = "PostgreSQL role Dagster logs in with; its password is the Key Vault secret named by postgres_password_secret_name."
  type        = string
  default     = "dagster"
}

variable "postgres_password_secret_name" {
  description = "Key Vault secret holding the dagster role's password (set by the platform team, never by Terraform)."
  type        = string
  default     = "dagster-postgresql-password"
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the private endpoints."
  type        = string
}

variable "postgres_private_dns_zone_id" {
  description = "privatelink.postgres.database.azure.com zone ID."
  type        = string
}

# --- Dagster Helm release ----------------------------------------------------------------------------

variable "dagster_chart_version" {
  description = "Version of the official dagster chart (matches the dagster package version)."
  type        = string
  default     = "1.13.27"
}

variable "dagster_values_file" {
  description = "Path of the Helm values file for this environment (deploy/helm/values-<env>.yaml)."
  type        = string
}

variable "install_dagster_chart" {
  description = "Install the Dagster Helm release. false for the first apply, before the dagster PostgreSQL role and its Kubernetes secret exist (see deploy/terraform/README.md)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
