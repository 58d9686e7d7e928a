"""Publish a DataFrame to a Kafka topic, chunk by chunk, each chunk in one transaction.

Exactly once for consumers reading committed data (`isolation.level=read_committed`):
- the rows are split into deterministic chunks (`data_mesh.ddz.chunks`: a hash of the key);
- each chunk's messages and its ledger record are sent in one Kafka transaction, so a chunk
  is visible with its record or not at all;
- the ledger is a compacted topic; a run (a resume, or a rerun of the day) skips every chunk
  whose record says it was committed with the same rows and checksum;
- the transactional id is the topic's and the day's: a new producer fences a killed run's,
  and Kafka aborts what that one left open.

Written by hand on confluent-kafka (librdkafka) because Spark's Kafka sink is at least once:
it has no transactions, so a retried task or a rerun day duplicates messages.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.chunks import (
    CHUNK_COLUMN,
    Chunk,
    ChunkSettings,
    chunk_count,
    chunk_expression,
    collect_stats,
    load_fingerprint,
)
from data_mesh.ddz.spool import Spool
from data_mesh.kafka.connection import KafkaConnection

LEDGER_TOPIC = "_data_mesh_ledger"
LEDGER_PARTITIONS = 16
# Seconds to wait for a broker to answer before the run fails, naming the DataSet.
BROKER_TIMEOUT = 15.0
# JSON bytes per row exceed the stats' estimate of Spark's own bytes: chunk by this many.
JSON_OVERHEAD = 3
# The producer's buffer: bounds this process's memory whatever the chunk's size.
QUEUE_KBYTES = 32 * 1024
# A chunk's transaction may stay open this long (the broker's cap is 15 minutes by default):
# a chunk of 64 MiB of messages at 1 MB/s (Event Hubs' throughput unit) fits.
TRANSACTION_TIMEOUT_MS = 300_000


class KafkaPublishError(DataMeshError):
    """A publish that cannot go on; the message names the DataSet and the topic."""


@dataclass(frozen=True)
class KafkaTarget:
    dataset: str
    topic: str
    partitions: int
    key_columns: tuple[str, ...]
    # The day (partition key) this run publishes; None for a DataSet without days.
    day: str | None = None

    @property
    def slot(self) -> str:
        """What one run fills: the DataSet's day in its topic (two DataSets on one topic never
        share a transactional id, ledger records or spool)."""
        return f"{self.topic}|{self.dataset}|{self.day or '-'}"

    @property
    def transactional_id(self) -> str:
        return f"data_mesh|{self.slot}"


@dataclass
class PublishReport:
    topic: str
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    chunks: int = 0
    chunks_skipped: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)


def _where(target: KafkaTarget) -> str:
    return f"DataSet {target.dataset!r} (topic {target.topic!r})"


def ensure_topics(admin: AdminClient, target: KafkaTarget) -> int:
    """The topic (created with its partitions if missing) and the ledger; a topic with another
    partition count is refused: keys would land in other partitions than consumers expect.
    Returns the ledger's partition count (16 when made here; whatever it has otherwise)."""
    try:
        topics = admin.list_topics(timeout=BROKER_TIMEOUT).topics
    except KafkaException as error:
        raise KafkaPublishError(
            f"{_where(target)}: the Kafka brokers do not answer: {error.args[0]}"
        ) from error
    wanted = []
    if target.topic not in topics:
        wanted.append(NewTopic(target.topic, num_partitions=target.partitions))
    elif len(topics[target.topic].partitions) != target.partitions:
        raise KafkaPublishError(
            f"{_where(target)}: the topic has {len(topics[target.topic].partitions)} "
            f"partitions, the DataSet declares {target.partitions}"
        )
    if LEDGER_TOPIC not in topics:
        wanted.append(
            NewTopic(
                LEDGER_TOPIC,
                num_partitions=LEDGER_PARTITIONS,
                config={"cleanup.policy": "compact"},
            )
        )
    if wanted:
        _create(admin, target, wanted)
    ledger = admin.list_topics(LEDGER_TOPIC, timeout=BROKER_TIMEOUT).topics[LEDGER_TOPIC]
    return len(ledger.partitions)


def _create(admin: AdminClient, target: KafkaTarget, wanted: list[NewTopic]) -> None:
    for topic, future in admin.create_topics(wanted, request_timeout=BROKER_TIMEOUT).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another run made it first
                raise KafkaPublishError(
                    f"{_where(target)}: cannot create topic {topic!r}: {error.args[0].str()}"
                ) from error
    _wait_for_leaders(admin, target, {t.topic for t in wanted})


