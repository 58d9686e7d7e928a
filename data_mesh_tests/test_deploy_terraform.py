"""deploy/terraform: every file parses, the four environment roots are wired the same way, the
security settings hold, and checkov reports no failed check.

Terraform itself cannot be installed on the build machine, so nothing here runs `terraform
validate` or reaches Azure. The files are parsed with python-hcl2, and checkov runs offline
(.tools/deploy-venv/bin/checkov, which CI installs).
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "deploy" / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = ("dev", "int", "qa", "prod")
CHECKOV = REPO / ".tools" / "deploy-venv" / "bin" / "checkov"
HELM = REPO / "deploy" / "helm"

# The same in the four roots: only terraform.tfvars and backend.tf may differ.
SHARED_ROOT_FILES = ("main.tf", "variables.tf", "providers.tf", "outputs.tf")
HCL_FILES = sorted([*TERRAFORM.rglob("*.tf"), *TERRAFORM.rglob("*.tfvars")])
# Module directories: every folder under modules/ with a main.tf (log_analytics/diagnostic_settings
# is one too).
MODULE_DIRS = sorted(path.parent for path in MODULES.rglob("main.tf"))

# Anything that looks like a credential written into Terraform code or variables.
SECRET_PATTERNS = {
    "a password argument": re.compile(r"(?im)^\s*\w*password\s*="),
    "a password in a connection string": re.compile(r"(?i)[;?&\s](password|pwd)\s*=\s*[^\s;\"'$]"),
    "a client secret": re.compile(r"(?i)client_secret"),
    "a storage account key": re.compile(r"(?i)AccountKey\s*="),
    "a SAS signature": re.compile(r"(?i)[?&;]sig="),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
CHECKOV_SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@cache
def _parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals and block labels; older versions did not."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _body(block: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in block.items() if not key.startswith("__")}


def _blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Blocks with one label (variable, output, module) of every .tf file in a directory."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in _parse(path).get(kind, []):
            for label, block in entry.items():
                found[_unquote(label)] = _body(block)
    return found


def _resources(directory: Path, kind: str = "resource") -> dict[str, dict[str, dict[str, Any]]]:
    """resource (or data) blocks of a directory: type -> name -> body."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in _parse(path).get(kind, []):
            for resource_type, named in entry.items():
                for name, block in named.items():
                    found.setdefault(_unquote(resource_type), {})[_unquote(name)] = _body(block)
    return found


def _resource(module: str, resource_type: str, name: str) -> dict[str, Any]:
    resources = _resources(MODULES / module)
    assert name in resources.get(resource_type, {}), (
        f"modules/{module} has no {resource_type}.{name}"
    )
    return resources[resource_type][name]


def _nested(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, (
        f"expected one {name} block, got {blocks!r}"
    )
    return _body(blocks[0])


def _tfvars(environment: str) -> dict[str, Any]:
    return _parse(TERRAFORM / "environments" / environment / "terraform.tfvars")


def _value(body: dict[str, Any], key: str) -> Any:
    return _unquote(body.get(key))


# --- Every file parses -----------------------------------------------------------------------------


def test_there_is_terraform_to_check() -> None:
    assert HCL_FILES, "no .tf files under deploy/terraform"
    assert {path.relative_to(MODULES).as_posix() for path in MODULE_DIRS} >= {
        "network",
        "adls",
        "azure_sql",
        "key_vault",
        "log_analytics",
        "databricks",
        "aks_dagster",
    }


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda path: str(path.relative_to(TERRAFORM)))
def test_file_parses(path: Path) -> None:
    try:
        _parse(path)
    except Exception as error:  # the parser raises lark errors of several kinds
        pytest.fail(f"{_rel(path)} does not parse as HCL2: {error}")


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda path: path.name)
def test_module_has_the_standard_files(module: Path) -> None:
    missing = [
        name
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
        if not (module / name).is_file()
    ]
    assert not missing, f"{_rel(module)} lacks {missing}"
    providers = _parse(module / "versions.tf")["terraform"][0]["required_providers"][0]
    azurerm = providers.get("azurerm")
    assert azurerm, f"{_rel(module)}/versions.tf does not require azurerm"
    assert _unquote(azurerm["version"]).startswith("~> 4."), (
        f"{_rel(module)}: azurerm must be pinned to 4.x, not {azurerm['version']}"
    )


