variable "name_prefix" {
  description = "Prefix of every resource name, e.g. data-mesh-dev."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group that holds the network."
  type        = string
}

variable "address_space" {
  description = "Address space of the virtual network."
  type        = list(string)
}

variable "subnet_prefixes" {
  description = "One CIDR per subnet: private endpoints, AKS nodes, Databricks host (public) and container (private) subnets."
  type = object({
    private_endpoints    = string
    aks                  = string
    databricks_host      = string
    databricks_container = string
  })
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
