"""`DataMeshComponent`: every data product of one metadata store as Dagster definitions. A code
location may hold several (one `defs.yaml` each, another `name` and `metadata_url`): they share
one set of resources, whose store-bound ones reach each mesh's store by its name.

A `StateBackedComponent`: Dagster calls `write_state_to_path` when the state is refreshed
(`dg utils refresh-defs-state`, `data-mesh load`, and every `dg`/`dagster dev` start in LOCAL),
and builds definitions from the saved state in code servers and run workers, which therefore
never query the store. Where the state lives is Dagster's choice of `defs_state`: a file in the
project for LOCAL, the instance's state storage (ADLS) for deployed environments, so every pod
of a deployment loads the same version.
"""

# No `from __future__ import annotations`: dg.Resolvable reads the attributes' real types.

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster.components import DefsStateConfig, DefsStateConfigArgs, ResolvedDefsStateConfig

from data_mesh.component.definitions import build_definitions
from data_mesh.component.naming import metadata_key
from data_mesh.component.state import catalog_from_state, read_state, write_mesh_state
from data_mesh.resources.environments import shared_resources
from data_mesh.settings.model import Settings, load_settings
from data_mesh.store.connection import describe_store


@dataclass
class DataMeshComponent(dg.StateBackedComponent, dg.Resolvable):
    """The data products of one metadata store: assets with lineage, one check per quality
    rule, jobs, schedules and sensors, and the environment's resources.

    Settings come from `DATA_MESH_*` variables; the attributes set here win over them.
    """

    # The mesh's name: the first part of the state's key (the environment and a digest of the
    # store follow). A mesh other than `data_mesh` prefixes its jobs, sensors and pools with
    # `<name>__` and its code location metadata with `<name>/` (data_mesh.component.naming).
    name: str = "data_mesh"
    # LOCAL, DEV, INT, QA or PROD; default: DATA_MESH_ENV, else LOCAL.
    env: str | None = None
    # SQLAlchemy URL of the metadata store; default: DATA_MESH_METADATA_URL, else LOCAL SQLite.
    metadata_url: str | None = None
    # Where the state lives; default DATA_MESH_DEFS_STATE, else by environment: a file in the
    # project for LOCAL, the instance's state storage (`defs_state_storage` in dagster.yaml)
    # for DEV, INT, QA and PROD.
    defs_state: ResolvedDefsStateConfig | None = None

    @property
    def settings(self) -> Settings:
        overrides: dict[str, object] = {"env": self.env} if self.env else {}
        if self.metadata_url:
            # This mesh's own store: an Azure SQL server in the environment (which wins over a
            # URL) is another mesh's.
            overrides |= {"metadata_url": self.metadata_url, "metadata_azure_server": None}
        return load_settings(**overrides)

    @property
    def defs_state_config(self) -> DefsStateConfig:
        settings = self.settings
        args = self.defs_state or (
            DefsStateConfigArgs.local_filesystem()
            if settings.resolved_defs_state == "LOCAL_FILESYSTEM"
            else DefsStateConfigArgs.versioned_state_storage()
        )
        # The store in the key: two LOCAL homes (or test stores) in one checkout never share
        # a state file. A digest, so no part of a URL shows.
        store = hashlib.sha256(describe_store(settings).encode()).hexdigest()[:8]
        key = f"{self.name}_{settings.env.value.lower()}_{store}"
        return DefsStateConfig.from_args(args, default_key=key)

    def meshes_of(self, context: dg.ComponentLoadContext) -> dict[str, Settings]:
        """The settings of every mesh of the code location (this one among them), by name: their
        resources are built once and shared (`Definitions.merge` requires one object per key).
        Two meshes of one name are refused."""
        meshes: dict[str, Settings] = {}
        try:
            components = context.component_tree.get_all_components(of_type=DataMeshComponent)
        except ModuleNotFoundError:  # a tree without a defs package (ComponentTree.for_test)
            components = []
        for component in [self, *(c for c in components if c is not self)]:
            if component.name in meshes:
                raise ValueError(
                    f"two DataMeshComponents are named {component.name!r}: each mesh of a "
                    "code location needs its own `name` (data_mesh/defs/*/defs.yaml)"
                )
            store = describe_store(component.settings)
            for name, settings in meshes.items():
                if describe_store(settings) == store:
                    raise ValueError(
                        f"meshes {name!r} and {component.name!r} read the same store ({store}): "
                        "each mesh needs its own `metadata_url` (data_mesh/defs/*/defs.yaml)"
                    )
            meshes[component.name] = component.settings
        return meshes

    def write_state_to_path(self, state_path: Path) -> None:
        write_mesh_state(self.settings, state_path)

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        key = self.defs_state_config.key
        if state_path is None:
            dg.get_dagster_logger().warning(
                "no state for %s yet: run `dg utils refresh-defs-state`", key
            )
            return dg.Definitions(
                metadata={
                    metadata_key(self.name, "state"): (
                        f"none for {key}: run `dg utils refresh-defs-state`"
                    )
                }
            )
        settings = self.settings
        meshes = self.meshes_of(context)
        state = read_state(state_path)
        catalog = catalog_from_state(state, settings.env, f"data_mesh state {key}")
        catalog = dataclasses.replace(catalog, mesh=self.name)
        defs = build_definitions(
            catalog, shared_resources(meshes), state.stamp, alone=len(meshes) == 1
        )
        dg.get_dagster_logger().info(
            "%s: %d data products (%d skipped) from the state taken at %s UTC, marker %s",
            key,
            len(catalog.products),
            len(catalog.problems),
            f"{state.taken_at:%Y-%m-%d %H:%M:%S}",
            state.marker,
        )
        return defs
