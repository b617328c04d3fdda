"""Prometheus metrics of one platform, in a registry of its own (not the process-wide one).

Two kinds of figures:

- per invocation, updated once in ``Metrics.observe`` when the invoker has filled in a
  record (the one place every invocation passes): invocations, errors, cold starts and the
  duration and init-duration histograms. They are plain counters per function (a dict
  lookup, a bisect and a few additions), rendered as metric families when scraped.
- state, read at scrape time by ``StateCollector`` and never updated on the hot path:
  concurrent executions, warm instances and throttles from the pools, events per bus and
  rule from ``BusStats``, queue depths, stream consumer lag and dead-letter depths from the
  store. ``Metrics.scrape`` reads what needs the store first, then renders.

Workflow runs and steps by status are read from the store at scrape time too (a grouped
count: history rows are not indexed by workflow, so a scrape reads every step row's key).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from squall.model.invocation import InvocationRecord, InvocationStatus

if TYPE_CHECKING:
    from squall.engine.bus_stats import BusStats
    from squall.runtime.pool import Pool

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a warm no-op (~0.2 ms) to the longest timeout_s (900 s).
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
# Init hooks get 10 s; a fork-served cold start is a few ms.
INIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class StateSnapshot:
    """What the store says at scrape time (read before rendering, since collectors are sync)."""

    queues: list[tuple[str, Any]] = field(default_factory=list)  # (name, QueueStats)
    streams: list[dict[str, Any]] = field(default_factory=list)  # Streams.describe()
    dead_letters: dict[str, int] = field(default_factory=dict)
    workflow_runs: dict[tuple[str, str], int] = field(default_factory=dict)
    workflow_steps: dict[tuple[str, str, str], int] = field(default_factory=dict)
    projections: list[dict[str, Any]] = field(default_factory=list)  # Projections.status()
    taken_at: float = 0.0


class _Histogram:
    """Counts per bucket (not cumulative; the last is +Inf), a sum and a count."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: the first bound >= value
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: list[tuple[str, float]] = []
        running = 0
        labels = (*map(floatToGoString, self.bounds), "+Inf")
        for bound, count in zip(labels, self.counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        return cumulative


class _FunctionCounts:
    __slots__ = ("by_outcome", "cold", "duration", "errors", "init")

    def __init__(self) -> None:
        self.by_outcome: dict[tuple[str, str], int] = {}  # (trigger, status) -> attempts
        self.errors: dict[str, int] = {}  # error type -> failed attempts
        self.cold = 0
        self.duration = _Histogram(DURATION_BUCKETS)
        self.init = _Histogram(INIT_BUCKETS)


class Metrics:
    """The platform's registry; ``observe`` is the invoker's hook.

    The per-invocation figures are plain ints and floats (no locks: the platform runs on one
    event loop), turned into metric families when scraped.
    """

    def __init__(self, pools: Mapping[str, Pool], bus_stats: BusStats) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._functions: dict[str, _FunctionCounts] = {}
        self.state = StateCollector(pools, bus_stats)
        self.registry.register(_InvocationCollector(self._functions))
        self.registry.register(self.state)

    def observe(self, record: InvocationRecord) -> None:
        """Count one finished invocation attempt (called once per attempt, by the invoker)."""
        counts = self._functions.get(record.function)
        if counts is None:
            counts = self._functions[record.function] = _FunctionCounts()
        key = (record.trigger, record.status)
        outcomes = counts.by_outcome
        outcomes[key] = outcomes.get(key, 0) + 1
        if record.duration_ms is not None:
            counts.duration.observe(record.duration_ms / 1000)
        if record.cold:
            counts.cold += 1
            if record.init_ms is not None:
                counts.init.observe(record.init_ms / 1000)
        if record.error is not None and record.status == InvocationStatus.FAILED:
            kind = error_type(record.error)
            counts.errors[kind] = counts.errors.get(kind, 0) + 1

    def render(self, snapshot: StateSnapshot) -> bytes:
        """The Prometheus text exposition of everything, with store state from ``snapshot``."""
        self.state.snapshot = snapshot
        return generate_latest(self.registry)


class _InvocationCollector(Collector):
    def __init__(self, functions: dict[str, _FunctionCounts]) -> None:
        self._functions = functions

    def describe(self) -> Sequence[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        invocations = CounterMetricFamily(
            "squall_invocations",
            "Finished invocation attempts, by function, trigger and outcome.",
            labels=("function", "trigger", "status"),
        )
        errors = CounterMetricFamily(
            "squall_invocation_errors",
            "Failed invocation attempts, by function and error type (the handler's exception"
            " class, or Timeout, OutOfMemory, SandboxCrashed, InitError ...).",
            labels=("function", "error_type"),
        )
        cold = CounterMetricFamily(
            "squall_cold_starts", "Invocations that started a new sandbox.", labels=("function",)
        )
        duration = HistogramMetricFamily(
            "squall_invocation_duration_seconds",
            "Handler run time of each invocation attempt.",
            labels=("function",),
        )
        init = HistogramMetricFamily(
            "squall_init_duration_seconds",
            "Init time of the sandboxes cold starts ran in.",
            labels=("function",),
        )
        for name, counts in sorted(self._functions.items()):
            for (trigger, status), count in sorted(counts.by_outcome.items()):
                invocations.add_metric((name, trigger, status), count)
            for kind, count in sorted(counts.errors.items()):
                errors.add_metric((name, kind), count)
            cold.add_metric((name,), counts.cold)
            duration.add_metric((name,), counts.duration.buckets(), counts.duration.total)
            init.add_metric((name,), counts.init.buckets(), counts.init.total)
        yield from (invocations, errors, cold, duration, init)


class StateCollector(Collector):
    """Gauges and counters read from the platform's state when scraped."""

    def __init__(self, pools: Mapping[str, Pool], bus_stats: BusStats) -> None:
        self._pools = pools
        self._bus_stats = bus_stats
        self.snapshot = StateSnapshot()

    def describe(self) -> Sequence[Metric]:
        return []  # families vary with the platform's state: checked when collected

    def collect(self) -> Iterator[Metric]:
        yield from self._pool_metrics()
        yield from self._bus_metrics()
        yield from self._queue_metrics()
        yield from self._stream_metrics()
        yield from self._workflow_metrics()
        yield from self._projection_metrics()
        dead = GaugeMetricFamily(
            "squall_dead_letters",
            "Dead letters held, by function (rule:<name> for a rule's target deliveries).",
            labels=("function",),
        )
        for function, count in sorted(self.snapshot.dead_letters.items()):
            dead.add_metric((function,), count)
        yield dead

    def _pool_metrics(self) -> Iterator[Metric]:
        busy = GaugeMetricFamily(
            "squall_concurrent_executions", "Sandboxes running an invocation.", labels=("function",)
        )
        warm = GaugeMetricFamily(
            "squall_warm_instances", "Idle sandboxes ready to serve.", labels=("function",)
        )
        started = CounterMetricFamily(
            "squall_sandboxes_started",
            "Sandboxes started (cold starts and min_instances pre-warming).",
            labels=("function",),
        )
        throttles = CounterMetricFamily(
            "squall_throttles",
            "Sync calls refused with TooManyRequests at the concurrency limit.",
            labels=("function",),
        )
        for name, pool in sorted(self._pools.items()):
            busy.add_metric((name,), len(pool.busy))
            warm.add_metric((name,), pool.warm)
            started.add_metric((name,), pool.cold_starts)
            throttles.add_metric((name,), pool.throttles)
        yield from (busy, warm, started, throttles)

    def _bus_metrics(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "squall_bus_events",
            "Events published to a bus since start, by what became of them"
            " (published, duplicate, matched, looped).",
            labels=("bus", "outcome"),
        )
        deliveries = CounterMetricFamily(
            "squall_bus_deliveries",
            "Deliveries queued, one per target of every rule an event matched.",
            labels=("bus",),
        )
        for counters in self._bus_stats.snapshot():
            bus = counters.bus
            events.add_metric((bus, "published"), counters.published)
            events.add_metric((bus, "duplicate"), counters.duplicates)
            events.add_metric((bus, "matched"), counters.matched)
            events.add_metric((bus, "looped"), counters.looped)
            deliveries.add_metric((bus,), counters.deliveries)
        rules = CounterMetricFamily(
            "squall_rule_matches", "Events a rule matched since start.", labels=("bus", "rule")
        )
        for (bus, rule), count in sorted(self._bus_stats.rule_matches().items()):
            rules.add_metric((bus, rule), count)
        failed = GaugeMetricFamily(
            "squall_rule_dead_letters",
            "A rule's bus, HTTP and queue target deliveries that failed for good (held"
            " as dead letters); function targets fail as their function's invocations.",
            labels=("rule",),
        )
        for function, count in sorted(self.snapshot.dead_letters.items()):
            if function.startswith("rule:"):
                failed.add_metric((function[5:],), count)
        yield from (events, deliveries, rules, failed)

    def _queue_metrics(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "squall_queue_messages",
            "Messages a queue holds, by state (visible, in_flight, delayed).",
            labels=("queue", "state"),
        )
        oldest = GaugeMetricFamily(
            "squall_queue_oldest_message_age_seconds",
            "Age of the oldest message a queue holds (0 when empty).",
            labels=("queue",),
        )
        now = self.snapshot.taken_at
        for name, stats in self.snapshot.queues:
            depth.add_metric((name, "visible"), stats.visible)
            depth.add_metric((name, "in_flight"), stats.in_flight)
            depth.add_metric((name, "delayed"), stats.delayed)
            sent = stats.oldest_sent_at
            oldest.add_metric((name,), 0.0 if sent is None else max(0.0, now - sent))
        yield from (depth, oldest)

    def _workflow_metrics(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "squall_workflow_runs",
            "Workflow runs the store holds, by workflow and status.",
            labels=("workflow", "status"),
        )
        steps = GaugeMetricFamily(
            "squall_workflow_steps",
            "Checkpointed workflow steps, by workflow, kind (step, invoke, sleep, …) and status.",
            labels=("workflow", "kind", "status"),
        )
        for (workflow, status), count in sorted(self.snapshot.workflow_runs.items()):
            runs.add_metric((workflow, status), count)
        for (workflow, kind, status), count in sorted(self.snapshot.workflow_steps.items()):
            steps.add_metric((workflow, kind, status), count)
        yield from (runs, steps)

    def _stream_metrics(self) -> Iterator[Metric]:
        behind = GaugeMetricFamily(
            "squall_stream_consumer_behind_records",
            "Records after a stream trigger's checkpoint, per shard.",
            labels=("stream", "shard", "function"),
        )
        age = GaugeMetricFamily(
            "squall_stream_consumer_oldest_age_seconds",
            "Age of the oldest record a stream trigger has not processed (0 when caught up).",
            labels=("stream", "shard", "function"),
        )
        for stream in self.snapshot.streams:
            for consumer in stream["consumers"]:
                labels = (stream["name"], str(consumer["shard"]), consumer["function"])
                behind.add_metric(labels, consumer["behind"])
                age.add_metric(labels, consumer["oldest_unprocessed_age_s"] or 0.0)
        yield from (behind, age)

    def _projection_metrics(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "squall_projection_lag_events",
            "Events of the global order after a projection's checkpoint (head - checkpoint),"
            " for its live generation and, during a rebuild, the one being built.",
            labels=("projection", "generation", "state"),
        )
        for row in self.snapshot.projections:
            lag.add_metric((row["name"], str(row["generation"]), "live"), row["lag"])
            fresh = row.get("rebuild")
            if fresh is not None:
                lag.add_metric((row["name"], str(fresh["generation"]), "rebuilding"),
                               fresh["lag"])
        yield lag


def error_type(error: Mapping[str, object]) -> str:
    """The user's exception class for a handler's error (``FunctionError``), else the
    platform's error type (``Timeout``, ``OutOfMemory``, ``SandboxCrashed`` …)."""
    return str(error.get("error_type") or error.get("type") or "Error")
