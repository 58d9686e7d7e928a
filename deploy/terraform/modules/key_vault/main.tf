# The vault behind the metadata store's keyvault://<vault>/<secret> references. data_mesh reads
# secrets with DefaultAzureCredential (the Dagster workload identity holds Key Vault Secrets User,
# see modules/aks_dagster). Authorization is Azure RBAC only (no access policies), the vault is
# reachable only through its private endpoint, and deleted secrets stay recoverable and cannot be
# purged before the retention ends.

resource "azurerm_key_vault" "this" {
  name                          = var.name
  location                      = var.location
  resource_group_name           = var.resource_group_name
  tenant_id                     = var.tenant_id
  sku_name                      = var.sku_name
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = var.soft_delete_retention_days
  public_network_access_enabled = false

  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    ip_rules                   = []
    virtual_network_subnet_ids = []
  }

  tags = var.tags
}

resource "azurerm_private_endpoint" "vault" {
  name                = "pe-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.name}"
    private_connection_resource_id = azurerm_key_vault.this.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}

data "azuread_group" "secrets_officers" {
  count = var.secrets_officer_group_name == "" ? 0 : 1

  display_name     = var.secrets_officer_group_name
  security_enabled = true
}

resource "azurerm_role_assignment" "secrets_officers" {
  count = var.secrets_officer_group_name == "" ? 0 : 1

  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azuread_group.secrets_officers[0].object_id
  principal_type       = "Group"
}
