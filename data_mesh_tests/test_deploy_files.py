"""Checks of the deployment files under deploy/: pipelines, Dockerfile, Dagster instance, Helm values.

Nothing here reaches Azure or a cluster: the Azure DevOps YAML is parsed and its templates expanded
the way the service does for plain `${{ parameters.x }}` expressions, the instance config goes
through Dagster's own validation, the Helm values through the official chart's JSON schema
(vendored under deploy/helm/schema/), and the Dockerfile through hadolint.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PIPELINES = DEPLOY / "azure-pipelines"
HELM = DEPLOY / "helm"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DAGSTER_YAML = DEPLOY / "dagster" / "dagster.yaml"
HADOLINT = REPO / ".tools" / "deploy-venv" / "bin" / "hadolint"
ENVS = ("dev", "int", "qa", "prod")

# Task names used by the pipelines, each checked against its documentation: the task reference on
# learn.microsoft.com (UsePythonVersion@0, Bash@3, PublishTestResults@2, AzureCLI@2, Docker@2,
# HelmDeploy@1 from Tasks/HelmDeployV1/task.json of microsoft/azure-pipelines-tasks,
# HelmInstaller@1, KubectlInstaller@0, KubeloginInstaller@0) and the task.json files of the
# Microsoft DevLabs Terraform extension, microsoft/azure-pipelines-terraform
# (TerraformInstaller@1, TerraformTaskV4@4). A task outside this list fails the test until its
# name is checked the same way.
KNOWN_TASKS = frozenset(
    {
        "UsePythonVersion@0",
        "Bash@3",
        "PublishTestResults@2",
        "AzureCLI@2",
        "Docker@2",
        "HelmDeploy@1",
        "HelmInstaller@1",
        "KubectlInstaller@0",
        "KubeloginInstaller@0",
        "TerraformInstaller@1",
        "TerraformTaskV4@4",
    }
)
DEPLOY_STAGES = ("DEV", "INT", "QA", "PROD")


# ----------------------------------------------------------------------------------------------
# helpers


def _deploy_files(*suffixes: str) -> list[Path]:
    """Files under deploy/ with one of the suffixes, Terraform's provider caches left out."""
    return sorted(
        path
        for path in DEPLOY.rglob("*")
        if path.is_file()
        and ".terraform" not in path.parts
        and (not suffixes or path.name.endswith(suffixes))
    )


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a parsed YAML document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


PARAMETER = re.compile(r"\$\{\{\s*parameters\.(\w+)\s*\}\}")


def _expand_template(path: Path, given: dict[str, Any]) -> dict[str, Any]:
    """A template with its `${{ parameters.x }}` expressions replaced, as Azure DevOps does.

    Fails on a parameter the template does not declare, a required one not given, or an
    expression this helper does not understand (so a template does not silently escape the
    checks below)."""
    text = path.read_text(encoding="utf-8")
    declared = {p["name"]: p for p in (yaml.safe_load(text).get("parameters") or [])}
    unknown = set(given) - set(declared)
    assert not unknown, f"{_rel(path)}: parameters {sorted(unknown)} are not declared"
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif "default" in spec:
            values[name] = spec["default"]
        else:
            raise AssertionError(f"{_rel(path)}: required parameter {name!r} not given")
        allowed = spec.get("values")
        assert allowed is None or values[name] in allowed, (
            f"{_rel(path)}: {name}={values[name]!r} is not one of {allowed}"
        )
    expanded = PARAMETER.sub(lambda m: str(values[m.group(1)]), text)
    leftover = re.findall(r"\$\{\{.*?\}\}", expanded)
    assert not leftover, f"{_rel(path)}: expressions the test cannot expand: {leftover}"
    document = yaml.safe_load(expanded)
    assert isinstance(document, dict)
    return document


def _cd_stages() -> list[dict[str, Any]]:
    """The stages of cd.yml, templates expanded."""
    cd = _load_yaml(PIPELINES / "cd.yml")
    pipeline_parameters = {p["name"]: p.get("default") for p in cd.get("parameters") or []}
    stages: list[dict[str, Any]] = []
    for item in cd["stages"]:
        if "stage" in item:
            stages.append(item)
            continue
        given = {
            key: PARAMETER.sub(lambda m: str(pipeline_parameters[m.group(1)]), str(value))
            for key, value in (item.get("parameters") or {}).items()
        }
        template = _expand_template(PIPELINES / item["template"], given)
        stages.extend(template["stages"])
    return stages


def _load_script(name: str) -> ModuleType:
    path = PIPELINES / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"deploy_scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# every YAML file parses


@pytest.mark.parametrize(
    "path", _deploy_files(".yml", ".yaml"), ids=lambda p: _rel(p) if isinstance(p, Path) else p
)
def test_yaml_file_parses(path: Path) -> None:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        pytest.fail(f"{_rel(path)} is not valid YAML: {error}")
    assert any(doc is not None for doc in documents), f"{_rel(path)} is empty"


def test_the_expected_deployment_files_exist() -> None:
    expected = [
        PIPELINES / "ci.yml",
        PIPELINES / "cd.yml",
        PIPELINES / "sqlserver-tests.yml",
        PIPELINES / "templates" / "deploy-env.yml",
        PIPELINES / "templates" / "defs-state-refresh.yml",
        PIPELINES / "scripts" / "render_defs_state_job.py",
        DOCKERFILE,
        DEPLOY / "docker" / "Dockerfile.dockerignore",
        DAGSTER_YAML,
        HELM / "schema" / "values.schema.json",
        HELM / "schema" / "dagster-user-deployments.values.schema.json",
        *(HELM / f"values-{env}.yaml" for env in ENVS),
    ]
    missing = [_rel(p) for p in expected if not p.is_file()]
    assert not missing, f"missing: {missing}"


# ----------------------------------------------------------------------------------------------
# Azure Pipelines


def _pipeline_files() -> list[Path]:
    return sorted(PIPELINES.rglob("*.yml"))


def test_every_template_reference_points_to_a_file() -> None:
    broken = []
    for path in _pipeline_files():
        for node in _walk(_load_yaml(path)):
            ref = node.get("template")
            # Template paths are relative to the file that includes them.
            if isinstance(ref, str) and not (path.parent / ref).is_file():
                broken.append(f"{_rel(path)}: template {ref!r}")
    assert not broken, "\n".join(broken)


