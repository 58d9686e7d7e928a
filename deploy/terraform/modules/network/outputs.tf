output "virtual_network_id" {
  description = "ID of the virtual network."
  value       = azurerm_virtual_network.this.id
}

output "virtual_network_name" {
  description = "Name of the virtual network."
  value       = azurerm_virtual_network.this.name
}

output "private_endpoints_subnet_id" {
  description = "Subnet for every private endpoint."
  value       = azurerm_subnet.private_endpoints.id
}

output "aks_subnet_id" {
  description = "Subnet of the AKS node pools."
  value       = azurerm_subnet.aks.id
}

output "databricks_host_subnet_name" {
  description = "Databricks host (\"public\") subnet, delegated to Microsoft.Databricks/workspaces."
  value       = azurerm_subnet.databricks_host.name
}

output "databricks_container_subnet_name" {
  description = "Databricks container (\"private\") subnet, delegated to Microsoft.Databricks/workspaces."
  value       = azurerm_subnet.databricks_container.name
}

output "databricks_host_nsg_association_id" {
  description = "NSG association of the Databricks host subnet (the workspace requires it)."
  value       = azurerm_subnet_network_security_group_association.databricks_host.id
}

output "databricks_container_nsg_association_id" {
  description = "NSG association of the Databricks container subnet (the workspace requires it)."
  value       = azurerm_subnet_network_security_group_association.databricks_container.id
}

output "private_dns_zone_ids" {
  description = "Private DNS zone IDs by service: blob, dfs, sql, vault, databricks, postgres."
  value       = { for key, zone in azurerm_private_dns_zone.this : key => zone.id }
}

output "nat_public_ip" {
  description = "Egress address of the Databricks subnets."
  value       = azurerm_public_ip.nat.ip_address
}