# --- The four environment roots --------------------------------------------------------------------


@pytest.mark.parametrize("file_name", SHARED_ROOT_FILES)
def test_environment_roots_share_their_code(file_name: str) -> None:
    reference = (TERRAFORM / "environments" / "dev" / file_name).read_text()
    different = [
        environment
        for environment in ENVIRONMENTS[1:]
        if (TERRAFORM / "environments" / environment / file_name).read_text() != reference
    ]
    assert not different, (
        f"environments/{{{','.join(different)}}}/{file_name} differs from environments/dev/"
        f"{file_name}: keep the roots identical and put the differences in terraform.tfvars"
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_root_calls_every_module(environment: str) -> None:
    root = TERRAFORM / "environments" / environment
    called = {
        (root / _unquote(module["source"])).resolve() for module in _blocks(root, "module").values()
    }
    missing = [path.relative_to(MODULES).as_posix() for path in MODULE_DIRS if path not in called]
    assert not missing, f"environments/{environment} does not call modules {missing}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_module_calls_match_the_module_variables(environment: str) -> None:
    root = TERRAFORM / "environments" / environment
    meta_arguments = {"source", "version", "providers", "depends_on", "count", "for_each"}
    problems = []
    for name, call in _blocks(root, "module").items():
        module = (root / _unquote(call["source"])).resolve()
        declared = _blocks(module, "variable")
        passed = set(call) - meta_arguments
        if unknown := sorted(passed - set(declared)):
            problems.append(f"module.{name} passes undeclared {unknown}")
        required = {key for key, variable in declared.items() if "default" not in variable}
        if missing := sorted(required - passed):
            problems.append(f"module.{name} leaves required {missing} unset")
    assert not problems, f"environments/{environment}: " + "; ".join(problems)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_root_declares_every_variable_it_uses(environment: str) -> None:
    root = TERRAFORM / "environments" / environment
    declared = _blocks(root, "variable")
    used = {
        (path.name, match)
        for path in root.glob("*.tf")
        for match in re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text())
    }
    undeclared = sorted(f"var.{name} in {file}" for file, name in used if name not in declared)
    assert not undeclared, f"environments/{environment} uses undeclared variables: {undeclared}"

    tfvars = _tfvars(environment)
    unknown = sorted(set(tfvars) - set(declared) - {"__comments__"})
    assert not unknown, f"environments/{environment}/terraform.tfvars sets undeclared {unknown}"
    required = {name for name, variable in declared.items() if "default" not in variable}
    unset = sorted(required - set(tfvars))
    assert not unset, f"environments/{environment}/terraform.tfvars misses required {unset}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_root_has_its_own_azurerm_backend_and_environment(environment: str) -> None:
    root = TERRAFORM / "environments" / environment
    terraform_blocks = [
        block for path in root.glob("*.tf") for block in _parse(path).get("terraform", [])
    ]
    backends = [backend for block in terraform_blocks for backend in block.get("backend", [])]
    assert len(backends) == 1, f"environments/{environment} needs exactly one backend block"
    (backend_type, settings), *_ = backends[0].items()
    assert _unquote(backend_type) == "azurerm", (
        f"environments/{environment}: backend is not azurerm"
    )
    assert _value(settings, "key") == f"data_mesh/{environment}.tfstate"
    assert settings.get("use_azuread_auth") is True, (
        f"environments/{environment}: the state must be read with Azure AD, not a storage key"
    )
    assert _value(_tfvars(environment), "environment") == environment, (
        f'environments/{environment}/terraform.tfvars must set environment = "{environment}"'
    )


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda path: str(path.relative_to(TERRAFORM)))
def test_no_secret_in_terraform(path: Path) -> None:
    text = path.read_text()
    found = [what for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    assert not found, f"{_rel(path)} contains {', '.join(found)}: secrets belong in Key Vault"


def test_no_secret_value_is_managed_by_terraform() -> None:
    # Secret values would land in the state; Terraform only declares their names.
    offenders = [
        f"{module.name}: {resource_type}"
        for module in [*MODULE_DIRS, *(TERRAFORM / "environments" / env for env in ENVIRONMENTS)]
        for resource_type in _resources(module)
        if resource_type in {"azurerm_key_vault_secret", "random_password", "kubernetes_secret_v1"}
    ]
    assert not offenders, f"secret values managed by Terraform: {offenders}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_helm_values_file_matches_the_names_terraform_creates(environment: str) -> None:
    values = HELM / f"values-{environment}.yaml"
    if not values.is_file():
        pytest.skip(f"{_rel(values)} is not there yet")
    root = TERRAFORM / "environments" / environment
    variables = _blocks(root, "variable")
    tfvars = _tfvars(environment)

    def setting(name: str) -> str:
        return str(_unquote(tfvars.get(name, variables[name].get("default"))))

    prefix, storage_prefix = setting("name_prefix"), setting("storage_name_prefix")
    text = values.read_text()
    for name in (
        f"sql-{prefix}-{environment}.database.windows.net",
        f"psql-{prefix}-{environment}.postgres.database.azure.com",
        f"st{storage_prefix}{environment}",
    ):
        assert name in text, f"{_rel(values)} does not use {name}, which Terraform creates"


# --- Security settings ---------------------------------------------------------------------------


def test_lake_is_private_and_azure_ad_only() -> None:
    lake = _resource("adls", "azurerm_storage_account", "this")
    expected = {
        "is_hns_enabled": True,
        "min_tls_version": "TLS1_2",
        "https_traffic_only_enabled": True,
        "allow_nested_items_to_be_public": False,
        "shared_access_key_enabled": False,
        "public_network_access_enabled": False,
        "infrastructure_encryption_enabled": True,
        "local_user_enabled": False,
    }
    wrong = {
        key: _value(lake, key) for key, value in expected.items() if _value(lake, key) != value
    }
    assert not wrong, f"modules/adls storage account: {wrong}, expected {expected}"
    assert _value(_nested(lake, "network_rules"), "default_action") == "Deny"
    blob = _nested(lake, "blob_properties")
    assert blob.get("delete_retention_policy"), "blob soft delete is off"
    assert blob.get("container_delete_retention_policy"), "container soft delete is off"

    containers = _blocks(MODULES / "adls", "variable")["containers"]["default"]
    assert {_unquote(name) for name in containers} >= {
        "cdz",
        "queries",
        "quarantine",
        "dagster-logs",
    }
    endpoints = _resource("adls", "azurerm_private_endpoint", "this")
    assert set(endpoints["for_each"]) == {"blob", "dfs"}, "the lake needs blob and dfs endpoints"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_defs_state_container_is_written_by_the_user_code_identity(environment: str) -> None:
    """The Dagster instance's defs_state_storage (deploy/helm/values-<env>.yaml) is a lake
    container Terraform creates, which the user-code identity (code servers, run pods and the CD
    pipeline's refresh Job, all with service account data-mesh-user-code) may write, and which
    the lifecycle rule does not expire (the latest version is what every code server loads)."""
    values = HELM / f"values-{environment}.yaml"
    if not values.is_file():
        pytest.skip(f"{_rel(values)} is not there yet")
    state = yaml.safe_load(values.read_text())["additionalInstanceConfig"]["defs_state_storage"]
    base_path = state["config"]["base_path"]
    assert base_path.startswith("az://"), base_path
    container = base_path.removeprefix("az://").split("/")[0]
    assert container == "dagster-defs-state"

    containers = _blocks(MODULES / "adls", "variable")["containers"]["default"]
    assert container in {_unquote(name) for name in containers}
    root = TERRAFORM / "environments" / environment
    assert "containers" not in _tfvars(environment), "the roots keep the module's containers"
    text = (root / "main.tf").read_text()
    writable = re.search(r"contains\(\[([^\]]*)\], name\)", text)
    assert writable, "main.tf: lake_container_roles has no list of writable containers"
    assert f'"{container}"' in writable.group(1)
    assert re.search(
        r"contains\(\[[^\]]*\], name\)[^?]*\?\s*\"Storage Blob Data Contributor\"", text
    )
    policy = _resource("adls", "azurerm_storage_management_policy", "this")
    prefixes = str(policy)
    assert "dagster-logs/" in prefixes and f"{container}/" not in prefixes
    account = state["config"]["storage_options"]["account_name"]
    storage_prefix = _unquote(
        _tfvars(environment).get(
            "storage_name_prefix",
            _blocks(root, "variable")["storage_name_prefix"].get("default"),
        )
    )
    assert account == f"st{storage_prefix}{environment}"


def test_sql_server_is_private_and_azure_ad_only() -> None:
    server = _resource("azure_sql", "azurerm_mssql_server", "this")
    assert server.get("public_network_access_enabled") is False, "SQL server has a public endpoint"
    assert _value(server, "minimum_tls_version") == "1.2"
    admin = _nested(server, "azuread_administrator")
    assert admin.get("azuread_authentication_only") is True, "SQL logins are still allowed"
    for key in ("administrator_login", "administrator_login_password"):
        assert key not in server, f"SQL server sets {key}: Azure AD is the only authentication"

    firewall_rules = [
        module.name for module in MODULE_DIRS if "azurerm_mssql_firewall_rule" in _resources(module)
    ]
    assert not firewall_rules, f"SQL firewall rules in {firewall_rules}: use the private endpoint"

    databases = _resource("azure_sql", "azurerm_mssql_database", "this")
    assert databases.get("transparent_data_encryption_enabled") is True
    auditing = _resource("azure_sql", "azurerm_mssql_server_extended_auditing_policy", "this")
    assert auditing.get("log_monitoring_enabled") is True, (
        "SQL auditing does not reach Log Analytics"
    )
    alerts = _resource("azure_sql", "azurerm_mssql_server_security_alert_policy", "this")
    assert _value(alerts, "state") == "Enabled" and alerts.get("disabled_alerts") == []


def test_key_vault_is_private_with_rbac_and_purge_protection() -> None:
    vault = _resource("key_vault", "azurerm_key_vault", "this")
    expected = {
        "rbac_authorization_enabled": True,
        "purge_protection_enabled": True,
        "public_network_access_enabled": False,
    }
    wrong = {key: vault.get(key) for key, value in expected.items() if vault.get(key) is not value}
    assert not wrong, f"modules/key_vault: {wrong}, expected {expected}"
    assert _value(_nested(vault, "network_acls"), "default_action") == "Deny"


def test_databricks_has_no_public_ip_and_no_public_access() -> None:
    workspace = _resource("databricks", "azurerm_databricks_workspace", "this")
    assert _value(workspace, "sku") == "premium"
    assert workspace.get("public_network_access_enabled") is False
    assert _value(workspace, "network_security_group_rules_required") == "NoAzureDatabricksRules"
    assert _nested(workspace, "custom_parameters").get("no_public_ip") is True


def test_aks_is_private_with_azure_ad_and_workload_identity() -> None:
    cluster = _resource("aks_dagster", "azurerm_kubernetes_cluster", "this")
    expected = {
        "private_cluster_enabled": True,
        "local_account_disabled": True,
        "role_based_access_control_enabled": True,
        "workload_identity_enabled": True,
        "oidc_issuer_enabled": True,
        "azure_policy_enabled": True,
    }
    wrong = {
        key: cluster.get(key) for key, value in expected.items() if cluster.get(key) is not value
    }
    assert not wrong, f"modules/aks_dagster cluster: {wrong}, expected {expected}"
    assert _nested(cluster, "azure_active_directory_role_based_access_control").get(
        "azure_rbac_enabled"
    )
    pool = _nested(cluster, "default_node_pool")
    assert (
        pool.get("node_public_ip_enabled") is False and pool.get("host_encryption_enabled") is True
    )

    credentials = _resources(MODULES / "aks_dagster")["azurerm_federated_identity_credential"]
    for name, credential in credentials.items():
        assert _value(credential, "subject").startswith("system:serviceaccount:"), name
        assert "oidc_issuer_url" in _value(credential, "issuer"), name

    release = _resource("aks_dagster", "helm_release", "dagster")
    assert _value(release, "repository") == "https://dagster-io.github.io/helm"
    assert _value(release, "chart") == "dagster"
    root_call = _blocks(TERRAFORM / "environments" / "dev", "module")["aks_dagster"]
    assert _unquote(root_call["dagster_values_file"]).endswith(
        "/../../../helm/values-${var.environment}.yaml"
    )


def test_dagster_postgres_is_private_with_azure_ad_and_tls() -> None:
    server = _resource("aks_dagster", "azurerm_postgresql_flexible_server", "dagster")
    assert server.get("public_network_access_enabled") is False
    assert _nested(server, "authentication").get("active_directory_auth_enabled") is True
    assert "administrator_password" not in server, "the admin password must be write-only"
    transport = _resource(
        "aks_dagster",
        "azurerm_postgresql_flexible_server_configuration",
        "require_secure_transport",
    )
    assert _value(transport, "value") == "on"


def test_prod_is_zone_and_geo_redundant() -> None:
    # Two checkov checks are skipped because the choice is per environment; PROD keeps them on.
    prod = _tfvars("prod")
    assert _value(prod, "lake_replication_type") in {"GZRS", "RAGZRS"}
    assert len(prod["availability_zones"]) >= 2
    for key, database in prod["sql_databases"].items():
        assert database["zone_redundant"] is True, f"PROD SQL database {key} is not zone-redundant"
        assert _unquote(database["backup_storage_redundancy"]) in {"Geo", "GeoZone"}, key
    assert prod["postgres_geo_redundant_backup_enabled"] is True
    assert prod["postgres_high_availability"] is True


# --- checkov ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_results() -> dict[str, list[dict[str, Any]]]:
    """One offline checkov run over deploy/terraform (its .checkov.yaml applies)."""
    if not CHECKOV.exists():
        pytest.skip(f"{_rel(CHECKOV)} is not installed (CI installs it with the deploy tools)")
    completed = subprocess.run(
        [str(CHECKOV), "-d", str(TERRAFORM), "--framework", "terraform", "--output", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.stdout.strip(), f"checkov printed nothing:\n{completed.stderr[-3000:]}"
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    terraform = [item for item in reports if item.get("check_type") == "terraform"]
    assert terraform, f"checkov found no Terraform: {completed.stdout[:500]}"
    summary = terraform[0]["summary"]
    assert summary["parsing_errors"] == 0, f"checkov could not parse some files: {summary}"
    assert summary["passed"] > 0, f"checkov evaluated nothing: {summary}"
    return terraform[0]["results"]


def test_checkov_has_no_failed_check(checkov_results: dict[str, list[dict[str, Any]]]) -> None:
    failed = sorted(
        {
            f"{check['check_id']} {check['resource']} ({check['file_path']}, called from "
            f"{check.get('caller_file_path') or '-'}): {check['check_name']}"
            for check in checkov_results.get("failed_checks", [])
        }
    )
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)


def test_checkov_skips_are_justified(checkov_results: dict[str, list[dict[str, Any]]]) -> None:
    unjustified = sorted(
        {
            f"{check['check_id']} {check['resource']}"
            for check in checkov_results.get("skipped_checks", [])
            if len(((check.get("check_result") or {}).get("suppress_comment") or "").strip()) < 30
        }
    )
    assert not unjustified, f"checkov skips without a reason: {unjustified}"


@pytest.mark.parametrize(
    "path", sorted(TERRAFORM.rglob("*.tf")), ids=lambda path: str(path.relative_to(TERRAFORM))
)
def test_inline_checkov_skips_name_a_check_and_a_reason(path: Path) -> None:
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if "checkov:skip" not in line:
            continue
        match = CHECKOV_SKIP.search(line)
        if not match or not re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", match.group(1)):
            problems.append(f"line {number}: malformed skip")
        elif len((match.group(2) or "").strip()) < 30:
            problems.append(f"line {number}: {match.group(1)} is skipped without a reason")
    assert not problems, f"{_rel(path)}: " + "; ".join(problems)