def test_every_task_is_a_known_task() -> None:
    used: dict[str, list[str]] = {}
    for path in _pipeline_files():
        for node in _walk(_load_yaml(path)):
            if "task" in node:
                used.setdefault(str(node["task"]), []).append(_rel(path))
    unknown = {task: files for task, files in used.items() if task not in KNOWN_TASKS}
    assert not unknown, f"tasks not in the checked list: {unknown}"
    assert used, "no task found: the pipelines were not read"


def test_ci_runs_the_test_script_and_publishes_junit() -> None:
    ci = _load_yaml(PIPELINES / "ci.yml")
    assert ci["trigger"]["branches"]["include"] == ["main"]
    assert ci["pr"]["branches"]["include"] == ["main"]
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    steps = ci["jobs"][0]["steps"]
    scripts = [s["inputs"]["script"] for s in steps if s.get("task") == "Bash@3"]
    assert any("scripts/test.sh" in s and "--junitxml" in s for s in scripts), scripts
    publish = [s for s in steps if s.get("task") == "PublishTestResults@2"]
    assert publish and publish[0]["inputs"]["testResultsFormat"] == "JUnit"
    assert publish[0]["condition"] == "succeededOrFailed()"


def test_sqlserver_job_runs_the_module_against_dev_azure_sql() -> None:
    """sqlserver-tests.yml: setup, then the SQL Server module with DEV's server and a token of
    the DEV service connection (the server is Entra ID-only), results published."""
    pipeline = _load_yaml(PIPELINES / "sqlserver-tests.yml")
    assert pipeline["trigger"]["branches"]["include"] == ["main"]
    assert pipeline["pr"] == "none"
    groups = [v.get("group") for v in pipeline["variables"] if isinstance(v, dict)]
    assert groups == ["data-mesh-dev"], groups
    (job,) = pipeline["jobs"]
    steps = job["steps"]
    order = [s.get("task") for s in steps if "task" in s]
    setup = next(s for s in steps if "scripts/setup.sh" in str(s.get("inputs", {}).get("script")))
    tests = next(s for s in steps if s.get("task") == "AzureCLI@2")
    assert steps.index(setup) < steps.index(tests), order
    assert tests["inputs"]["azureSubscription"] == "sc-data-mesh-dev"
    script = tests["inputs"]["inlineScript"]
    assert ".venv/bin/python -m pytest" in script, script
    assert "data_mesh_tests/test_ddz_sqlserver.py" in script, script
    assert '--junitxml="$(junitFile)"' in script
    assert "az account get-access-token --resource https://database.windows.net/" in script
    assert "##vso[task.setsecret]$token" in script, "the token must be masked in the log"
    # What the job exports is what the test module reads; the URL is always set, so the
    # module cannot skip here.
    exported = set(re.findall(r"^export (DATA_MESH_TEST_MSSQL_\w+)=", script, re.M))
    module = (REPO / "data_mesh_tests" / "test_ddz_sqlserver.py").read_text(encoding="utf-8")
    read = set(re.findall(r'os\.environ\.get\("(DATA_MESH_TEST_MSSQL_\w+)"', module))
    assert {"DATA_MESH_TEST_MSSQL_URL", "DATA_MESH_TEST_MSSQL_ACCESS_TOKEN"} <= exported
    assert exported <= read, exported - read
    url = re.search(r'DATA_MESH_TEST_MSSQL_URL="([^"]+)"', script)
    assert url and url.group(1).startswith("jdbc:sqlserver://${DATA_MESH_METADATA_AZURE_SERVER}")
    publish = [s for s in steps if s.get("task") == "PublishTestResults@2"]
    assert publish and publish[0]["inputs"]["testResultsFormat"] == "JUnit"
    assert publish[0]["inputs"]["testResultsFiles"] == "$(junitFile)"
    assert publish[0]["condition"] == "succeededOrFailed()"


def test_cd_stages_run_dev_int_qa_prod_in_order_with_environments() -> None:
    stages = _cd_stages()
    names = [stage["stage"] for stage in stages]
    assert names == ["Build", *DEPLOY_STAGES], names
    previous = "Build"
    for stage in stages[1:]:
        name, env = stage["stage"], stage["stage"].lower()
        depends = stage.get("dependsOn")
        depends = [depends] if isinstance(depends, str) else depends
        assert depends == [previous], f"{name} depends on {depends}, not on {previous}"
        groups = [v.get("group") for v in stage["variables"] if isinstance(v, dict)]
        assert f"data-mesh-{env}" in groups, f"{name}: no variable group data-mesh-{env}"
        deployments = [job for job in stage["jobs"] if "deployment" in job]
        assert deployments, f"{name} has no deployment job"
        for job in deployments:
            assert job["deployment"] != "deploy", "'deploy' is reserved for deployment jobs"
            assert job["environment"] == f"data-mesh-{env}", f"{name}: {job.get('environment')}"
            steps = job["strategy"]["runOnce"]["deploy"]["steps"]
            assert steps, f"{name}: the deployment job has no step"
        previous = name


def test_cd_deploys_the_digest_built_once() -> None:
    """One build stage pushes the image; each stage deploys the reference it recorded."""
    build = _load_yaml(PIPELINES / "cd.yml")["stages"][0]
    tasks = [s.get("task") for s in build["jobs"][0]["steps"]]
    assert tasks.count("Docker@2") == 2, tasks  # build, push
    text = {p.name: p.read_text(encoding="utf-8") for p in _pipeline_files()}
    assert "image-ref.txt" in text["cd.yml"]
    for template in ("store-migrate.yml", "helm-user-code.yml"):
        assert "image/image-ref.txt" in text[template], template
        assert "docker build" not in text[template] and "Docker@2" not in text[template]


