output "id" {
  description = "Resource ID of the vault."
  value       = azurerm_key_vault.this.id
}

output "name" {
  description = "Vault name."
  value       = azurerm_key_vault.this.name
}

output "vault_uri" {
  description = "Vault URI (https://<name>.vault.azure.net/)."
  value       = azurerm_key_vault.this.vault_uri
}

output "secret_names" {
  description = "Secrets the platform team sets with az keyvault secret set (values never in Terraform)."
  value       = var.secret_names
}

output "secret_references" {
  description = "Reference to put in metadata rows for each secret (keyvault://<vault>/<secret>)."
  value       = { for name in var.secret_names : name => "keyvault://${azurerm_key_vault.this.name}/${name}" }
}
