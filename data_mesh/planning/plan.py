"""Estimate the Spark and DDZ resources of a transformation from the size of its inputs, its
shape and its run history, with the reasoning for each figure.

The rules are the usual sizing rules of Spark (Databricks' and Cloudera's tuning guides): input
splits and shuffle partitions of about 128 MiB of data each, 4 cores per executor, enough
executors for two waves of tasks, and execution memory per task a small multiple of its
partition so that sorts and hash aggregations fit without spilling. The DDZ side follows the
Azure SQL tier: its log rate bounds the useful write connections (about one per vCore, as
section 4 of the Spark->SQL notes in our reference says). Nothing here is learned; every
assumption is a named field of `Assumptions`, and `data-mesh plan` prints the reasoning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from data_mesh.ddz.chunks import ChunkSettings, chunk_count
from data_mesh.planning.shape import Shape

MIB = 1024 * 1024
GIB = 1024 * MIB
Tier = Literal["general_purpose", "business_critical", "hyperscale"]


@dataclass(frozen=True)
class InputSize:
    name: str
    files: int
    bytes: int
    # Where the figure comes from: "lake" (file sizes), "history" (rows x row bytes), "unknown".
    source: str = "lake"


@dataclass(frozen=True)
class RunHistory:
    """The output's last successful runs (audit log): how many, median rows and seconds."""

    runs: int = 0
    rows: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class DatabaseTier:
    tier: Tier = "general_purpose"
    vcores: int = 2

    @property
    def log_rate_mb_s(self) -> float:
        """Azure SQL's maximum log rate (resource-limits-vcore-single-databases)."""
        if self.tier == "general_purpose":
            return min(4.5 * self.vcores, 50.0)
        if self.tier == "business_critical":
            return min(max(24.0, 12.0 * self.vcores), 96.0)
        return 100.0


@dataclass(frozen=True)
class Assumptions:
    # Bytes in Spark's memory per byte of compressed columnar input (Parquet).
    expansion: float = 3.0
    # Data per input split and per shuffle partition (spark.sql.files.maxPartitionBytes).
    partition_bytes: int = 128 * MIB
    cores_per_executor: int = 4
    waves: int = 2
    max_executors: int = 64
    # Execution memory a task needs, as a multiple of its partition's bytes in memory.
    task_memory_factor: float = 2.0
    # Spark takes execution memory in pages of up to 64 MiB (spark.buffer.pageSize): a task
    # with a hash join and an aggregation holds two, whatever its data.
    min_task_memory: int = 128 * MIB
    memory_fraction: float = 0.6  # spark.memory.fraction
    reserved_memory: int = 300 * MIB  # Spark's reserved memory per JVM
    # Inputs up to this size (on disk) are broadcast: the driver collects and sends them.
    broadcast_bytes: int = 10 * MIB  # spark.sql.autoBroadcastJoinThreshold
    row_bytes: int = 200  # a DDZ row, when neither the schema nor history tells
    # Log one JDBC bulk-insert connection produces, MB/s (one connection per vCore, at most).
    connection_log_mb_s: float = 5.0


DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass(frozen=True)
class Decision:
    setting: str
    value: str
    why: str


