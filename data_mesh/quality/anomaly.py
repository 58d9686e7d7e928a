"""Anomaly rules: this run's metric against the dataset's own history, median +/- k x MAD.

The median and the median absolute deviation ignore the odd outlier in the history (a failed
load, a holiday), where a mean and standard deviation would widen the band after every spike.
The MAD is scaled by 1.4826 so `max_deviations` reads as standard deviations of normal noise.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from data_mesh.catalog.rule_configs import AnomalyRule

# MAD x 1.4826 estimates the standard deviation of normally distributed values.
MAD_TO_SIGMA = 1.4826
SPARK_BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Verdict:
    value: float | None
    # Values the judgement used, oldest first, with when each was measured.
    history: tuple[tuple[dt.datetime, float], ...]
    judged: bool
    anomalous: bool
    median: float | None = None
    mad: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def passed(self) -> bool:
        return not self.anomalous

    def observed(self, config: AnomalyRule) -> str:
        value = "no value" if self.value is None else f"{self.value:,.6g}"
        if not self.judged:
            return (
                f"{config.metric_key} = {value}; not enough history: {len(self.history)} of "
                f"{config.min_history} runs needed before it judges"
            )
        band = f"[{self.low:,.6g}, {self.high:,.6g}]"
        verdict = "outside" if self.anomalous else "within"
        return (
            f"{config.metric_key} = {value}, {verdict} the expected band {band} "
            f"(median {self.median:,.6g} of the last {len(self.history)} runs)"
        )


def judge(
    value: float | None, history: Sequence[tuple[dt.datetime, float]], config: AnomalyRule
) -> Verdict:
    """Judge `value` against `history` (oldest first, at most `history_runs` long)."""
    past = tuple(history[-config.history_runs :])
    if len(past) < config.min_history:
        return Verdict(value, past, judged=False, anomalous=False)
    values = [v for _, v in past]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    half_width = max(
        config.max_deviations * MAD_TO_SIGMA * mad, config.min_relative_band * abs(median)
    )
    low, high = median - half_width, median + half_width
    # No value (an empty dataset, a column all NULL) where the history had values is an anomaly.
    anomalous = value is None or not (low <= value <= high)
    return Verdict(value, past, True, anomalous, median, mad, low, high)


def sparkline(values: Sequence[float]) -> str:
    """Values as a line of block characters, scaled between their min and max."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    top = len(SPARK_BARS) - 1
    return "".join(SPARK_BARS[round((v - low) / span * top) if span else 0] for v in values)


def history_markdown(verdict: Verdict, config: AnomalyRule) -> str:
    """The history and this run as markdown for the check's metadata: a sparkline (this run
    last) and a table of the values, newest first, flagged against the band."""
    points = [v for _, v in verdict.history]
    if verdict.value is not None:
        points.append(verdict.value)
    lines = [f"**{config.metric_key}**, last {len(verdict.history)} runs then this run:", ""]
    lines += [f"`{sparkline(points)}`", ""]
    if verdict.judged:
        lines += [f"Expected band: {verdict.low:,.6g} to {verdict.high:,.6g}", ""]
    lines += ["| measured (UTC) | value | |", "|---|---:|---|"]
    this_run = "outside the band" if verdict.anomalous else ""
    value = "no value" if verdict.value is None else f"{verdict.value:,.6g}"
    lines.append(f"| this run | {value} | {this_run} |")
    for measured_at, past in reversed(verdict.history):
        outside = verdict.judged and not (verdict.low <= past <= verdict.high)  # type: ignore[operator]
        lines.append(
            f"| {measured_at:%Y-%m-%d %H:%M} | {past:,.6g} | {'outside' if outside else ''} |"
        )
    return "\n".join(lines)
