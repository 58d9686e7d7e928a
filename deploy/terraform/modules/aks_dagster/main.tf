# Dagster on AKS: a private cluster with Azure AD RBAC and workload identity, the two identities
# the Dagster pods run as (each with only the Azure roles it needs), PostgreSQL for Dagster's own
# storage, and the official Dagster Helm chart (webserver and daemon; the code location is a
# second release, dagster-user-deployments, that the CD pipeline installs).

locals {
  cluster_name              = "aks-${var.name_prefix}"
  postgres_server_name      = "psql-${var.name_prefix}"
  postgres_password_k8s     = "dagster-postgresql-secret"
  azure_databricks_resource = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"

  # Database roles of the user-code identity. The DDZ writer creates, renames and drops staging
  # and chunk tables (db_ddladmin); the metadata store's schema is migrated by the deployment
  # pipeline (data-mesh init), so at run time reading and writing rows is enough there.
  sql_roles = {
    metadata = ["db_datareader", "db_datawriter"]
    ddz      = ["db_datareader", "db_datawriter", "db_ddladmin"]
  }
}

# --- AKS -------------------------------------------------------------------------------------------

data "azuread_group" "aks_admins" {
  display_name     = var.aks_admin_group_name
  security_enabled = true
}

# Control-plane identity (user-assigned, so its role on the subnet exists before the cluster).
resource "azurerm_user_assigned_identity" "cluster" {
  name                = "id-${local.cluster_name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_role_assignment" "cluster_subnet" {
  scope                = var.aks_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.cluster.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_117:OS disks are ephemeral (os_disk_type = Ephemeral, CKV_AZURE_226), so there is no managed OS disk to encrypt with a disk encryption set; temp disks and caches are encrypted at the host (host_encryption_enabled). Persistent volumes are not used: Dagster's state is in PostgreSQL and its logs in the lake.
  name                = local.cluster_name
  location            = var.location
  resource_group_name = var.resource_group_name
  dns_prefix          = local.cluster_name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = var.sku_tier

  # The API server has only a private address in the VNet; Terraform (kubernetes and helm
  # providers) must run from a network that reaches it.
  private_cluster_enabled             = true
  private_dns_zone_id                 = "System"
  private_cluster_public_fqdn_enabled = false

  local_account_disabled            = true
  role_based_access_control_enabled = true

  azure_active_directory_role_based_access_control {
    tenant_id              = var.tenant_id
    admin_group_object_ids = [data.azuread_group.aks_admins.object_id]
    azure_rbac_enabled     = true
  }

  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  azure_policy_enabled      = true
  run_command_enabled       = false

  automatic_upgrade_channel    = "patch"
  node_os_upgrade_channel      = "NodeImage"
  image_cleaner_enabled        = true
  image_cleaner_interval_hours = 48

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cluster.id]
  }

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_pool.vm_size
    vnet_subnet_id               = var.aks_subnet_id
    zones                        = var.availability_zones
    auto_scaling_enabled         = true
    min_count                    = var.system_node_pool.min_count
    max_count                    = var.system_node_pool.max_count
    max_pods                     = var.max_pods
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = var.system_node_pool.os_disk_size_gb
    host_encryption_enabled      = true
    node_public_ip_enabled       = false
    only_critical_addons_enabled = true
    temporary_name_for_rotation  = "systemtmp"

    upgrade_settings {
      max_surge = "33%"
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
    pod_cidr            = var.pod_cidr
    service_cidr        = var.service_cidr
    dns_service_ip      = var.dns_service_ip
  }

  oms_agent {
    log_analytics_workspace_id      = var.log_analytics_workspace_id
    msi_auth_for_monitoring_enabled = true
  }

  # Secrets Store CSI driver: mounts Key Vault secrets (e.g. the dagster PostgreSQL password) into
  # pods through the workload identity, rotated every two minutes.
  key_vault_secrets_provider {
    secret_rotation_enabled  = true
    secret_rotation_interval = "2m"
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [default_node_pool[0].node_count]
  }

  depends_on = [azurerm_role_assignment.cluster_subnet]
}

resource "azurerm_kubernetes_cluster_node_pool" "dagster" {
  name                        = "dagster"
  kubernetes_cluster_id       = azurerm_kubernetes_cluster.this.id
  mode                        = "User"
  vm_size                     = var.user_node_pool.vm_size
  vnet_subnet_id              = var.aks_subnet_id
  zones                       = var.availability_zones
  auto_scaling_enabled        = true
  min_count                   = var.user_node_pool.min_count
  max_count                   = var.user_node_pool.max_count
  max_pods                    = var.max_pods
  os_disk_type                = "Ephemeral"
  os_disk_size_gb             = var.user_node_pool.os_disk_size_gb
  host_encryption_enabled     = true
  node_public_ip_enabled      = false
  temporary_name_for_rotation = "dagstertmp"
  tags                        = var.tags

  node_labels = {
    "workload" = "dagster"
  }

  upgrade_settings {
    max_surge = "33%"
  }

  lifecycle {
    ignore_changes = [node_count]
  }
}

