"""Publishes an asset's Spark DataFrame to its Kafka topic (`data_mesh.kafka.publisher`)."""

from __future__ import annotations

import json
import time
from typing import Any

from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pyspark.sql import DataFrame

from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.spool import Spool
from data_mesh.kafka.connection import parse_kafka_connection
from data_mesh.kafka.publisher import KafkaTarget, PublishReport, publish
from data_mesh.resources.audit import AuditLogResource, audit_write
from data_mesh.resources.ddz_io_manager import (
    KEY_COLUMNS,
    SPARK_CONFIG,
    mesh_of,
    metadata_int,
    metadata_text,
)
from data_mesh.resources.lake import LakeStorageResource
from data_mesh.settings.secrets import parse_reference, resolve_secret
from data_mesh.spark.conf import spark_config_scope
from data_mesh.store.audit import FAILED, SUCCESS

TOPIC = "data_mesh/topic"
TOPIC_PARTITIONS = "data_mesh/topic_partitions"
# The DataSource's ConnectionString: a reference, or a kafka:// address whose credentials are
# references; never a secret value (the catalog refuses those).
KAFKA_CONNECTION = "data_mesh/kafka_connection"
DATASET = "data_mesh/dataset"


def publish_metadata(report: PublishReport) -> dict[str, Any]:
    """What each materialization of a Kafka DataSet shows in the Dagster UI."""
    return {
        "topic": report.topic,
        "messages": report.messages,
        "bytes": report.bytes,
        "duration_s": round(report.seconds, 3),
        "chunks": report.chunks,
        "skipped_chunks": report.chunks_skipped,
        "messages_per_partition": MetadataValue.json(
            {str(p): n for p, n in sorted(report.per_partition.items())}
        ),
    }


class KafkaIOManager(ConfigurableIOManager):
    """Sends an asset's rows to its topic, chunk by chunk in Kafka transactions; a rerun of a
    day skips the chunks already committed. Consumers read with isolation.level=read_committed.
    """

    lake: LakeStorageResource
    spool: str = "spool/kafka"
    max_chunk_rows: int = 500_000
    max_chunk_bytes: int = 64 * 1024 * 1024
    audit: AuditLogResource | None = None

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        metadata = dict(context.definition_metadata or {})
        dataset = metadata_text(metadata, DATASET)
        where = f"DataSet {dataset!r}"
        text = metadata_text(metadata, KAFKA_CONNECTION)
        reference = text if parse_reference(text) else None
        target = KafkaTarget(
            dataset=dataset,
            topic=metadata_text(metadata, TOPIC),
            partitions=metadata_int(metadata, TOPIC_PARTITIONS, 1),
            key_columns=tuple(metadata_text(metadata, KEY_COLUMNS).split(",")),
            day=context.asset_partition_key if context.has_asset_partitions else None,
        )
        asset = context.asset_key.to_user_string()
        mesh = mesh_of(context)
        started = time.monotonic()
        try:
            address = resolve_secret(reference) if reference else text
            connection = parse_kafka_connection(address, f"{where}: its connection", reference)
            spark_settings = json.loads(metadata_text(metadata, SPARK_CONFIG, "{}") or "{}")
            with spark_config_scope(obj.sparkSession, spark_settings):
                report = publish(
                    obj,
                    target,
                    connection,
                    Spool(self.lake.storage(), self.spool),
                    ChunkSettings(
                        max_chunk_rows=self.max_chunk_rows, max_chunk_bytes=self.max_chunk_bytes
                    ),
                    context.run_id,
                    progress=lambda done, total: context.log.info(
                        "%s: chunk %d of %d committed", target.topic, done, total
                    ),
                )
        except Exception as error:
            audit_write(
                self.audit,
                mesh,
                asset,
                f"topic {target.topic}",
                context.run_id,
                FAILED,
                started,
                error=error,
            )
            raise
        context.add_output_metadata(publish_metadata(report))
        audit_write(
            self.audit,
            mesh,
            asset,
            f"topic {target.topic}",
            context.run_id,
            SUCCESS,
            started,
            report.messages,
        )

    def load_input(self, context: InputContext) -> DataFrame:
        raise NotImplementedError(
            f"{context.asset_key.to_user_string()} is a Kafka topic: data_mesh never reads one"
        )
