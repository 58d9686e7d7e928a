# Reusable: one diagnostic setting per entry of var.targets, all to one Log Analytics workspace.
# The categories are asked from Azure for each resource type instead of being hard-coded, so
# storage services, SQL databases, Key Vault, AKS, PostgreSQL and Databricks all get every log
# category and metric they offer (not every resource type supports the allLogs category group).
# It is a module of its own, called after the resources exist, so that the resources can take
# the workspace ID (AKS Container insights) without a dependency cycle between modules.

data "azurerm_monitor_diagnostic_categories" "target" {
  for_each = var.targets

  resource_id = each.value
}

resource "azurerm_monitor_diagnostic_setting" "target" {
  for_each = var.targets

  name                       = "diag-${each.key}-to-log-analytics"
  target_resource_id         = each.value
  log_analytics_workspace_id = var.log_analytics_workspace_id

  dynamic "enabled_log" {
    for_each = data.azurerm_monitor_diagnostic_categories.target[each.key].log_category_types

    content {
      category = enabled_log.value
    }
  }

  dynamic "enabled_metric" {
    for_each = data.azurerm_monitor_diagnostic_categories.target[each.key].metrics

    content {
      category = enabled_metric.value
    }
  }
}