@dataclass
class ResourcePlan:
    executors: int
    cores_per_executor: int
    executor_memory_mb: int
    executor_overhead_mb: int
    driver_memory_mb: int
    input_partitions: int
    shuffle_partitions: int
    task_memory_mb: int
    ddz_rows: int
    ddz_chunks: int
    ddz_connections: int
    ddz_write_seconds: float
    decisions: list[Decision] = field(default_factory=list)

    def spark_config(self) -> dict[str, str]:
        """Session settings for the transformation's `spark_config`."""
        return {"spark.sql.shuffle.partitions": str(self.shuffle_partitions)}

    def cluster_config(self) -> dict[str, str]:
        """Settings of the cluster (Databricks cluster or spark-submit), fixed at its start."""
        return {
            "spark.executor.instances": str(self.executors),
            "spark.executor.cores": str(self.cores_per_executor),
            "spark.executor.memory": f"{self.executor_memory_mb}m",
            "spark.executor.memoryOverhead": f"{self.executor_overhead_mb}m",
            "spark.driver.memory": f"{self.driver_memory_mb}m",
        }


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def _size(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB"


def plan_resources(
    inputs: list[InputSize],
    shape: Shape,
    history: RunHistory,
    output_row_bytes: int | None,
    tier: DatabaseTier,
    kafka_output: bool = False,
    assume: Assumptions = DEFAULT_ASSUMPTIONS,
) -> ResourcePlan:
    """The plan for one run of a transformation over `inputs` (one day of them, if daily)."""
    decisions: list[Decision] = []
    on_disk = sum(i.bytes for i in inputs)
    in_memory = on_disk * assume.expansion
    input_partitions = max(1, math.ceil(on_disk / assume.partition_bytes))
    decisions.append(
        Decision(
            "input",
            f"{_size(on_disk)} in {sum(i.files for i in inputs)} files",
            f"about {_size(in_memory)} in memory ({assume.expansion:g}x); "
            f"{input_partitions} splits of at most {_size(assume.partition_bytes)}",
        )
    )
    shuffled = shape.shuffles > 0
    wanted = max(1, math.ceil(in_memory / assume.partition_bytes)) if shuffled else 1
    parallel = max(input_partitions, wanted)
    executors = min(
        assume.max_executors,
        max(1, math.ceil(parallel / (assume.cores_per_executor * assume.waves))),
    )
    cores = executors * assume.cores_per_executor
    decisions.append(
        Decision(
            "executors x cores",
            f"{executors} x {assume.cores_per_executor}",
            f"{parallel} tasks in at most {assume.waves} waves of "
            f"{assume.cores_per_executor} cores per executor",
        )
    )
    # A multiple of the cores: the last wave is as full as the others.
    shuffle_partitions = _round_up(max(wanted, cores), cores) if shuffled else cores
    why = (
        f"{shape.joins} joins, {shape.aggregations} aggregations, {shape.windows} windows: "
        f"{_size(in_memory)} over {shuffle_partitions} partitions "
        f"({_size(in_memory / shuffle_partitions)} each), a multiple of {cores} cores"
        if shuffled
        else "no shuffle: one partition per core"
    )
    decisions.append(Decision("spark.sql.shuffle.partitions", str(shuffle_partitions), why))
    partition = in_memory / max(shuffle_partitions if shuffled else input_partitions, 1)
    task_memory = max(assume.min_task_memory, partition * assume.task_memory_factor)
    executor_memory = max(
        GIB,
        _round_up(
            assume.cores_per_executor * task_memory / assume.memory_fraction
            + assume.reserved_memory,
            256 * MIB,
        ),
    )
    overhead = max(384 * MIB, _round_up(executor_memory * 0.1, 64 * MIB))
    decisions.append(
        Decision(
            "spark.executor.memory",
            f"{executor_memory // MIB}m (+{overhead // MIB}m overhead)",
            f"{assume.cores_per_executor} tasks x {_size(task_memory)} (the larger of "
            f"{assume.task_memory_factor:g}x a partition and {_size(assume.min_task_memory)}) "
            "/ spark.memory.fraction "
            f"{assume.memory_fraction:g} + {_size(assume.reserved_memory)} reserved",
        )
    )
    broadcast = sum(i.bytes for i in inputs if 0 < i.bytes <= assume.broadcast_bytes)
    driver = GIB + _round_up(broadcast * assume.expansion * 2, 256 * MIB)
    driver_why = f"1 GiB + broadcast inputs ({_size(broadcast)} on disk, twice in memory)"
    if kafka_output:
        driver += 512 * MIB
        driver_why += " + 512 MiB: Kafka messages pass through the driver, a partition at a time"
    decisions.append(Decision("spark.driver.memory", f"{driver // MIB}m", driver_why))
    row_bytes = output_row_bytes or assume.row_bytes
    if history.rows is not None:
        rows, rows_why = history.rows, f"median of the last {history.runs} runs"
    else:
        rows = int(in_memory / row_bytes)
        rows_why = f"no history: {_size(in_memory)} / {row_bytes} B a row"
    connections = max(
        1, min(tier.vcores, math.floor(tier.log_rate_mb_s / assume.connection_log_mb_s))
    )
    chunks = chunk_count(rows, row_bytes, ChunkSettings(), connections)
    rate = min(connections * assume.connection_log_mb_s, tier.log_rate_mb_s)
    write_seconds = rows * row_bytes / (rate * 1_000_000)
    if not kafka_output:
        decisions.append(
            Decision(
                "DDZ chunks x connections",
                f"{chunks} x {connections}",
                f"{rows:,} rows ({rows_why}) of {row_bytes} B; {tier.tier} {tier.vcores} vCores "
                f"log at most {tier.log_rate_mb_s:g} MB/s: about {write_seconds:,.0f} s",
            )
        )
    if history.seconds is not None:
        decisions.append(
            Decision("last runs", f"{history.seconds:,.0f} s", f"median of {history.runs} runs")
        )
    return ResourcePlan(
        executors=executors,
        cores_per_executor=assume.cores_per_executor,
        executor_memory_mb=executor_memory // MIB,
        executor_overhead_mb=overhead // MIB,
        driver_memory_mb=driver // MIB,
        input_partitions=input_partitions,
        shuffle_partitions=shuffle_partitions,
        task_memory_mb=int(task_memory // MIB),
        ddz_rows=rows,
        ddz_chunks=chunks,
        ddz_connections=connections,
        ddz_write_seconds=write_seconds,
        decisions=decisions,
    )