def test_cd_migrates_loads_and_validates_the_store_before_helm() -> None:
    stage = _cd_stages()[1]
    job = next(j for j in stage["jobs"] if "deployment" in j)
    steps = job["strategy"]["runOnce"]["deploy"]["steps"]
    order = [s.get("template") or s.get("task") for s in steps]
    assert order.index("store-migrate.yml") < order.index("helm-user-code.yml"), order
    migrate = _expand_template(PIPELINES / "templates" / "store-migrate.yml", {"env": "dev"})
    script = migrate["steps"][0]["inputs"]["inlineScript"]
    commands = re.findall(r"^data_mesh (\w+)", script, flags=re.MULTILINE)
    assert commands == ["init", "load", "validate"], commands
    assert migrate["steps"][0]["inputs"]["addSpnToEnvironment"] is True
    # The settings the container gets exist in data_mesh's Settings.
    from data_mesh.settings.model import Settings

    known = {f"DATA_MESH_{name.upper()}" for name in Settings.model_fields}
    passed = set(re.findall(r"-e (DATA_MESH_\w+)", script))
    assert passed and passed <= known, passed - known
    # `data-mesh load` ends with `dg utils refresh-defs-state` on DAGSTER_HOME's instance: on the
    # agent a throwaway, writable one (the image's DAGSTER_HOME belongs to uid 10001), never
    # the deployed state storage, which only the in-cluster Job writes.
    assert "-e DAGSTER_HOME=/tmp " in script


DEFS_STATE_TEMPLATE = PIPELINES / "templates" / "defs-state-refresh.yml"


def test_cd_publishes_the_defs_state_in_the_cluster_after_helm() -> None:
    """After the Helm upgrade a Job runs `dg utils refresh-defs-state`; the stage waits for it,
    prints its logs when it fails, then restarts the code server so that it loads the state."""
    for stage in _cd_stages()[1:]:
        job = next(j for j in stage["jobs"] if "deployment" in j)
        steps = job["strategy"]["runOnce"]["deploy"]["steps"]
        order = [s.get("template") or s.get("task") for s in steps]
        assert order.index("store-migrate.yml") < order.index("helm-user-code.yml"), order
        assert order.index("helm-user-code.yml") < order.index("defs-state-refresh.yml"), order
        refresh = next(s for s in steps if s.get("template") == "defs-state-refresh.yml")
        assert refresh["parameters"]["env"] == stage["stage"].lower()

    template = _expand_template(DEFS_STATE_TEMPLATE, {"env": "prod"})
    (step,) = template["steps"]
    assert step["task"] == "AzureCLI@2"
    assert step["inputs"]["azureSubscription"] == "sc-data-mesh-prod"
    script = step["inputs"]["inlineScript"]
    assert script.startswith("set -euo pipefail")
    lines = [line.strip() for line in script.splitlines()]

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, f"defs-state-refresh.yml runs nothing matching {pattern!r}"
        return found[0]

    kubeconfig = first(r"kubelogin convert-kubeconfig")
    render = first(r"render_defs_state_job\.py")
    create = first(r"kubectl .*\bcreate --filename .*defs-state-job\.json")
    wait_complete = first(r"kubectl .*\bwait --for=condition=complete --timeout=")
    wait_failed = first(r"kubectl .*\bwait --for=condition=failed ")
    logs = first(r"kubectl .*\blogs \"job/\$job\"")
    restart = first(r"kubectl .*\brollout restart \"\$deployment\"")
    status = first(r"kubectl .*\brollout status \"\$deployment\" --timeout=")
    assert kubeconfig < render < create < wait_complete < logs < restart < status
    assert create < wait_failed < restart
    # The failure branch prints the logs and fails the step before any restart.
    failure = script[script.index("if ! wait") : script.index("rollout restart")]
    assert 'logs "job/$job"' in failure and "exit 1" in failure
    # The Job is built from the image this run built, and is unique per run and attempt.
    assert 'image=$(cat "$(Pipeline.Workspace)/image/image-ref.txt")' in script
    assert '--image "$image"' in script
    assert 'job="data-mesh-defs-state-$(Build.BuildId)-$(System.JobAttempt)"' in script
    # It finds the code server of the release helm-user-code.yml installs, from these values.
    helm = _expand_template(PIPELINES / "templates" / "helm-user-code.yml", {"env": "prod"})
    deploy = next(s for s in helm["steps"] if s.get("task") == "HelmDeploy@1")["inputs"]
    assert "app.kubernetes.io/instance=data-mesh-user-code,deployment=data-mesh" in script
    assert deploy["releaseName"] == "data-mesh-user-code"
    for env in ENVS:
        names = [d["name"] for d in _values(env)["dagster-user-deployments"]["deployments"]]
        assert names == ["data-mesh"], env


def test_helm_check_requires_the_instance_config_with_a_state_storage() -> None:
    helm = _expand_template(PIPELINES / "templates" / "helm-user-code.yml", {"env": "dev"})
    check = next(s for s in helm["steps"] if "Check the cluster" in s.get("displayName", ""))
    script = check["inputs"]["inlineScript"]
    assert "get configmap dagster-instance" in script
    assert "'^defs_state_storage:'" in script and "exit 1" in script


def test_helm_upgrade_installs_the_user_code_chart_with_the_rendered_values() -> None:
    helm = _expand_template(PIPELINES / "templates" / "helm-user-code.yml", {"env": "qa"})
    deploy = next(s for s in helm["steps"] if s.get("task") == "HelmDeploy@1")["inputs"]
    assert deploy["command"] == "upgrade" and deploy["install"] is True
    assert deploy["chartName"] == "dagster/dagster-user-deployments"
    assert deploy["chartVersion"] == "1.13.27"
    render = next(s for s in helm["steps"] if "render_user_code_values.py" in str(s))
    assert "deploy/helm/values-qa.yaml" in render["inputs"]["script"]
    assert deploy["valueFile"].endswith("user-code-values.yaml")


# ----------------------------------------------------------------------------------------------
# no secret in deploy/


_SECRET_KEY = (
    r"(?:password|passwd|pwd|client_?secret|secret_?key|access_?key|account_?key|sas_?token)"
)
# A key ending in a secret word (admin_password, postgresqlPassword, client_secret), not one
# that only contains it (postgres_password_k8s_name, generatePostgresqlPasswordSecret).
_YAML_SECRET = re.compile(rf"^\s*-?\s*[\w.-]*{_SECRET_KEY}\s*:\s*(?P<value>.*)$", re.I)
_QUOTED_SECRET = re.compile(rf"[\w.-]*{_SECRET_KEY}\"?\s*[:=]\s*\"(?P<value>[^\"]+)\"", re.I)
_ANYWHERE = (
    re.compile(r"AccountKey=[A-Za-z0-9+/]{20,}"),
    re.compile(r"[?&;]sig=[A-Za-z0-9%+/]{16,}"),
    re.compile(r"SharedAccessSignature=[A-Za-z0-9%+/&=]{16,}"),
    re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----"),
)