def _wait_for_leaders(admin: AdminClient, target: KafkaTarget, names: set[str]) -> None:
    """A created topic is usable once every partition has a leader (metadata spreads to the
    brokers a moment after the create returns)."""
    deadline = time.monotonic() + BROKER_TIMEOUT
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=BROKER_TIMEOUT).topics
        if all(
            name in topics
            and topics[name].partitions
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.2)
    raise KafkaPublishError(f"{_where(target)}: topics {sorted(names)} have no leader yet")


def _ledger_partition(target: KafkaTarget, partitions: int) -> int:
    # Every record of one slot in one partition, so a run reads only that one.
    return int(hashlib.sha256(target.slot.encode()).hexdigest(), 16) % partitions


def _ledger_key(target: KafkaTarget, count: int, chunk: int) -> str:
    return f"{target.slot}|{count}|{chunk}"


def committed_chunks(
    config: dict[str, Any], target: KafkaTarget, partition: int
) -> dict[str, dict[str, Any]]:
    """The slot's committed ledger records, by key.

    Read up to the partition's end as it was when this run started (after fencing its own
    slot's earlier producer): a read_committed consumer stops at the last stable offset, which
    another slot's open transaction holds back, and a record of this slot behind it must not be
    missed. So the read waits for that offset to pass the end, at most one transaction timeout.
    """
    group = f"data_mesh-ledger-reader-{time.time_ns()}"
    base = {**config, "group.id": group, "enable.auto.commit": False}
    ends = Consumer({**base, "isolation.level": "read_uncommitted"})
    try:
        _, end = ends.get_watermark_offsets(
            TopicPartition(LEDGER_TOPIC, partition), timeout=BROKER_TIMEOUT, cached=False
        )
    finally:
        ends.close()
    consumer = Consumer(
        {
            **base,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    records: dict[str, dict[str, Any]] = {}
    prefix = f"{target.slot}|"
    wait = 2 * TRANSACTION_TIMEOUT_MS / 1000
    try:
        consumer.assign([TopicPartition(LEDGER_TOPIC, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + wait
        while True:
            if time.monotonic() > deadline:
                raise KafkaPublishError(
                    f"{_where(target)}: the ledger {LEDGER_TOPIC!r} (partition {partition}) was "
                    f"not readable to offset {end} in {wait:g} s: a transaction stays open"
                )
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                if (message.offset() or 0) >= end:
                    return records
                continue
            key = (message.key() or b"").decode()
            value = message.value()
            if key.startswith(prefix) and value is not None:
                records[key] = json.loads(value)
    finally:
        consumer.close()


def _messages(frame: DataFrame, key_columns: tuple[str, ...], count: int) -> DataFrame:
    """Key (the key column as text, or the key columns as a JSON object), value (the row as a
    JSON object, NULLs kept), both as UTF-8 text, and the chunk of the row."""
    if len(key_columns) == 1:
        key = F.col(f"`{key_columns[0]}`").cast("string")
    else:
        key = F.to_json(F.struct(*[F.col(f"`{c}`") for c in key_columns]))
    value = F.to_json(
        F.struct(*[F.col(f"`{c}`") for c in frame.columns]), {"ignoreNullFields": "false"}
    )
    chunk = chunk_expression(list(key_columns), count)
    return frame.select(key.alias("key"), value.alias("value"), chunk.alias(CHUNK_COLUMN))


class _Delivery:
    """Counts what the brokers acknowledged in the open transaction, and keeps the first
    error; the counts reach the report only when the transaction commits."""

    def __init__(self, report: PublishReport) -> None:
        self.report = report
        self.error: Any = None
        self.pending = PublishReport(report.topic)

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None:
            self.error = self.error or error
            return
        if message.topic() != self.report.topic:  # the ledger record
            return
        self.pending.messages += 1
        self.pending.bytes += len(message.key() or b"") + len(message.value() or b"")
        partition = message.partition()
        self.pending.per_partition[partition] = self.pending.per_partition.get(partition, 0) + 1

    def committed(self) -> None:
        self.report.messages += self.pending.messages
        self.report.bytes += self.pending.bytes
        for partition, n in self.pending.per_partition.items():
            self.report.per_partition[partition] = self.report.per_partition.get(partition, 0) + n
        self.pending = PublishReport(self.report.topic)


def _produce(producer: Producer, topic: str, key: str, value: str, delivery: _Delivery) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=delivery)
            producer.poll(0)
            return
        except BufferError:  # the bounded queue is full: let the brokers catch up
            producer.poll(0.1)


def publish(
    frame: DataFrame,
    target: KafkaTarget,
    connection: KafkaConnection,
    spool: Spool,
    settings: ChunkSettings,
    run_id: str,
    progress: Callable[[int, int], None] | None = None,
) -> PublishReport:
    """Send `frame`'s rows to the target topic; a chunk the ledger holds is skipped."""
    started = time.monotonic()
    config = connection.client_config()
    ledger_partition = _ledger_partition(target, ensure_topics(AdminClient(config), target))
    report = PublishReport(target.topic)
    stats = collect_stats(frame, list(target.key_columns))
    producer = Producer(
        {
            **config,
            "transactional.id": target.transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            # Java clients' partitioner: a key lands where any Kafka client would put it.
            "partitioner": "murmur2_random",
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.kbytes": QUEUE_KBYTES,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        }
    )
    try:
        # Fences a killed run's producer and aborts its open transaction before the ledger
        # is read, so what the ledger says is final.
        producer.init_transactions(BROKER_TIMEOUT)
    except KafkaException as error:
        raise KafkaPublishError(
            f"{_where(target)}: cannot start a transaction: {error.args[0].str()}"
        ) from error
    done = committed_chunks(config, target, ledger_partition)
    # The slot keeps the chunk count of its first run, so a rerun compares chunk by chunk
    # even if the day grew or the chunk settings changed (else every chunk would be new).
    counts = [int(key.split("|")[-2]) for key in done]
    count = (
        max(set(counts), key=counts.count)
        if counts
        else chunk_count(stats.rows, stats.row_bytes * JSON_OVERHEAD, settings)
    )
    chunks = stats.chunks(count)
    report.chunks = len(chunks)
    pending = [c for c in chunks if not _committed(done, target, count, c)]
    report.chunks_skipped = len(chunks) - len(pending)
    if pending:
        load_id = load_fingerprint(
            target.slot, [(f.name, f.dataType.simpleString()) for f in frame.schema], chunks, count
        )
        slot_hash = hashlib.sha256(target.slot.encode()).hexdigest()
        folder = spool.folder(slot_hash, load_id)
        if not spool.is_complete(folder):  # a resumed run reuses a complete spool
            spool.write(_messages(frame, target.key_columns, count), folder)
        delivery = _Delivery(report)
        for index, chunk in enumerate(pending):
            rows = frame.sparkSession.read.parquet(spool.chunk_uri(folder, chunk.id))
            ledger = (_ledger_key(target, count, chunk.id), ledger_partition)
            _send_chunk(producer, target, ledger, chunk, _rows_of(rows), delivery, run_id)
            if progress:
                progress(index + 1 + report.chunks_skipped, len(chunks))
        spool.remove(slot_hash)
    report.seconds = time.monotonic() - started
    return report


def _rows_of(frame: DataFrame) -> Iterator[tuple[str, str]]:
    # One Spark partition at a time on the driver: memory stays bounded by a partition.
    for row in frame.select("key", "value").toLocalIterator(prefetchPartitions=False):
        yield row["key"], row["value"]


def _committed(
    done: dict[str, dict[str, Any]], target: KafkaTarget, count: int, chunk: Chunk
) -> bool:
    record = done.get(_ledger_key(target, count, chunk.id))
    return record is not None and (record["rows"], record["checksum"]) == (
        chunk.rows,
        str(chunk.checksum),
    )


def _send_chunk(
    producer: Producer,
    target: KafkaTarget,
    ledger: tuple[str, int],
    chunk: Chunk,
    rows: Iterator[tuple[str, str]],
    delivery: _Delivery,
    run_id: str,
) -> None:
    """One chunk and its ledger record in one transaction; aborted on any failure."""
    producer.begin_transaction()
    try:
        for key, value in rows:
            _produce(producer, target.topic, key, value, delivery)
        record = {"rows": chunk.rows, "checksum": str(chunk.checksum), "run_id": run_id}
        producer.produce(LEDGER_TOPIC, key=ledger[0], value=json.dumps(record), partition=ledger[1])
        producer.flush(4 * BROKER_TIMEOUT)
        if delivery.error is not None:
            raise KafkaException(delivery.error)
        producer.commit_transaction(4 * BROKER_TIMEOUT)
        delivery.committed()
    except Exception as error:
        # Whatever failed (a broker, or Spark reading the spool), nothing of the chunk stays
        # open to hold read_committed consumers back.
        delivery.pending = PublishReport(target.topic)
        producer.abort_transaction(4 * BROKER_TIMEOUT)
        if not isinstance(error, KafkaException):
            raise
        raise KafkaPublishError(
            f"{_where(target)}: chunk {chunk.id} was not committed (nothing of it "
            f"is visible to read_committed consumers): {error.args[0]}"
        ) from error
