"""Kafka for the tests: the broker (scripts/start-kafka.sh), topics, and what a consumer reads.

`kafka_bootstrap()` gives the broker's address: DATA_MESH_TEST_KAFKA_BOOTSTRAP when it is set,
else the single-node KRaft broker scripts/start-kafka.sh starts (or finds running) from the jars
scripts/setup.sh fetched. A test module takes it in a fixture of its own:

    @pytest.fixture(scope="session")
    def kafka() -> str:
        return kafka_bootstrap()
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP_ENV = "DATA_MESH_TEST_KAFKA_BOOTSTRAP"
KAFKA_LIBS = REPO / ".tools" / "kafka" / "libs"

# (partition, key, value) of one record, as a consumer got it.
Record = tuple[int, bytes | None, bytes | None]


@functools.cache
def kafka_bootstrap() -> str:
    """host:port of a broker that answers. Set but unreachable fails (never skips): the Kafka
    tests would otherwise pass by not running. Unset: scripts/start-kafka.sh starts one."""
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if bootstrap:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15)
        except KafkaException as error:
            pytest.fail(
                f"{BOOTSTRAP_ENV} is set ({bootstrap}) but no Kafka broker answers: {error}",
                pytrace=False,
            )
        return bootstrap
    if not (KAFKA_LIBS / ".version").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{KAFKA_LIBS} is missing: run scripts/setup.sh", pytrace=False)
        pytest.skip("Kafka is not installed (scripts/setup.sh fetches it)")
    started = subprocess.run(
        ["bash", str(REPO / "scripts" / "start-kafka.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        pytest.fail(f"scripts/start-kafka.sh failed:\n{started.stderr}", pytrace=False)
    return started.stdout.strip().splitlines()[-1]


def create_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0) -> None:
    """Create `name` (replication factor 1) and wait until each partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futures[name].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 and p.error is None for p in topic.partitions.values())
        ):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topic {name} has no leader for each of its {partitions} partitions"
            )
        time.sleep(0.1)


def partition_count(bootstrap: str, name: str, timeout: float = 10.0) -> int:
    """How many partitions the broker's metadata gives topic `name`."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = admin.list_topics(topic=name, timeout=timeout).topics[name]
    if topic.error is not None:
        raise KafkaException(topic.error)
    return len(topic.partitions)


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    isolation_level: str = "read_committed",
    timeout: float = 30.0,
) -> list[Record]:
    """Every record of `topic` from the beginning, partition by partition in offset order.

    Done is known, not waited for: each partition's end offset (the last stable offset under
    read_committed: an open transaction's records and those after them are not read) is taken
    first, and the read stops once each partition has reported its end at or past it."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"data-mesh-test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation_level,
        }
    )
    try:
        metadata = consumer.list_topics(topic=topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        partitions = sorted(metadata.partitions)
        # The watermarks query asks with the consumer's isolation level: under read_committed
        # the high one is the last stable offset.
        ends = {
            p: consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout, cached=False
            )[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: dict[int, list[Record]] = {p: [] for p in partitions}
        pending = {p for p in partitions if ends[p] > 0}
        # An empty partition may still report its end (harmless) or not (not waited for).
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                got = {p: len(r) for p, r in records.items()}
                raise TimeoutError(
                    f"reading {topic}: partitions {sorted(pending)} not at their end offsets "
                    f"{ends} after {timeout}s (records so far per partition: {got})"
                )
            message = consumer.poll(min(left, 1.0))
            if message is None:
                continue
            error = message.error()
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None  # both set on a fetched record
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if offset >= ends[partition]:
                        pending.discard(partition)
                    continue
                raise KafkaException(error)
            records[partition].append((partition, message.key(), message.value()))
        return [record for p in partitions for record in records[p]]
    finally:
        consumer.close()


def read_committed(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Record]:
    """What a read_committed consumer sees of `topic`: committed transactions and plain
    records only (see read_topic)."""
    return read_topic(bootstrap, topic, isolation_level="read_committed", timeout=timeout)