def _is_reference(value: str) -> bool:
    """An empty value or a reference (env var, pipeline variable, template expression)."""
    value = value.split(" #", 1)[0].strip().strip("'\"")
    return (
        not value
        or value.lower() in {"~", "null", "true", "false"}
        or value.isdigit()
        or value.startswith(("$(", "${", "$[", "{", "<", "env:", "var.", "random_password."))
    )


def secret_literals(text: str, name: str) -> list[str]:
    """Lines of a file that look like a secret written out."""
    found = []
    yaml_file = name.endswith((".yml", ".yaml"))
    for number, line in enumerate(text.splitlines(), start=1):
        if any(pattern.search(line) for pattern in _ANYWHERE):
            found.append(f"{name}:{number}")
            continue
        match = (_YAML_SECRET if yaml_file else _QUOTED_SECRET).search(line)
        if match and not line.lstrip().startswith("#") and not _is_reference(match["value"]):
            found.append(f"{name}:{number}")
    return found


def test_the_secret_scan_finds_literals() -> None:
    # The scan below must be able to fail.
    assert secret_literals("password: hunter2", "x.yaml")
    assert secret_literals("  client_secret: abc123", "x.yml")
    assert secret_literals('administrator_password = "Hunter2!"', "main.tf")
    assert secret_literals("DefaultEndpointsProtocol=https;AccountKey=" + "A" * 40, "x.md")
    assert secret_literals("https://a.blob.core.windows.net/c?sv=2022&sig=" + "b" * 30, "x.sh")
    assert not secret_literals("password: {env: DAGSTER_PG_PASSWORD}", "dagster.yaml")
    assert not secret_literals("password: $(DB_PASSWORD)", "pipeline.yml")
    assert not secret_literals("administrator_password = var.admin_password", "main.tf")
    assert not secret_literals('"postgresqlPassword": {', "values.schema.json")
    assert not secret_literals('postgres_password_k8s_name = "dagster-postgresql-secret"', "x.tf")
    assert not secret_literals("generatePostgresqlPasswordSecret: false", "values-dev.yaml")


def test_no_secret_literal_under_deploy() -> None:
    found = []
    for path in _deploy_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found.extend(secret_literals(text, _rel(path)))
    assert not found, f"secret-looking literals: {found}"


# ----------------------------------------------------------------------------------------------
# Dagster instance (deploy/dagster/dagster.yaml)


