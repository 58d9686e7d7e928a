"""Render the values of the `dagster-user-deployments` chart (the data_mesh code location).

The CD pipeline installs the code location as its own Helm release. Its values are the
`dagster-user-deployments` block of deploy/helm/values-<env>.yaml (the file Terraform's
`dagster` release reads too, so both agree on the deployment's name and port), with:
- every deployment's image pinned to the image the build stage pushed: the chart writes
  `<repository>:<tag>`, so the tag becomes `<build id>@sha256:<digest>` and every stage runs the
  same digest;
- the user-code workload identity's client ID on the code location's service account (the
  service account of the run pods too), which deploy/terraform federates with that identity;
- the PostgreSQL password secret's name from the `global` block.

    python render_user_code_values.py --values deploy/helm/values-dev.yaml \
        --image acrdatamesh.azurecr.io/data-mesh-user-code:1234@sha256:<64 hex> \
        --client-id <guid> --out user-code-values.yaml

It refuses an image without a digest, an image from another repository than the values name,
and a client ID that is not a GUID, so a half-configured environment fails before Helm runs.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

BLOCK = "dagster-user-deployments"
# Keys of the block that only the parent `dagster` chart reads.
PARENT_ONLY_KEYS = ("enabled", "enableSubchart")
IMAGE_REF = re.compile(
    r"^(?P<repository>[a-z0-9][a-z0-9.:/_-]*[a-z0-9]):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"


class RenderError(ValueError):
    """The values or the arguments cannot make a deployable release."""


def parse_image(ref: str) -> tuple[str, str]:
    """`<repository>:<tag>@sha256:<digest>` -> (repository, `<tag>@sha256:<digest>`)."""
    match = IMAGE_REF.match(ref.strip())
    if not match:
        raise RenderError(f"image {ref!r} is not <repository>:<tag>@sha256:<64 hex digits>")
    return match["repository"], f"{match['tag']}@{match['digest']}"


def render(values: dict[str, Any], image: str, client_id: str) -> dict[str, Any]:
    """The dagster-user-deployments chart's values for one environment."""
    repository, tag = parse_image(image)
    if not GUID.match(client_id.strip()):
        raise RenderError(f"client ID {client_id!r} is not a GUID")
    block = values.get(BLOCK)
    if not isinstance(block, dict):
        raise RenderError(f"the values have no {BLOCK!r} block")
    deployments = block.get("deployments")
    if not isinstance(deployments, list) or not deployments:
        raise RenderError(f"{BLOCK}.deployments is empty")
    account = block.get("serviceAccount") or {}
    if account.get("create") is not True or not account.get("name"):
        raise RenderError(f"{BLOCK}.serviceAccount must be created, with a name")
    rendered = {key: copy.deepcopy(value) for key, value in block.items()}
    annotations = rendered["serviceAccount"].get("annotations") or {}
    annotations[CLIENT_ID_ANNOTATION] = client_id.strip()
    rendered["serviceAccount"]["annotations"] = annotations
    for key in PARENT_ONLY_KEYS:
        rendered.pop(key, None)
    secret_name = (values.get("global") or {}).get("postgresqlSecretName")
    if secret_name:
        rendered["postgresqlSecretName"] = secret_name
    for deployment in rendered["deployments"]:
        name = deployment.get("name", "?")
        named = deployment.get("image", {}).get("repository")
        if named != repository:
            raise RenderError(
                f"deployment {name!r} names image repository {named!r}, "
                f"but the pipeline built {repository!r}"
            )
        deployment["image"]["tag"] = tag
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=Path, required=True, help="deploy/helm/values-<env>.yaml")
    parser.add_argument("--image", required=True, help="<repository>:<tag>@sha256:<digest>")
    parser.add_argument("--client-id", required=True, help="client ID of the user-code identity")
    parser.add_argument("--out", type=Path, required=True, help="values file to write")
    args = parser.parse_args(argv)
    try:
        values = yaml.safe_load(args.values.read_text(encoding="utf-8"))
        rendered = render(values, args.image, args.client_id)
    except RenderError as error:
        print(f"render_user_code_values: {error}", file=sys.stderr)
        return 1
    args.out.write_text(yaml.safe_dump(rendered, sort_keys=False), encoding="utf-8")
    count = len(rendered["deployments"])
    print(f"render_user_code_values: wrote {args.out} ({count} deployment(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
