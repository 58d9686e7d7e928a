"""Render the Kubernetes Job that publishes the data_mesh definitions' state in the cluster.

After the Helm upgrade of the code location, the CD pipeline runs `dg utils refresh-defs-state`
once, in the cluster, as the code server would: same image digest, same environment (the
chart's ConfigMaps of DATA_MESH_* settings and DAGSTER_HOME, DAGSTER_PG_PASSWORD from the secret
dagster-postgresql-secret), same instance config (ConfigMap dagster-instance at
$DAGSTER_HOME/dagster.yaml, whose defs_state_storage receives the state and whose run storage
records its version), same service account and workload identity label (the user-code identity
may write the state container). So the Job's pod is built from the code server's live
Deployment (`kubectl get deployment -o json`), not from a second copy of the values:

    python render_defs_state_job.py --deployment code-server.json \
        --image acrdatamesh.azurecr.io/data-mesh-user-code:1234@sha256:<64 hex> \
        --name data-mesh-defs-state-1234-1 --out job.json

Only the workload identity label is taken from the pod's labels: the chart's selector labels
would put the Job's pod behind the code location's Service. It refuses a Deployment that runs
another image than the one given (the upgrade was rolled back, or another release won), that
has no instance config or PostgreSQL password, or no workload identity, so the refresh never
publishes a state from the wrong code or to the wrong place. The output is JSON, which kubectl
reads as it reads YAML (standard library only).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = "/opt/data_mesh"
COMMAND = ["dg", "utils", "refresh-defs-state", "--target-path", PROJECT_ROOT]
INSTANCE_CONFIG_MAP = "dagster-instance"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
JOB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# What the Job's container takes from the code server's container, as it is.
CONTAINER_KEYS = (
    "imagePullPolicy",
    "env",
    "envFrom",
    "volumeMounts",
    "securityContext",
    "resources",
)
# What the Job's pod takes from the code server's pod, as it is.
POD_KEYS = (
    "serviceAccountName",
    "automountServiceAccountToken",
    "securityContext",
    "volumes",
    "imagePullSecrets",
    "nodeSelector",
    "affinity",
    "tolerations",
)


class RenderError(ValueError):
    """The Deployment or the arguments cannot make a refresh Job that publishes the right state."""


def render(
    deployment: dict[str, Any],
    image: str,
    name: str,
    *,
    deadline_seconds: int = 1800,
    keep_seconds: int = 7 * 24 * 3600,
) -> dict[str, Any]:
    """The batch/v1 Job running `dg utils refresh-defs-state` like the code server's pod."""
    if not JOB_NAME.match(name):
        raise RenderError(f"job name {name!r} is not a Kubernetes name of at most 63 characters")
    template = (deployment.get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if len(containers) != 1:
        raise RenderError(f"the code server's pod has {len(containers)} containers, expected 1")
    (container,) = containers
    if container.get("image") != image.strip():
        raise RenderError(
            f"the code server runs {container.get('image')!r}, not the image this pipeline "
            f"built, {image.strip()!r}: was the upgrade rolled back?"
        )
    labels = (template.get("metadata") or {}).get("labels") or {}
    if labels.get(WORKLOAD_IDENTITY_LABEL) != "true":
        raise RenderError(f"the code server's pod has no {WORKLOAD_IDENTITY_LABEL}=true label")
    if not pod.get("serviceAccountName"):
        raise RenderError("the code server's pod names no service account")
    env_names = {item.get("name") for item in container.get("env") or []}
    if "DAGSTER_PG_PASSWORD" not in env_names:
        raise RenderError("the code server gets no DAGSTER_PG_PASSWORD (instance run storage)")
    instance_volumes = {
        volume.get("name")
        for volume in pod.get("volumes") or []
        if (volume.get("configMap") or {}).get("name") == INSTANCE_CONFIG_MAP
    }
    mounts = container.get("volumeMounts") or []
    if not any(
        mount.get("name") in instance_volumes
        and mount.get("mountPath", "").endswith("/dagster.yaml")
        for mount in mounts
    ):
        raise RenderError(
            f"the code server does not mount ConfigMap {INSTANCE_CONFIG_MAP} as dagster.yaml: "
            "without the instance there is no state storage to publish to"
        )

    job_container: dict[str, Any] = {
        "name": "refresh-defs-state",
        "image": image.strip(),
        "command": list(COMMAND),
        "workingDir": PROJECT_ROOT,
    }
    for key in CONTAINER_KEYS:
        if container.get(key) is not None:
            job_container[key] = copy.deepcopy(container[key])
    job_pod: dict[str, Any] = {
        key: copy.deepcopy(pod[key]) for key in POD_KEYS if pod.get(key) is not None
    }
    job_pod["restartPolicy"] = "Never"
    job_pod["containers"] = [job_container]
    own_labels = {
        "app.kubernetes.io/name": "data-mesh-defs-state-refresh",
        "app.kubernetes.io/part-of": "data-mesh",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": dict(own_labels)},
        "spec": {
            # One attempt: a failed refresh fails the stage, with its logs; it is not retried
            # into the deadline.
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            # Kept a week for its logs, then removed by Kubernetes.
            "ttlSecondsAfterFinished": keep_seconds,
            "template": {
                "metadata": {"labels": {**own_labels, WORKLOAD_IDENTITY_LABEL: "true"}},
                "spec": job_pod,
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deployment", type=Path, required=True, help="`kubectl get deployment -o json` output"
    )
    parser.add_argument("--image", required=True, help="<repository>:<tag>@sha256:<digest>")
    parser.add_argument("--name", required=True, help="name of the Job")
    parser.add_argument("--deadline-seconds", type=int, default=1800)
    parser.add_argument("--out", type=Path, required=True, help="Job manifest to write (JSON)")
    args = parser.parse_args(argv)
    try:
        deployment = json.loads(args.deployment.read_text(encoding="utf-8"))
        job = render(deployment, args.image, args.name, deadline_seconds=args.deadline_seconds)
    except (RenderError, json.JSONDecodeError) as error:
        print(f"render_defs_state_job: {error}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(job, indent=2), encoding="utf-8")
    print(f"render_defs_state_job: wrote {args.out} (Job {args.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
