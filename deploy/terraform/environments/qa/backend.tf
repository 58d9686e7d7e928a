# Remote state in the state storage account created once (deploy/terraform/README.md, "State
# bootstrap"), with Azure AD authentication: no storage key anywhere. The account name is given
# at init:  terraform init -backend-config="storage_account_name=<state account>"
terraform {
  backend "azurerm" {
    container_name   = "tfstate"
    key              = "data_mesh/qa.tfstate"
    use_azuread_auth = true
  }
}
