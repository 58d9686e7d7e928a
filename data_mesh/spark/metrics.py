"""What Spark measured for a group of jobs (its monitoring REST API): spill and the largest
execution memory one task used, to check a resource plan against a real run."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


@dataclass
class RunMetrics:
    stages: int = 0
    tasks: int = 0
    memory_spilled: int = 0
    disk_spilled: int = 0
    # The most execution memory (sort, aggregation, join buffers) one task used.
    peak_task_memory: int = 0
    shuffle_write_bytes: int = 0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _group_jobs(base: str, group: str) -> list[dict[str, Any]]:
    """The group's jobs once Spark's status store has them all finished (it is updated by a
    listener, a moment after an action returns)."""
    deadline = time.monotonic() + 30
    while True:
        jobs = [j for j in _get(f"{base}/jobs") if j.get("jobGroup") == group]
        if all(j["status"] != "RUNNING" for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


@contextmanager
def measured(spark: SparkSession) -> Iterator[Callable[[], RunMetrics]]:
    """Tag the jobs run inside the block; the callable returns their metrics after it."""
    context = spark.sparkContext
    group = f"data_mesh-measure-{uuid.uuid4().hex[:8]}"
    context.setJobGroup(group, "measured")
    metrics = RunMetrics()
    try:
        yield lambda: metrics
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    base = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}"
    jobs = _group_jobs(base, group)
    for stage_id in sorted({s for j in jobs for s in j["stageIds"]}):
        for attempt in _get(f"{base}/stages/{stage_id}"):
            if attempt["status"] != "COMPLETE":
                continue
            metrics.stages += 1
            metrics.tasks += attempt["numCompleteTasks"]
            metrics.memory_spilled += attempt["memoryBytesSpilled"]
            metrics.disk_spilled += attempt["diskBytesSpilled"]
            metrics.shuffle_write_bytes += attempt["shuffleWriteBytes"]
            summary = _get(
                f"{base}/stages/{stage_id}/{attempt['attemptId']}/taskSummary?quantiles=1.0"
            )
            peak = int(summary["peakExecutionMemory"][0])
            metrics.peak_task_memory = max(metrics.peak_task_memory, peak)
