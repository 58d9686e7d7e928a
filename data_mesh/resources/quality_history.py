"""The quality results history as a Dagster resource (the metadata store's DataQualityResults)."""

from __future__ import annotations

from dagster import ConfigurableResource

from data_mesh.quality.evaluate import QualityReport
from data_mesh.quality.history import history_rows
from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.store.quality_results import record_quality_results


class QualityHistoryResource(ConfigurableResource):  # type: ignore[type-arg]
    """Writes one row per evaluated rule per run into the metadata store of the mesh named."""

    store: MetadataStoreResource

    def record(self, report: QualityReport, run_id: str, mesh: str) -> bool:
        """Writes the results into the store of `mesh`."""
        rows = history_rows(report, run_id)
        return self.store.write_or_warn(
            lambda engine: record_quality_results(engine, rows),
            f"quality results of run {run_id}",
            mesh,
        )
