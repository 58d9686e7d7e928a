# The data lake (ADLS Gen2): hierarchical namespace, reachable only through private endpoints and
# only with Azure AD identities (no account keys, no SAS, no anonymous access). data_mesh reads it
# with DefaultAzureCredential (DATA_MESH_ADLS_CREDENTIAL=default) and Spark with the
# abfss://<container>@<account>.dfs.core.windows.net/ scheme.

resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV2_AZURE_1:Encrypted at rest with Microsoft-managed keys plus infrastructure (double) encryption; a customer-managed key needs a key rotation process and Key Vault data-plane access at deploy time, to be added when the data classification requires it.
  #checkov:skip=CKV_AZURE_33:Classic queue logging needs the storage data plane (disabled: no public endpoint, no shared key) and data_mesh uses no queues; queue reads/writes/deletes go to Log Analytics through the diagnostic setting on queueServices (module diagnostic_settings, target lake_queue).
  name                     = var.name
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.account_replication_type
  access_tier              = "Hot"
  is_hns_enabled           = true

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  public_network_access_enabled     = false
  local_user_enabled                = false
  sftp_enabled                      = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    ip_rules                   = []
    virtual_network_subnet_ids = []
  }

  # SAS cannot be used (shared key is off); the policy still flags long-lived user delegation SAS.
  sas_policy {
    expiration_period = "00.04:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    # Blob versioning (and change feed) cannot be enabled on an account with a hierarchical
    # namespace: the provider refuses it ("versioning_enabled can't be true when is_hns_enabled is
    # true"). Recovery comes from blob and container soft delete, which HNS supports, and from
    # geo-redundant replication.
    versioning_enabled  = false
    change_feed_enabled = false

    delete_retention_policy {
      days = var.blob_soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.container_soft_delete_retention_days
    }
  }

  tags = var.tags
}

# Created through Azure Resource Manager (storage_account_id), so Terraform needs neither the
# storage data plane nor an account key.
resource "azurerm_storage_container" "this" {
  #checkov:skip=CKV2_AZURE_21:Classic Storage Analytics logging read through azurerm_log_analytics_storage_insights needs the account key, and shared key access is disabled; blob reads, writes and deletes go to Log Analytics through the diagnostic setting on blobServices (StorageRead/StorageWrite/StorageDelete).
  for_each = toset(var.containers)

  name                  = each.value
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_management_policy" "this" {
  storage_account_id = azurerm_storage_account.this.id

  rule {
    name    = "expire-dagster-compute-logs"
    enabled = true

    filters {
      prefix_match = ["dagster-logs/"]
      blob_types   = ["blockBlob"]
    }

    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = var.dagster_logs_retention_days
      }
    }
  }

  depends_on = [azurerm_storage_container.this]
}

# blob for the Blob API (dagster-azure, query files, the storage sensor), dfs for abfss:// (Spark).
resource "azurerm_private_endpoint" "this" {
  for_each = {
    blob = var.private_dns_zone_ids.blob
    dfs  = var.private_dns_zone_ids.dfs
  }

  name                = "pe-${var.name}-${each.key}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.name}-${each.key}"
    private_connection_resource_id = azurerm_storage_account.this.id
    subresource_names              = [each.key]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [each.value]
  }
}
