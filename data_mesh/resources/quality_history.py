"""The quality history as a Dagster resource: rule results (`DataQualityResults`) and the
metric history anomaly rules judge against (`DataSetMetrics`), in the metadata store."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from dagster import ConfigurableResource
from sqlalchemy.exc import SQLAlchemyError

from data_mesh.catalog.models import DataSetModel, QualityRuleModel
from data_mesh.catalog.rule_configs import AnomalyRule
from data_mesh.quality.evaluate import QualityReport
from data_mesh.quality.history import history_rows, metric_rows
from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.store.metrics import metric_history, record_metrics
from data_mesh.store.quality_results import record_quality_results

log = logging.getLogger(__name__)


class QualityHistoryResource(ConfigurableResource):  # type: ignore[type-arg]
    """Reads and writes the quality history in the metadata store of the mesh named."""

    store: MetadataStoreResource

    def record(self, report: QualityReport, run_id: str, mesh: str) -> bool:
        """Writes the rule results into `mesh`'s store."""
        rows = history_rows(report, run_id)
        return self.store.write_or_warn(
            lambda engine: record_quality_results(engine, rows),
            f"quality results of run {run_id}",
            mesh,
        )

    def record_metrics(
        self, report: QualityReport, run_id: str, mesh: str, day: str | None = None
    ) -> bool:
        """Keeps what anomaly rules measured as history: called once the rows are written, so
        a load that was stopped or failed never becomes part of what is usual."""
        if not report.metrics or not report.outcomes:
            return True
        rows = metric_rows(report.outcomes[0].rule.dataset, report.metrics, run_id, day)
        return self.store.write_or_warn(
            lambda engine: record_metrics(engine, rows), f"metrics of run {run_id}", mesh
        )

    def record_profile(
        self,
        dataset: DataSetModel,
        metrics: Mapping[str, float | None],
        run_id: str,
        mesh: str,
        day: str | None = None,
    ) -> bool:
        """Keeps a profile of `dataset` as metric history."""
        rows = metric_rows(dataset, metrics, run_id, day)
        return self.store.write_or_warn(
            lambda engine: record_metrics(engine, rows), f"profile of run {run_id}", mesh
        )

    def history_for(
        self, rules: Sequence[QualityRuleModel], run_id: str, mesh: str
    ) -> dict[str, list[tuple[dt.datetime, float]]]:
        """The past values of every metric the anomaly rules among `rules` judge, oldest first
        (this run's own earlier attempt left out)."""
        anomaly = [r for r in rules if isinstance(r.config, AnomalyRule)]
        if not anomaly:
            return {}
        keys = sorted({r.config.metric_key for r in anomaly})  # type: ignore[attr-defined]
        runs = max(r.config.history_runs for r in anomaly)  # type: ignore[attr-defined]
        with self.store.engine_in_use(mesh) as engine:
            try:
                return metric_history(engine, anomaly[0].dataset.id, keys, runs, exclude_run=run_id)
            except SQLAlchemyError as error:
                # The rules then say "not enough history"; the outage is in the run's log.
                log.warning("metric history of %s not read: %s", anomaly[0].dataset.name, error)
                return {}