def _instance_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from dagster._core.instance.config import dagster_instance_config

    text = DAGSTER_YAML.read_text(encoding="utf-8")
    for name in set(re.findall(r"\benv:\s*(\w+)", text)):
        monkeypatch.setenv(name, f"dummy-{name.lower()}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    config, custom_instance_class = dagster_instance_config(str(home))
    assert custom_instance_class is None
    return dict(config)


def test_dagster_yaml_is_a_valid_instance_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config
    from dagster._serdes import ConfigurableClass
    from dagster._serdes.config_class import class_from_code_pointer

    config = _instance_config(tmp_path, monkeypatch)
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert postgres["params"]["sslmode"] == "require"
    assert config["telemetry"] == {"enabled": False}
    assert config["run_retries"]["enabled"] is True and config["run_retries"]["max_retries"] == 2
    assert config["run_monitoring"]["enabled"] is True
    # Each class it names imports and accepts its config (env vars resolved to the dummies).
    named = {
        key: value for key, value in config.items() if isinstance(value, dict) and "module" in value
    }
    assert set(named) >= {"compute_logs", "run_coordinator", "defs_state_storage"}, set(named)
    for key, pointer in named.items():
        cls = class_from_code_pointer(pointer["module"], pointer["class"])
        assert issubclass(cls, ConfigurableClass), key
        result = process_config(cls.config_type(), pointer.get("config") or {})
        assert result.success, f"{key}: {[e.message for e in result.errors or []]}"
    logs = config["compute_logs"]
    assert logs["class"] == "AzureBlobComputeLogManager"
    assert logs["config"]["default_azure_credential"] == {}
    assert not {"access_key_or_sas_token", "secret_credential"} & set(logs["config"])
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {limit["key"] for limit in limits} >= {"data_mesh/ddz_database"}


def test_dagster_yaml_state_storage_is_the_lake_through_managed_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state storage Dagster builds from the file: an az:// path on the lake account that
    adlfs reads from AZURE_STORAGE_ACCOUNT_NAME, signed in with DefaultAzureCredential."""
    from dagster import UPathDefsStateStorage
    from dagster._serdes.config_class import ConfigurableClassData

    state = _instance_config(tmp_path, monkeypatch)["defs_state_storage"]
    assert (state["module"], state["class"]) == ("dagster", "UPathDefsStateStorage")
    config = state["config"]
    assert config["base_path"] == "az://dagster-defs-state/data_mesh"
    # No `{env: ...}`: Dagster would pass it to adlfs as it is (plain str and Permissive fields).
    assert config["storage_options"] == {"anon": False}
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "stdatameshdev")
    storage = UPathDefsStateStorage.from_config_value(
        ConfigurableClassData(state["module"], state["class"], yaml.safe_dump(config)), config
    )
    assert storage.base_path.protocol in ("az", "abfs")
    filesystem = storage.base_path.fs
    assert filesystem.account_name == "stdatameshdev" and filesystem.anon is False


# ----------------------------------------------------------------------------------------------
# Helm values


PARENT_SCHEMA = HELM / "schema" / "values.schema.json"
USER_CODE_SCHEMA = HELM / "schema" / "dagster-user-deployments.values.schema.json"
# Helm merges maps with the chart's own values.yaml but replaces lists: a list item must be
# complete in our values, a map need not (the chart's defaults fill it).
LIST_ITEM_DEFINITIONS = frozenset(
    {"UserDeployment", "TagConcurrencyLimit", "Server", "CeleryWorkerQueue", "IngressPath"}
)


def _vendored_schema(path: Path) -> dict[str, Any]:
    """The vendored schema, checked to be the upstream file its $comment names."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    comment = schema.pop("$comment")
    expected = re.search(r"sha256 ([0-9a-f]{64})", comment)
    assert expected, f"{_rel(path)}: the $comment names no sha256"
    digest = hashlib.sha256((json.dumps(schema, indent=4) + "\n").encode()).hexdigest()
    assert digest == expected.group(1), f"{_rel(path)} was edited after vendoring"
    return schema


def _overlay_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The chart schema for a values file that Helm merges over the chart's defaults.

    - `required` is dropped except inside list-item definitions and `then` clauses;
    - `$ref`s to kubernetesjsonschema.dev (Kubernetes object schemas, not reachable offline) are
      dropped, keeping the keywords next to them (type, additionalProperties)."""
    schema = copy.deepcopy(schema)
    definitions_key = "definitions" if "definitions" in schema else "$defs"

    def strip(node: Any, keep_required: bool) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                del node["$ref"]
            if not keep_required:
                node.pop("required", None)
            for key, value in node.items():
                strip(value, keep_required or key == "then")
        elif isinstance(node, list):
            for item in node:
                strip(item, keep_required)

    for name, definition in schema[definitions_key].items():
        strip(definition, name in LIST_ITEM_DEFINITIONS)
    schema.pop("required", None)
    strip(schema["properties"], False)
    return schema


def _schema_errors(schema: dict[str, Any], values: Any) -> list[str]:
    try:
        import jsonschema
    except ImportError:  # today it comes with dagster-azure (through azure-ai-ml)
        pytest.fail("jsonschema is missing: add jsonschema>=4.18 to the dev extras")

    draft = "$defs" in schema
    validator_class = jsonschema.Draft202012Validator if draft else jsonschema.Draft7Validator
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    ]


def _values(env: str) -> dict[str, Any]:
    values = _load_yaml(HELM / f"values-{env}.yaml")
    assert isinstance(values, dict)
    return values


@pytest.mark.parametrize("env", ENVS)
def test_helm_values_match_the_dagster_chart_schema(env: str) -> None:
    errors = _schema_errors(_overlay_schema(_vendored_schema(PARENT_SCHEMA)), _values(env))
    assert not errors, f"deploy/helm/values-{env}.yaml:\n" + "\n".join(errors)


def test_the_schema_check_can_fail() -> None:
    schema = _overlay_schema(_vendored_schema(PARENT_SCHEMA))
    bad = copy.deepcopy(_values("dev"))
    bad["runLauncher"]["type"] = "K8sRunLaunch"
    bad["dagster-user-deployments"]["deployments"][0].pop("port")
    bad["dagsterDaemon"]["runCoordiantor"] = {}
    errors = "\n".join(_schema_errors(schema, bad))
    assert "K8sRunLaunch" in errors and "'port' is a required property" in errors
    assert "runCoordiantor" in errors


@pytest.mark.parametrize("env", ENVS)
def test_helm_values_deploy_data_mesh(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    values = _values(env)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert (
        values["postgresql"]["postgresqlHost"]
        == f"psql-data-mesh-{env}.postgres.database.azure.com"
    )
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"
    assert values["dagsterDaemon"]["enabled"] is True
    assert values["telemetry"]["enabled"] is False
    assert values["serviceAccount"]["name"] == "dagster"
    assert values["dagsterWebserver"]["labels"]["azure.workload.identity/use"] == "true"
    assert values["computeLogManager"]["type"] == "AzureBlobComputeLogManager"
    logs = values["computeLogManager"]["config"]["azureBlobComputeLogManager"]
    assert logs["storageAccount"] == f"stdatamesh{env}"
    assert logs["container"] == "dagster-logs"

    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] is True and user_code["enableSubchart"] is False
    assert user_code["serviceAccount"]["create"] is True
    assert user_code["serviceAccount"]["name"] == "data-mesh-user-code"
    (deployment,) = user_code["deployments"]
    assert deployment["port"] == 4000
    assert deployment["codeServerArgs"] == [
        "-m",
        "data_mesh.definitions",
        "-d",
        "/opt/data_mesh",
        "--location-name",
        "data_mesh",
    ]
    # The code server reads the instance the system release writes (state storage, run storage).
    (volume,) = deployment["volumes"]
    assert volume == {"name": "dagster-instance", "configMap": {"name": "dagster-instance"}}
    (mount,) = deployment["volumeMounts"]
    assert mount["name"] == "dagster-instance" and mount["subPath"] == "dagster.yaml"
    assert mount["mountPath"] == "/opt/dagster/dagster_home/dagster.yaml"
    dockerfile_home = re.search(r"DAGSTER_HOME=(\S+)", DOCKERFILE.read_text(encoding="utf-8"))
    assert dockerfile_home and mount["mountPath"] == f"{dockerfile_home.group(1)}/dagster.yaml"
    # The workspace names the location as the `dg` project and the code server do.
    workspace = values["dagsterWebserver"]["workspace"]
    assert workspace["enabled"] is True
    assert workspace["servers"] == [{"host": "data-mesh", "port": 4000, "name": "data_mesh"}]
    with (REPO / "pyproject.toml").open("rb") as handle:
        import tomllib

        project = tomllib.load(handle)["tool"]["dg"]["project"]
    assert project["code_location_name"] == "data_mesh"
    assert project["code_location_target_module"] == deployment["codeServerArgs"][1]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["labels"]["azure.workload.identity/use"] == "true"
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    assert deployment["podSecurityContext"]["runAsUser"] == 10001
    assert deployment["image"]["tag"] is None, "the pipeline sets the tag (image digest)"

    # The environment is a valid data_mesh configuration of this stage.
    from data_mesh.settings.model import Settings

    environment = deployment["env"]
    known = {f"DATA_MESH_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= known, set(environment) - known
    for name in [n for n in os.environ if n.startswith("DATA_MESH_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.env.value == env.upper()
    assert settings.metadata_azure_server == f"sql-data-mesh-{env}.database.windows.net"
    assert settings.metadata_azure_auth == "token" and settings.ddz_azure_auth == "token"
    assert settings.resolved_lake_kind == "adls" and settings.adls_account == f"stdatamesh{env}"
    assert (settings.ddz_jdbc_url or "").startswith(
        f"jdbc:sqlserver://sql-data-mesh-{env}.database.windows.net:1433;database=data_mesh_ddz;"
    )
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert settings.jdbc_jars and all(jar in dockerfile for jar in settings.jdbc_jars)


def test_helm_values_match_the_terraform_module() -> None:
    """The names the values share with deploy/terraform (written separately) agree."""
    module = DEPLOY / "terraform" / "modules" / "aks_dagster"
    if not module.is_dir():
        pytest.skip("deploy/terraform/modules/aks_dagster is not there yet")
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(module.glob("*.tf")))

    def default(variable: str) -> str | None:
        match = re.search(rf'variable "{variable}" {{[^}}]*?default\s*=\s*"([^"]+)"', text, re.S)
        return match.group(1) if match else None

    values = _values("dev")
    assert default("kubernetes_namespace") == "dagster"
    assert default("dagster_chart_version") == "1.13.27"
    assert default("system_service_account_name") == values["serviceAccount"]["name"]
    user_code_account = values["dagster-user-deployments"]["serviceAccount"]["name"]
    assert default("user_code_service_account_name") == user_code_account
    assert f'"{values["global"]["postgresqlSecretName"]}"' in text
    for env in ENVS:
        backend = DEPLOY / "terraform" / "environments" / env / "backend.tf"
        if backend.is_file():
            key = re.search(r'key\s*=\s*"([^"]+)"', backend.read_text(encoding="utf-8"))
            assert key and key.group(1) == f"data_mesh/{env}.tfstate", _rel(backend)
    init = (PIPELINES / "templates" / "terraform-init.yml").read_text(encoding="utf-8")
    assert "backendAzureRmKey: data_mesh/${{ parameters.env }}.tfstate" in init
    assert "backendAzureRmContainerName: tfstate" in init


def test_values_and_cd_name_the_same_image_repository() -> None:
    variables = {
        v["name"]: v.get("value")
        for v in _load_yaml(PIPELINES / "cd.yml")["variables"]
        if "name" in v
    }
    built = f"{variables['acrLoginServer']}/{variables['imageRepository']}"
    for env in ENVS:
        for deployment in _values(env)["dagster-user-deployments"]["deployments"]:
            assert deployment["image"]["repository"] == built, env


@pytest.mark.parametrize("env", ENVS)
def test_helm_values_agree_with_dagster_yaml(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = _instance_config(tmp_path, monkeypatch)
    values = _values(env)
    daemon = values["dagsterDaemon"]
    custom = daemon["runCoordinator"]["config"]["customRunCoordinator"]
    assert daemon["runCoordinator"]["type"] == "CustomRunCoordinator"
    assert {k: custom[k] for k in ("module", "class", "config")} == {
        k: instance["run_coordinator"][k] for k in ("module", "class", "config")
    }
    monitoring = daemon["runMonitoring"]
    assert monitoring["enabled"] is instance["run_monitoring"]["enabled"]
    assert monitoring["startTimeoutSeconds"] == instance["run_monitoring"]["start_timeout_seconds"]
    assert monitoring["pollIntervalSeconds"] == instance["run_monitoring"]["poll_interval_seconds"]
    # run_retries: through additionalInstanceConfig, the chart's own key left off (one key).
    assert daemon["runRetries"]["enabled"] is False
    assert values["additionalInstanceConfig"]["run_retries"] == instance["run_retries"]
    assert values["additionalInstanceConfig"]["concurrency"] == instance["concurrency"]
    # The same state storage; the values name the environment's lake account, which the file
    # leaves to AZURE_STORAGE_ACCOUNT_NAME.
    state = values["additionalInstanceConfig"]["defs_state_storage"]
    expected = instance["defs_state_storage"]
    assert {k: state[k] for k in ("module", "class")} == {
        k: expected[k] for k in ("module", "class")
    }
    assert state["config"]["base_path"] == expected["config"]["base_path"]
    assert state["config"]["storage_options"] == {
        **expected["config"]["storage_options"],
        "account_name": f"stdatamesh{env}",
    }
    compute_logs = values["computeLogManager"]["config"]["azureBlobComputeLogManager"]
    assert state["config"]["storage_options"]["account_name"] == compute_logs["storageAccount"]
    assert daemon["sensors"] == {
        "useThreads": True,
        "numWorkers": instance["sensors"]["num_workers"],
    }
    assert daemon["schedules"]["numWorkers"] == instance["schedules"]["num_workers"]
    logs = values["computeLogManager"]["config"]["azureBlobComputeLogManager"]
    assert logs["container"] == instance["compute_logs"]["config"]["container"]
    assert logs["prefix"] == instance["compute_logs"]["config"]["prefix"]
    retention = values["retention"]
    assert (
        retention["schedule"]["purgeAfterDays"]
        == instance["retention"]["schedule"]["purge_after_days"]
    )
    assert (
        retention["sensor"]["purgeAfterDays"] == instance["retention"]["sensor"]["purge_after_days"]
    )
    assert values["telemetry"] == instance["telemetry"]


def test_helm_values_have_the_same_keys_in_every_environment() -> None:
    """The four files differ in values (names, sizes), never in structure."""

    def shape(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: shape(value) for key, value in node.items()}
        if isinstance(node, list):
            return [shape(item) for item in node]
        return type(node).__name__

    shapes = {env: shape(_values(env)) for env in ENVS}
    assert all(s == shapes["dev"] for s in shapes.values()), "values files have different keys"


IMAGE = "acrdatamesh.azurecr.io/data-mesh-user-code:20261122.1@sha256:" + "0123456789abcdef" * 4
CLIENT_ID = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"


@pytest.mark.parametrize("env", ENVS)
def test_rendered_user_code_values_match_the_user_deployments_chart(env: str) -> None:
    render = _load_script("render_user_code_values")
    rendered = render.render(_values(env), IMAGE, CLIENT_ID)
    errors = _schema_errors(_overlay_schema(_vendored_schema(USER_CODE_SCHEMA)), rendered)
    assert not errors, f"values rendered from values-{env}.yaml:\n" + "\n".join(errors)
    (deployment,) = rendered["deployments"]
    assert deployment["image"] == {
        "repository": "acrdatamesh.azurecr.io/data-mesh-user-code",
        "tag": "20261122.1@sha256:" + "0123456789abcdef" * 4,
        "pullPolicy": "IfNotPresent",
    }
    assert rendered["serviceAccount"] == {
        "create": True,
        "name": "data-mesh-user-code",
        "annotations": {"azure.workload.identity/client-id": CLIENT_ID},
    }
    assert rendered["postgresqlSecretName"] == "dagster-postgresql-secret"
    assert "enableSubchart" not in rendered and "enabled" not in rendered
    # The source values are left as they were.
    assert _values(env)["dagster-user-deployments"]["deployments"][0]["image"]["tag"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v, i, c: (v, i.split("@")[0], c), "sha256"),
        (lambda v, i, c: (v, i.replace("data-mesh-user-code", "other"), c), "the pipeline built"),
        (lambda v, i, c: (v, i, ""), "GUID"),
        (lambda v, i, c: (v, i, "00000000-0000-0000-0000"), "GUID"),
        (lambda v, i, c: ({**v, "dagster-user-deployments": {"deployments": []}}, i, c), "empty"),
        (
            lambda v, i, c: ({k: x for k, x in v.items() if k != "dagster-user-deployments"}, i, c),
            "block",
        ),
    ],
)
def test_rendering_refuses_an_undeployable_release(change: Any, message: str) -> None:
    render = _load_script("render_user_code_values")
    values, image, client_id = change(_values("dev"), IMAGE, CLIENT_ID)
    with pytest.raises(render.RenderError, match=message):
        render.render(values, image, client_id)


def test_render_script_writes_the_values_file(tmp_path: Path) -> None:
    render = _load_script("render_user_code_values")
    out = tmp_path / "user-code-values.yaml"
    prod = str(HELM / "values-prod.yaml")
    arguments = ["--values", prod, "--client-id", CLIENT_ID, "--out", str(out)]
    assert render.main([*arguments, "--image", IMAGE]) == 0
    assert _load_yaml(out)["deployments"][0]["env"]["DATA_MESH_ENV"] == "PROD"
    assert render.main([*arguments, "--image", "latest"]) == 1


def _code_server_deployment(env: str, image: str = IMAGE) -> dict[str, Any]:
    """The code server's Deployment as the chart dagster-user-deployments 1.13.27 renders it
    from the rendered values (templates/deployment-user.yaml), as `kubectl get -o json` shows
    it: what render_defs_state_job.py reads."""
    values = _load_script("render_user_code_values").render(_values(env), image, CLIENT_ID)
    (deployment,) = values["deployments"]
    release, fullname = "data-mesh-user-code", "data-mesh-user-code-dagster-user-deployments"
    selector = {
        "app.kubernetes.io/name": "dagster-user-deployments",
        "app.kubernetes.io/instance": release,
        "component": "user-deployments",
        "deployment": deployment["name"],
    }
    container = {
        "name": "dagster-user-deployments",
        "image": image,
        "imagePullPolicy": deployment["image"]["pullPolicy"],
        "args": ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000"]
        + deployment["codeServerArgs"],
        "env": [
            {"name": "DAGSTER_CURRENT_IMAGE", "value": image},
            {
                "name": "DAGSTER_PG_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": values["postgresqlSecretName"],
                        "key": "postgresql-password",
                    }
                },
            },
            {"name": "DAGSTER_CONTAINER_CONTEXT", "value": "{}"},
        ],
        "envFrom": [
            {"configMapRef": {"name": f"{fullname}-user-deployments-shared-env"}},
            {"configMapRef": {"name": f"{fullname}-{deployment['name']}-user-env"}},
        ],
        "resources": deployment["resources"],
        "securityContext": deployment["securityContext"],
        "readinessProbe": {"exec": {"command": ["dagster", "api", "grpc-health-check"]}},
        "volumeMounts": deployment["volumeMounts"],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{fullname}-{deployment['name']}",
            "labels": {**selector, **deployment["labels"]},
        },
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": {**selector, **deployment["labels"]},
                    "annotations": {"checksum/dagster-user-deployment": "0" * 64},
                },
                "spec": {
                    "serviceAccountName": values["serviceAccount"]["name"],
                    "automountServiceAccountToken": True,
                    "securityContext": deployment["podSecurityContext"],
                    "containers": [container],
                    "volumes": deployment["volumes"],
                },
            },
        },
    }


@pytest.mark.parametrize("env", ENVS)
def test_defs_state_job_runs_dg_refresh_like_the_code_server(env: str) -> None:
    script = _load_script("render_defs_state_job")
    deployment = _code_server_deployment(env)
    job = script.render(deployment, IMAGE, "data-mesh-defs-state-42-1", deadline_seconds=900)
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "data-mesh-defs-state-42-1"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 900
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    server_pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (server,) = server_pod["containers"]
    # The command, in the project root, from the same image digest.
    assert container["command"] == [
        "dg",
        "utils",
        "refresh-defs-state",
        "--target-path",
        "/opt/data_mesh",
    ]
    assert container["workingDir"] == "/opt/data_mesh"
    assert container["image"] == IMAGE and "@sha256:" in container["image"]
    # The code server's environment, instance config and identity.
    for key in ("env", "envFrom", "volumeMounts", "securityContext", "resources"):
        assert container[key] == server[key], key
    password = next(e for e in container["env"] if e["name"] == "DAGSTER_PG_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == "dagster-postgresql-secret"
    assert any("-user-env" in ref["configMapRef"]["name"] for ref in container["envFrom"])
    assert {"name": "dagster-instance", "configMap": {"name": "dagster-instance"}} in pod["volumes"]
    assert pod["serviceAccountName"] == "data-mesh-user-code"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["restartPolicy"] == "Never"
    assert "readinessProbe" not in container and "args" not in container
    labels = spec["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    # Not behind the code location's Service: none of the Deployment's selector labels.
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert not set(selector.items()) & set(labels.items()), labels
    # What kubectl gets is JSON it can read.
    json.loads(json.dumps(job))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="other"),
            "rolled back",
        ),
        (lambda d: d["spec"]["template"]["spec"].update(volumes=[]), "dagster-instance"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(env=[]),
            "DAGSTER_PG_PASSWORD",
        ),
        (lambda d: d["spec"]["template"]["metadata"].update(labels={}), "workload.identity"),
        (lambda d: d["spec"]["template"]["spec"].pop("serviceAccountName"), "service account"),
    ],
)
def test_defs_state_job_refuses_a_code_server_it_cannot_copy(change: Any, message: str) -> None:
    script = _load_script("render_defs_state_job")
    deployment = _code_server_deployment("dev")
    change(deployment)
    with pytest.raises(script.RenderError, match=message):
        script.render(deployment, IMAGE, "data-mesh-defs-state-42-1")


def test_defs_state_job_script_writes_the_manifest(tmp_path: Path) -> None:
    script = _load_script("render_defs_state_job")
    source = tmp_path / "code-server.json"
    source.write_text(json.dumps(_code_server_deployment("qa")), encoding="utf-8")
    out = tmp_path / "job.json"
    arguments = ["--deployment", str(source), "--image", IMAGE, "--out", str(out)]
    assert script.main([*arguments, "--name", "data-mesh-defs-state-7-2"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["metadata"]["name"] == (
        "data-mesh-defs-state-7-2"
    )
    assert script.main([*arguments, "--name", "Not_A_Kubernetes_Name"]) == 1


# ----------------------------------------------------------------------------------------------
# Dockerfile


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        current += " " + stripped.removesuffix("\\") if current else stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            logical.append(current)
            current = ""
    result = []
    for entry in logical:
        instruction, _, arguments = entry.partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def test_dockerfile_passes_hadolint() -> None:
    if not HADOLINT.is_file():
        pytest.skip(
            f"{_rel(HADOLINT)} is missing: scripts/setup.sh installs it with "
            "DATA_MESH_WITH_DEPLOY_TOOLS=1 (scripts/test.sh sets it)"
        )
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    findings = json.loads(result.stdout or "[]")
    assert not findings, "\n".join(
        f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_base_user_and_packages() -> None:
    instructions = _instructions()
    (base,) = [args for name, args in instructions if name == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] == "10001", users
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert re.search(r"ACCEPT_EULA=Y apt-get install [^&]*\bmsodbcsql18\b", runs), runs
    assert re.search(r"apt-get install [^&]*\bopenjdk-17-jre-headless\b", runs)
    assert "packages.microsoft.com/debian/12/prod" in runs
    assert re.search(r"pip install -e \. ", runs) and "[dev]" not in runs
    assert ("EXPOSE", "4000") in instructions
    (command,) = [json.loads(args) for name, args in instructions if name == "CMD"]
    assert command[:3] == ["dagster", "code-server", "start"] and "4000" in command
    # The same arguments as the chart's (codeServerArgs), after its own `-h ... -p <port>`.
    chart_args = _values("dev")["dagster-user-deployments"]["deployments"][0]["codeServerArgs"]
    assert command[7:] == chart_args, command
    assert not [name for name, _ in instructions if name == "ENTRYPOINT"], "the chart sets args"


def test_dockerfile_installs_the_dg_project_editable_in_its_root() -> None:
    """`dg.load_from_defs_folder` and `dg utils refresh-defs-state` need the package imported
    from the source tree, with pyproject.toml (`[tool.dg]`) above it: an editable install in
    /opt/data_mesh, not a copy in site-packages."""
    workdir = None
    copied: dict[str, str] = {}
    install_dir = None
    for name, args in _instructions():
        if name == "WORKDIR":
            workdir = args
        elif name == "COPY":
            *sources, dest = args.split()
            for source in sources:
                copied[source.rstrip("/")] = str(Path(workdir or "/", dest))
        elif name == "RUN" and re.search(r"pip install -e \. ", args):
            install_dir = workdir
    assert install_dir == "/opt/data_mesh", install_dir
    assert copied["pyproject.toml"] == "/opt/data_mesh"
    assert copied["data_mesh"] == "/opt/data_mesh/data_mesh"
    # The project's own layout, which the image keeps: the dg project and its defs folder.
    with (REPO / "pyproject.toml").open("rb") as handle:
        import tomllib

        project = tomllib.load(handle)["tool"]["dg"]["project"]
    assert project["defs_module"] == "data_mesh.defs"
    assert (REPO / "data_mesh" / "defs" / "mesh" / "defs.yaml").is_file()
    # dg looks for the project upwards from the working directory: the final one is inside it.
    assert workdir is not None and Path(workdir).is_relative_to("/opt/data_mesh"), workdir
    command = next(json.loads(args) for name, args in _instructions() if name == "CMD")
    assert command[command.index("-d") + 1] == "/opt/data_mesh"


def test_docker_build_context_lets_in_what_the_dockerfile_copies() -> None:
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    rules = [
        line.strip() for line in ignore.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is excluded first"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    sources = []
    for name, args in _instructions():
        if name == "COPY" and "--from" not in args:
            sources.extend(args.split()[:-1])
    assert sources and {s.rstrip("/") for s in sources} <= allowed, (sources, allowed)
    # A workstation's LOCAL state never goes in; the defs folder does (nothing excludes it).
    assert "**/.local_defs_state/" in rules
    excluded = [rule for rule in rules[1:] if not rule.startswith("!")]
    defs = ("data_mesh/defs/mesh/defs.yaml", "data_mesh/defs/__init__.py")
    for path in defs:
        parts = Path(path).parts
        hits = [
            rule
            for rule in excluded
            if any(
                fnmatch.fnmatch("/".join(parts[i:j]), rule.removeprefix("**/").rstrip("/"))
                for i in range(len(parts))
                for j in range(i + 1, len(parts) + 1)
            )
        ]
        assert not hits, (path, hits)
    state = "data_mesh/defs/.local_defs_state/data_mesh_local_0/state"
    assert any(
        fnmatch.fnmatch(part, rule.removeprefix("**/").rstrip("/"))
        for rule in excluded
        for part in Path(state).parts
    )
