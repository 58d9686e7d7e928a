"""The names of a mesh's definitions when one code location holds several meshes (several
metadata stores: one `DataMeshComponent` each).

The mesh named `data_mesh` (the default) keeps every name as it is. Any other mesh prefixes its
jobs, sensors and pools with `<mesh>__` and writes its code location metadata under `<mesh>/`
instead of `data_mesh/`. Asset keys and step names are never prefixed.
"""

from __future__ import annotations

DEFAULT_MESH = "data_mesh"
# The op tag of every product step: the mesh (store) its audit and quality rows go to.
MESH_TAG = "data_mesh/mesh"


def mesh_name(mesh: str, base: str) -> str:
    """A job, sensor or pool name of `mesh`: `base` for the default mesh, else `<mesh>__base`."""
    return base if mesh == DEFAULT_MESH else f"{mesh}__{base}"


def metadata_key(mesh: str, key: str) -> str:
    """A code location metadata key of `mesh`: `data_mesh/<key>` for the default, else
    `<mesh>/<key>`."""
    return f"{mesh}/{key}"
