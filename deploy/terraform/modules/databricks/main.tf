# Azure Databricks is data_mesh's Spark. See README.md in this folder for why it was chosen over a
# Synapse Spark pool; in short: data_mesh drives Spark through Spark Connect
# (DATA_MESH_SPARK_REMOTE, Databricks Connect), which Synapse Spark pools do not offer.
#
# Network posture: VNet injection into the two delegated subnets, secure cluster connectivity
# (no_public_ip: cluster nodes have no public address and no open inbound port), and Private Link
# for both the front end (workspace UI/REST, Databricks Connect from the AKS pods) and the back
# end (clusters to control plane): public_network_access_enabled = false, which requires
# network_security_group_rules_required = "NoAzureDatabricksRules".

resource "azurerm_databricks_access_connector" "unity_catalog" {
  name                = "dbac-${var.name}"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  identity {
    type = "SystemAssigned"
  }
}

# Unity Catalog reads CDZ Delta/Parquet and writes query results in the lake through this identity.
resource "azurerm_role_assignment" "unity_catalog_lake" {
  scope                = var.lake_storage_account_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_databricks_access_connector.unity_catalog.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_databricks_workspace" "this" {
  #checkov:skip=CKV2_AZURE_48:The DBFS root holds no data_mesh data (CDZ, queries and quarantine live in the lake; results in Azure SQL); it is encrypted with Microsoft-managed keys plus infrastructure encryption. A customer-managed key is a later step together with the lake's (see modules/adls).
  name                                  = var.name
  resource_group_name                   = var.resource_group_name
  location                              = var.location
  sku                                   = "premium"
  managed_resource_group_name           = var.managed_resource_group_name
  public_network_access_enabled         = false
  network_security_group_rules_required = "NoAzureDatabricksRules"
  infrastructure_encryption_enabled     = true

  custom_parameters {
    no_public_ip                                         = true
    virtual_network_id                                   = var.virtual_network_id
    public_subnet_name                                   = var.host_subnet_name
    private_subnet_name                                  = var.container_subnet_name
    public_subnet_network_security_group_association_id  = var.host_nsg_association_id
    private_subnet_network_security_group_association_id = var.container_nsg_association_id
  }

  tags = var.tags
}

# Front-end and back-end Private Link share this endpoint: the workspace URL resolves to it in the
# VNet, for the clusters, for the Dagster pods (Databricks Connect) and for Terraform itself.
resource "azurerm_private_endpoint" "ui_api" {
  name                = "pe-${var.name}-ui-api"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.name}-ui-api"
    private_connection_resource_id = azurerm_databricks_workspace.this.id
    subresource_names              = ["databricks_ui_api"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}

# Single sign-on callbacks for browsers on the private network.
resource "azurerm_private_endpoint" "browser_authentication" {
  count = var.create_browser_authentication_endpoint ? 1 : 0

  name                = "pe-${var.name}-browser-auth"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.name}-browser-auth"
    private_connection_resource_id = azurerm_databricks_workspace.this.id
    subresource_names              = ["browser_authentication"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}

# Inside the workspace (databricks provider, reached through the private endpoint above): the
# Dagster user-code workload identity becomes a service principal. It authenticates with an Azure
# AD token for the Azure Databricks resource, obtained through AKS workload identity, so there is
# no Databricks personal access token to store. It may not create arbitrary clusters; it may use the
# data_mesh policy, which keeps clusters Unity Catalog-enabled (single-user access mode, required
# by Databricks Connect), bounded in size and auto-terminating.
resource "databricks_service_principal" "dagster" {
  application_id       = var.dagster_client_id
  display_name         = var.dagster_identity_name
  allow_cluster_create = false

  depends_on = [azurerm_private_endpoint.ui_api]
}

resource "databricks_cluster_policy" "data_mesh" {
  name = "data-mesh"
  definition = jsonencode({
    "data_security_mode" = {
      type  = "fixed"
      value = "SINGLE_USER"
    }
    "node_type_id" = {
      type         = "allowlist"
      values       = var.allowed_node_types
      defaultValue = var.allowed_node_types[0]
    }
    "autoscale.max_workers" = {
      type     = "range"
      maxValue = var.max_workers
    }
    "autotermination_minutes" = {
      type   = "fixed"
      value  = var.autotermination_minutes
      hidden = true
    }
    "custom_tags.application" = {
      type  = "fixed"
      value = "data_mesh"
    }
  })

  depends_on = [azurerm_private_endpoint.ui_api]
}

resource "databricks_permissions" "data_mesh_policy" {
  cluster_policy_id = databricks_cluster_policy.data_mesh.id

  access_control {
    service_principal_name = databricks_service_principal.dagster.application_id
    permission_level       = "CAN_USE"
  }
}
