"""The project's Kafka broker (scripts/start-kafka.sh) does what the product needs of it:
transactions that commit or abort, transactional offset commits, partitioned topics."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from data_mesh_tests.kafka_broker import (
    create_topic,
    kafka_bootstrap,
    partition_count,
    read_committed,
    read_topic,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def kafka() -> str:
    return kafka_bootstrap()


def _name(what: str) -> str:
    return f"data-mesh-test-{what}-{uuid.uuid4().hex[:12]}"


def _transactional_producer(kafka: str) -> Producer:
    producer = Producer({"bootstrap.servers": kafka, "transactional.id": _name("tx")})
    producer.init_transactions(30)
    return producer


def test_read_committed_sees_only_committed_transactions(kafka: str) -> None:
    topic = _name("transactions")
    create_topic(kafka, topic, partitions=3)
    producer = _transactional_producer(kafka)
    committed = [(i % 3, f"k{i}".encode(), f"committed {i}".encode()) for i in range(6)]
    aborted = [(i % 3, f"k{i}".encode(), f"aborted {i}".encode()) for i in range(6)]

    producer.begin_transaction()
    for partition, key, value in committed:
        producer.produce(topic, value=value, key=key, partition=partition)
    producer.commit_transaction(30)
    producer.begin_transaction()
    for partition, key, value in aborted:
        producer.produce(topic, value=value, key=key, partition=partition)
    producer.flush(30)  # on the broker, then aborted: read_uncommitted sees them
    producer.abort_transaction(30)

    def by_partition(records):
        return sorted(records, key=lambda r: r[0])  # stable: offset order within a partition

    assert read_committed(kafka, topic) == by_partition(committed)
    assert read_topic(kafka, topic, isolation_level="read_uncommitted") == by_partition(
        committed + aborted
    )


def test_transactional_offsets_commit_with_the_output(kafka: str) -> None:
    """Consume, produce and commit the input offsets in one transaction (exactly once)."""
    source, sink, group = _name("source"), _name("sink"), _name("group")
    create_topic(kafka, source, partitions=2)
    create_topic(kafka, sink, partitions=1)
    seed = Producer({"bootstrap.servers": kafka})
    for i in range(4):
        seed.produce(source, value=f"in {i}".encode(), partition=i % 2)
    assert seed.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.assign([TopicPartition(source, p, 0) for p in range(2)])
        messages: list[Message] = []
        while len(messages) < 4:
            message = consumer.poll(10)
            assert message is not None, f"only {len(messages)} of 4 records read from {source}"
            assert message.error() is None, message.error()
            messages.append(message)
        producer = _transactional_producer(kafka)
        producer.begin_transaction()
        for message in messages:
            producer.produce(sink, value=(message.value() or b"").replace(b"in", b"out"))
        producer.send_offsets_to_transaction(
            [TopicPartition(source, p, 2) for p in range(2)], consumer.consumer_group_metadata()
        )
        producer.commit_transaction(30)
        offsets = consumer.committed([TopicPartition(source, p) for p in range(2)], timeout=30)
    finally:
        consumer.close()

    assert sorted(value or b"" for _, _, value in read_committed(kafka, sink)) == [
        f"out {i}".encode() for i in range(4)
    ]
    assert [(tp.partition, tp.offset) for tp in offsets] == [(0, 2), (1, 2)]


def test_topic_with_six_partitions(kafka: str) -> None:
    topic = _name("partitions")
    create_topic(kafka, topic, partitions=6)
    assert partition_count(kafka, topic) == 6
    assert read_committed(kafka, topic) == []
