"""A separate publishing process for the Kafka fault test: it commits the first chunk, sends
part of the next one, then stalls with that transaction open until it is killed.

Usage: python -m data_mesh_tests.kafka_publish_process BOOTSTRAP TOPIC DAY LAKE ROWS CHUNK_ROWS
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.spool import Spool
from data_mesh.kafka import publisher
from data_mesh.kafka.connection import parse_kafka_connection
from data_mesh.kafka.publisher import KafkaTarget, publish
from data_mesh.lake.storage import LocalStorage

PARTITIONS = 6


def day_rows(spark: SparkSession, rows: int, day: str) -> DataFrame:
    """Deterministic rows of one day: the same arguments give the same data in every process."""
    return spark.range(rows).selectExpr(
        "concat('acct-', id) AS ACCOUNT_ID",
        "cast(id % 97 AS int) AS BRANCH",
        "cast(id * 1.25 AS decimal(18,2)) AS BALANCE",
        f"DATE'{day}' AS LOAD_DATE",
        "CASE WHEN id % 5 = 0 THEN NULL ELSE 'GB' END AS COUNTRY",
    )


def publish_day(
    spark: SparkSession, bootstrap: str, topic: str, day: str, lake: Path, rows: int, chunk: int
) -> publisher.PublishReport:
    return publish(
        day_rows(spark, rows, day),
        KafkaTarget("accounts_topic", topic, PARTITIONS, ("ACCOUNT_ID",), day),
        parse_kafka_connection(f"kafka://{bootstrap}", "test"),
        Spool(LocalStorage(lake), "spool/kafka"),
        ChunkSettings(max_chunk_rows=chunk),
        run_id=f"run-{time.time_ns()}",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "topic", "day", "lake"):
        parser.add_argument(name)
    parser.add_argument("rows", type=int)
    parser.add_argument("chunk_rows", type=int)
    args = parser.parse_args()
    sent = 0
    original = publisher._produce

    def stalling(producer: Any, topic: str, key: str, value: str, delivery: Any) -> None:
        nonlocal sent
        original(producer, topic, key, value, delivery)
        sent += 1
        if sent == args.chunk_rows + 50:  # past the first chunk, which is committed by now
            producer.flush(30)  # these messages are on the broker, in an open transaction
            print("stalled", flush=True)
            time.sleep(3600)

    publisher._produce = stalling
    spark = SparkSession.builder.master("local[1]").getOrCreate()
    publish_day(
        spark, args.bootstrap, args.topic, args.day, Path(args.lake), args.rows, args.chunk_rows
    )


if __name__ == "__main__":
    main()