# Container insights through a data collection rule (the agent authenticates with its managed
# identity: msi_auth_for_monitoring_enabled above).
resource "azurerm_monitor_data_collection_rule" "container_insights" {
  name                = "MSCI-${var.location}-${local.cluster_name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags

  destinations {
    log_analytics {
      workspace_resource_id = var.log_analytics_workspace_id
      name                  = "ciworkspace"
    }
  }

  data_flow {
    streams      = ["Microsoft-ContainerInsights-Group-Default"]
    destinations = ["ciworkspace"]
  }

  data_sources {
    extension {
      name           = "ContainerInsightsExtension"
      extension_name = "ContainerInsights"
      streams        = ["Microsoft-ContainerInsights-Group-Default"]
      extension_json = jsonencode({
        dataCollectionSettings = {
          interval               = "1m"
          namespaceFilteringMode = "Off"
          enableContainerLogV2   = true
        }
      })
    }
  }
}

resource "azurerm_monitor_data_collection_rule_association" "container_insights" {
  name                    = "ContainerInsightsExtension"
  target_resource_id      = azurerm_kubernetes_cluster.this.id
  data_collection_rule_id = azurerm_monitor_data_collection_rule.container_insights.id
}

resource "azurerm_role_assignment" "kubelet_acr_pull" {
  count = var.container_registry_id == null ? 0 : 1

  scope                = var.container_registry_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
  principal_type       = "ServicePrincipal"
}

# --- The identities of the Dagster pods ---------------------------------------------------------------

# Two workload identities, one per Kubernetes service account. Through its federated credential,
# a token of that service account (and of no other) is exchanged for an Azure AD token of the
# identity, which data_mesh and dagster-azure use through DefaultAzureCredential.
# - system: webserver and daemon. They only read compute logs.
# - user code: the code location and every run pod. This is data_mesh: the lake, Key Vault,
#   Azure SQL (token authentication) and Databricks.
resource "azurerm_user_assigned_identity" "system" {
  name                = "id-${var.name_prefix}-dagster"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_user_assigned_identity" "user_code" {
  name                = "id-${var.name_prefix}-user-code"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "system" {
  name                = "fic-${var.kubernetes_namespace}-${var.system_service_account_name}"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.system.id
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${var.kubernetes_namespace}:${var.system_service_account_name}"
  audience            = ["api://AzureADTokenExchange"]
}

resource "azurerm_federated_identity_credential" "user_code" {
  name                = "fic-${var.kubernetes_namespace}-${var.user_code_service_account_name}"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.user_code.id
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${var.kubernetes_namespace}:${var.user_code_service_account_name}"
  audience            = ["api://AzureADTokenExchange"]
}

# The webserver shows compute logs that the run pods uploaded.
resource "azurerm_role_assignment" "system_compute_logs" {
  scope                = var.compute_logs_container_scope
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.system.principal_id
  principal_type       = "ServicePrincipal"
}

# Lake access per container, not on the whole account. Reading inputs (the CDZ, the query files)
# needs only Storage Blob Data Reader. But data_mesh also writes: the rows that drop rules reject
# go to quarantine, and the run pods upload their compute logs to dagster-logs. Writing a blob
# needs Storage Blob Data Contributor (Reader has no write action), so those containers get it.
# The root decides per container; in DEV the CDZ is writable too, for
# data-mesh generate-sample-data.
resource "azurerm_role_assignment" "user_code_lake" {
  for_each = var.lake_container_roles

  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.user_code.principal_id
  principal_type       = "ServicePrincipal"
}

# Reads the values behind keyvault://<vault>/<secret> references; cannot list or change them.
resource "azurerm_role_assignment" "user_code_key_vault" {
  scope                = var.key_vault_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.user_code.principal_id
  principal_type       = "ServicePrincipal"
}

# --- PostgreSQL for Dagster's storage -------------------------------------------------------------------

data "azuread_group" "postgres_admins" {
  display_name     = var.postgres_admin_group_name
  security_enabled = true
}

# The server needs a password administrator while password authentication is on (Dagster's
# storage logs in with a password: its connection pool cannot refresh Azure AD tokens). The
# password is generated during apply and handed to Azure as a write-only argument: it is never
# stored in the state, the plan or any file, and nobody knows it. Administration goes through the
# Azure AD group; a break-glass reset is `az postgres flexible-server update --admin-password`.
ephemeral "random_password" "postgres_admin" {
  length           = 40
  special          = true
  override_special = "-_.~!#%^*+="
}

resource "azurerm_postgresql_flexible_server" "dagster" {
  #checkov:skip=CKV_AZURE_136:Geo-redundant backup is chosen per environment (postgres_geo_redundant_backup_enabled): on in PROD, off in DEV, INT and QA, where Dagster's run history can be rebuilt; test_deploy_terraform asserts PROD keeps it on.
  name                              = local.postgres_server_name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  version                           = var.postgres_version
  sku_name                          = var.postgres_sku_name
  storage_mb                        = var.postgres_storage_mb
  auto_grow_enabled                 = true
  backup_retention_days             = var.postgres_backup_retention_days
  geo_redundant_backup_enabled      = var.postgres_geo_redundant_backup_enabled
  zone                              = var.postgres_zone
  public_network_access_enabled     = false
  administrator_login               = "psqladmin"
  administrator_password_wo         = ephemeral.random_password.postgres_admin.result
  administrator_password_wo_version = 1

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = true
    tenant_id                     = var.tenant_id
  }

  dynamic "high_availability" {
    for_each = var.postgres_high_availability ? ["ZoneRedundant"] : []

    content {
      mode = high_availability.value
    }
  }

  tags = var.tags

  lifecycle {
    # Azure may swap primary and standby zones after a failover.
    ignore_changes = [zone, high_availability]
  }
}

