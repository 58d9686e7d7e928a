terraform {
  required_version = ">= 1.11.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.42"
    }
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.0"
    }
    databricks = {
      source  = "databricks/databricks"
      version = "~> 1.50"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.36, < 4.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}

# The subscription comes from ARM_SUBSCRIPTION_ID, the identity from az login or OIDC in CI
# (ARM_USE_OIDC, ARM_CLIENT_ID, ARM_TENANT_ID): no credential in these files.
provider "azurerm" {
  # The lake has no account keys: Terraform talks to storage with Azure AD too.
  storage_use_azuread = true

  features {
    key_vault {
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }

    resource_group {
      prevent_deletion_if_contains_resources = true
    }

    storage {
      # The lake has no public endpoint: manage it through Resource Manager only.
      data_plane_available = false
    }
  }
}

provider "azuread" {}

# Reached through the workspace's private endpoint: run Terraform from the VNet (or a peered one).
provider "databricks" {
  host                        = "https://${module.databricks.workspace_url}"
  azure_workspace_resource_id = module.databricks.workspace_id
}

# The API server is private and local accounts are off: kubelogin turns the runner's Azure login
# (var.kubelogin_login) into an Azure AD token for the AKS server application (6dae42f8-...).
provider "kubernetes" {
  host                   = module.aks_dagster.kube_host
  cluster_ca_certificate = base64decode(module.aks_dagster.cluster_ca_certificate)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "kubelogin"
    args        = ["get-token", "--login", var.kubelogin_login, "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
  }
}

provider "helm" {
  kubernetes = {
    host                   = module.aks_dagster.kube_host
    cluster_ca_certificate = base64decode(module.aks_dagster.cluster_ca_certificate)

    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      args        = ["get-token", "--login", var.kubelogin_login, "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    }
  }
}
