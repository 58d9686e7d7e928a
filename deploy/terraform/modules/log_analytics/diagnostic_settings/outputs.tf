output "diagnostic_setting_ids" {
  description = "Diagnostic setting IDs by target name."
  value       = { for key, setting in azurerm_monitor_diagnostic_setting.target : key => setting.id }
}