resource "azurerm_postgresql_flexible_server_active_directory_administrator" "admins" {
  server_name         = azurerm_postgresql_flexible_server.dagster.name
  resource_group_name = var.resource_group_name
  tenant_id           = var.tenant_id
  object_id           = data.azuread_group.postgres_admins.object_id
  principal_name      = var.postgres_admin_group_name
  principal_type      = "Group"
}

# TLS only, 1.2 or newer.
resource "azurerm_postgresql_flexible_server_configuration" "require_secure_transport" {
  name      = "require_secure_transport"
  server_id = azurerm_postgresql_flexible_server.dagster.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "ssl_min_protocol_version" {
  name      = "ssl_min_protocol_version"
  server_id = azurerm_postgresql_flexible_server.dagster.id
  value     = "TLSv1.2"
}

resource "azurerm_private_endpoint" "postgres" {
  name                = "pe-${local.postgres_server_name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${local.postgres_server_name}"
    private_connection_resource_id = azurerm_postgresql_flexible_server.dagster.id
    subresource_names              = ["postgresqlServer"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [var.postgres_private_dns_zone_id]
  }
}

# --- The Dagster chart ----------------------------------------------------------------------------------

resource "kubernetes_namespace_v1" "dagster" {
  metadata {
    name = var.kubernetes_namespace
    # Pod Security: baseline is enforced; restricted is reported (warn, audit). The values files
    # give the Dagster pods restricted-compliant security contexts.
    labels = {
      "app.kubernetes.io/part-of"          = "data-mesh"
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
    }
  }

  depends_on = [azurerm_kubernetes_cluster_node_pool.dagster]
}

resource "helm_release" "dagster" {
  count = var.install_dagster_chart ? 1 : 0

  name       = "dagster"
  repository = "https://dagster-io.github.io/helm"
  chart      = "dagster"
  version    = var.dagster_chart_version
  namespace  = kubernetes_namespace_v1.dagster.metadata[0].name
  atomic     = true
  timeout    = 900

  values = [file(var.dagster_values_file)]

  # Values only Terraform knows, or that must match what it created; they override the file.
  set = [
    {
      name  = "serviceAccount.create"
      value = "true"
    },
    {
      name  = "serviceAccount.name"
      value = var.system_service_account_name
    },
    {
      name  = "serviceAccount.annotations.azure\\.workload\\.identity/client-id"
      value = azurerm_user_assigned_identity.system.client_id
    },
    {
      name  = "postgresql.enabled"
      value = "false"
    },
    {
      name  = "postgresql.postgresqlHost"
      value = azurerm_postgresql_flexible_server.dagster.fqdn
    },
    {
      name  = "postgresql.postgresqlDatabase"
      value = var.postgres_database_name
    },
    {
      name  = "postgresql.postgresqlUsername"
      value = var.postgres_dagster_role
    },
    {
      # The password secret is created from Key Vault (see the README), not by the chart.
      name  = "generatePostgresqlPasswordSecret"
      value = "false"
    },
    {
      name  = "global.postgresqlSecretName"
      value = local.postgres_password_k8s
    },
  ]

  depends_on = [
    azurerm_federated_identity_credential.system,
    azurerm_role_assignment.system_compute_logs,
    azurerm_postgresql_flexible_server_configuration.require_secure_transport,
    azurerm_private_endpoint.postgres,
  ]
}
