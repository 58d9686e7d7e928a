"""The lake (ADLS, or a local folder in LOCAL) as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource

from data_mesh.storage import LocalStorage, Storage


class LakeResource(ConfigurableResource):  # type: ignore[type-arg]
    """A local folder laid out like the ADLS account: `<root>/<container>/<path>`."""

    root: str

    def storage(self) -> Storage:
        return LocalStorage(self.root)
