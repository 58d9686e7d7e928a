"""A Kafka topic as a target, on a real broker (KRaft, started by the test command) and real
Spark: each day's rows exactly once as JSON, keys in the partitions Java clients choose, a rerun
and a killed run adding nothing a read_committed consumer sees, and clear errors naming the
DataSet, before anything is sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance
from pyspark.sql import SparkSession
from sqlalchemy import update

from data_mesh.catalog.current import lake_storage
from data_mesh.catalog.datasets import resolve_dataset
from data_mesh.catalog.errors import MetadataError
from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.writer import DdzConnection
from data_mesh.devtools.sample_data import write_sample_data
from data_mesh.kafka.connection import parse_kafka_connection
from data_mesh.kafka.publisher import KafkaPublishError, KafkaTarget, publish
from data_mesh.lake.storage import LocalStorage
from data_mesh.runs.materialize import materialize_products
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh.store.rows import DataProductRow, DataSetRow, DataSourceRow
from data_mesh_tests.kafka_broker import create_topic, read_topic
from data_mesh_tests.kafka_publish_process import PARTITIONS, day_rows, publish_day

REPO = Path(__file__).resolve().parents[1]


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (Java clients): murmur2 of the key bytes, made positive."""
    m, length = 0x5BD1E995, len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(key[i * 4 : i * 4 + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= key[tail + 2] << 16
    if rest >= 2:
        h ^= key[tail + 1] << 8
    if rest >= 1:
        h = ((h ^ key[tail]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def _expected(spark: SparkSession, rows: int, day: str) -> Counter[tuple[bytes, str]]:
    """The DDZ-equivalent rows of the day, as (key, canonical JSON) computed in Python."""
    expected: Counter[tuple[bytes, str]] = Counter()
    for row in day_rows(spark, rows, day).collect():
        values = row.asDict()
        values["BALANCE"] = str(values["BALANCE"])
        values["LOAD_DATE"] = values["LOAD_DATE"].isoformat()
        expected[(values["ACCOUNT_ID"].encode(), json.dumps(values, sort_keys=True))] += 1
    return expected


def _got(records: list[tuple[int, bytes | None, bytes | None]]) -> Counter[tuple[bytes, str]]:
    got: Counter[tuple[bytes, str]] = Counter()
    for _, key, value in records:
        assert key is not None and value is not None
        values = json.loads(value, parse_float=Decimal)
        values["BALANCE"] = str(values["BALANCE"])
        got[(key, json.dumps(values, sort_keys=True))] += 1
    return got


@pytest.fixture(scope="module")
def kafka() -> str:
    from data_mesh_tests.kafka_broker import kafka_bootstrap

    return kafka_bootstrap()


@pytest.fixture
def topic() -> str:
    return f"accounts-{uuid.uuid4().hex[:12]}"


@pytest.mark.slow
def test_each_day_is_its_rows_once_as_json_in_the_partition_of_its_key(
    spark: SparkSession, kafka: str, topic: str, tmp_path: Path
) -> None:
    days = {"2026-03-01": 3000, "2026-03-02": 2000}
    for day, rows in days.items():
        report = publish_day(spark, kafka, topic, day, tmp_path, rows, chunk=1000)
        assert (report.messages, report.chunks_skipped) == (rows, 0)
        assert report.chunks >= 2 and sum(report.per_partition.values()) == rows
    records = read_topic(kafka, topic)
    expected = _expected(spark, 3000, "2026-03-01") + _expected(spark, 2000, "2026-03-02")
    assert _got(records) == expected
    # Every key where any Java client would put it (murmur2), so consumers' partitioning holds.
    assert all(p == murmur2_partition(k or b"", PARTITIONS) for p, k, _ in records)
    assert {p for p, _, _ in records} == set(range(PARTITIONS))


@pytest.mark.slow
def test_a_rerun_of_a_day_sends_nothing_new(
    spark: SparkSession, kafka: str, topic: str, tmp_path: Path
) -> None:
    first = publish_day(spark, kafka, topic, "2026-03-01", tmp_path, 1500, chunk=500)
    again = publish_day(spark, kafka, topic, "2026-03-01", tmp_path, 1500, chunk=500)
    assert (again.messages, again.chunks_skipped) == (0, first.chunks)
    # Other chunk settings: the day keeps its first run's chunks, so nothing is sent again.
    resized = publish_day(spark, kafka, topic, "2026-03-01", tmp_path, 1500, chunk=200)
    assert (resized.messages, resized.chunks) == (0, first.chunks)
    assert _got(read_topic(kafka, topic)) == _expected(spark, 1500, "2026-03-01")


@pytest.mark.slow
def test_a_run_killed_mid_day_and_resumed_leaves_each_message_once(
    spark: SparkSession, kafka: str, topic: str, tmp_path: Path
) -> None:
    rows, chunk = 20_000, 6_000  # 4 chunks of about 5,000 rows
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "data_mesh_tests.kafka_publish_process",
            kafka,
            topic,
            "2026-03-01",
            str(tmp_path),
            str(rows),
            str(chunk),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "stalled"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # The killed run left its first chunk committed and part of the second in an open
    # transaction: read_uncommitted sees those, read_committed only the first chunk.
    committed = len(read_topic(kafka, topic))
    assert 0 < committed < rows
    assert len(read_topic(kafka, topic, isolation_level="read_uncommitted")) > committed

    resumed = publish_day(spark, kafka, topic, "2026-03-01", tmp_path, rows, chunk)
    assert resumed.chunks_skipped == 1 and resumed.messages == rows - committed
    assert _got(read_topic(kafka, topic)) == _expected(spark, rows, "2026-03-01")


@pytest.mark.slow
def test_an_unreachable_broker_is_named_with_the_dataset(
    spark: SparkSession, topic: str, tmp_path: Path
) -> None:
    target = KafkaTarget("accounts_topic", topic, PARTITIONS, ("ACCOUNT_ID",), "2026-03-01")
    with pytest.raises(KafkaPublishError, match=r"DataSet 'accounts_topic'.*do not answer"):
        publish(
            day_rows(spark, 10, "2026-03-01"),
            target,
            parse_kafka_connection("kafka://127.0.0.1:1", "test"),
            Spool(LocalStorage(tmp_path), "spool/kafka"),
            ChunkSettings(),
            "run",
        )


@pytest.mark.slow
def test_a_topic_with_other_partitions_is_refused_before_anything_is_sent(
    spark: SparkSession, kafka: str, topic: str, tmp_path: Path
) -> None:
    create_topic(kafka, topic, 2)
    with pytest.raises(KafkaPublishError, match="has 2 partitions, the DataSet declares 6"):
        publish_day(spark, kafka, topic, "2026-03-01", tmp_path, 10, chunk=100)
    assert read_topic(kafka, topic) == []


# --- the catalog: a Kafka DataSet's errors name its row, before any run ---------------------

PRODUCT = DataProductRow(1, "mdm_accounts", "mdm", None, None)


def _resolve(connection: str = "kafka://broker:9092", **row: Any) -> None:
    source = DataSourceRow(3, "mdm_kafka", "kafka", connection, "json")
    values: dict[str, Any] = {
        "DataSetID": 9,
        "DataSourceID": 3,
        "Name": "accounts_topic",
        "Schema": "[]",
        "DataProductID": 1,
        "Layer": "DDZ",
        "Location": None,
        "TargetSchema": None,
        "TargetTable": "mdm.active-accounts",
        "WriteMode": None,
        "KeyColumns": "COUNTRY",
        "Description": None,
        "TopicPartitions": 6,
    }
    values.update(row)
    resolve_dataset(DataSetRow(**values), PRODUCT, source)


def test_a_secret_connection_is_never_quoted_in_an_error() -> None:
    value = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=S3CRETKEY"
    with pytest.raises(MetadataError) as error:
        parse_kafka_connection(value, "DataSet 'x'", reference="env:KAFKA_URL")
    assert "S3CRETKEY" not in str(error.value) and "env:KAFKA_URL" in str(error.value)
    with pytest.raises(MetadataError, match="never before the brokers") as error:
        parse_kafka_connection("kafka://bob:hunter2@host:9092", "DataSet 'x'")
    assert "hunter2" not in str(error.value)


def test_a_valid_kafka_dataset_resolves() -> None:
    _resolve()
    _resolve("env:DATA_MESH_KAFKA_URL")  # a reference: resolved in the step


@pytest.mark.parametrize(
    ("connection", "row", "message"),
    [
        ("kafka://broker:9092", {"TargetTable": "bad topic!"}, "is not a valid Kafka topic name"),
        ("kafka://broker:9092", {"TopicPartitions": None}, "TopicPartitions (at least 1)"),
        ("kafka://broker:9092", {"KeyColumns": None}, "KeyColumns are required"),
        ("kafka://broker:9092", {"WriteMode": "replace"}, "a Kafka topic is appended to"),
        ("kafka://broker:9092", {"Layer": "CDZ"}, "is a target: Layer DDZ"),
        ("kafka://broker", {}, "broker 'broker' is not host:port"),
        ("kafka://b:9092?password=hunter2", {}, "must be a reference"),
        ("kafka://b:9092?acks=0", {}, "unknown option 'acks'"),
    ],
)
def test_a_bad_kafka_dataset_is_refused_naming_its_row(
    connection: str, row: dict[str, Any], message: str
) -> None:
    with pytest.raises(MetadataError) as error:
        _resolve(connection, **row)
    assert message in str(error.value)
    assert "hunter2" not in str(error.value)
    assert "DataSets row 9 (accounts_topic)" in str(error.value) or "DataSources row 3" in str(
        error.value
    )


# --- the mdm sample product, through Dagster ---------------------------------------------------


def _use_topic(settings: Settings, topic: str) -> None:
    """This test's own topic for the sample product's Kafka DataSet."""
    table = schema.data_sets
    with make_engine(settings.resolved_metadata_url).begin() as connection:
        connection.execute(
            update(table).where(table.c.Name == "active_accounts_topic").values(TargetTable=topic)
        )


@pytest.mark.slow
def test_the_mdm_product_publishes_each_day_of_its_ddz_table_once(
    loaded: Settings,
    spark: SparkSession,
    kafka: str,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATA_MESH_KAFKA_URL", f"kafka://{kafka}")
    _use_topic(loaded, topic)
    write_sample_data(spark, lake_storage(loaded), 2000)
    instance = DagsterInstance.ephemeral()
    days = ["2026-11-14", "2026-11-15"]
    outcome = materialize_products(loaded, ["mdm_accounts"], instance, days=days)
    assert outcome.success, outcome.failure
    table = read_ddz_table(
        spark, DdzConnection(loaded.resolved_ddz_jdbc_url), TableName("ddz", "ACTIVE_ACCOUNTS")
    )
    expected: Counter[tuple[str, str]] = Counter()
    for row in table.collect():
        values = {**row.asDict(), "LOAD_DATE": row.LOAD_DATE.isoformat()}
        key = {"COUNTRY": row.COUNTRY, "SOURCE_SYS": row.SOURCE_SYS}
        expected[(json.dumps(key, sort_keys=True), json.dumps(values, sort_keys=True))] += 1
    assert {json.loads(value)["LOAD_DATE"] for _, value in expected} == set(days)

    def published() -> Counter[tuple[str, str]]:
        return Counter(
            (
                json.dumps(json.loads(key or b""), sort_keys=True),
                json.dumps(json.loads(value or b""), sort_keys=True),
            )
            for _, key, value in read_topic(kafka, topic)
        )

    assert published() == expected
    event = instance.get_latest_materialization_event(
        AssetKey(["mdm", "ddz", "active_accounts_topic"])
    )
    assert event is not None and event.asset_materialization is not None
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    day_rows = sum(1 for _, v in expected if json.loads(v)["LOAD_DATE"] == days[-1])
    assert metadata["messages"] == day_rows and metadata["topic"] == topic
    assert sum(metadata["messages_per_partition"].values()) == day_rows
    # A rerun of a day: consumers see nothing new.
    again = materialize_products(loaded, ["mdm_accounts"], instance, days=days[:1])
    assert again.success, again.failure
    assert published() == expected


@pytest.mark.slow
def test_without_a_kafka_url_the_topic_is_left_out_of_a_run_and_said_so(
    loaded: Settings, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATA_MESH_KAFKA_URL", raising=False)
    write_sample_data(spark, lake_storage(loaded), 200)
    outcome = materialize_products(
        loaded, ["mdm_accounts"], DagsterInstance.ephemeral(), days=["2026-11-14"]
    )
    assert outcome.success, outcome.failure
    assert [m.asset for m in outcome.materializations] == ["mdm/ddz/active_accounts [2026-11-14]"]
    assert any(
        note.startswith(
            "mdm/ddz/active_accounts_topic not run: its Kafka connection "
            "env:DATA_MESH_KAFKA_URL is not set"
        )
        for note in outcome.notes
    )
