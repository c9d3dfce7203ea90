"""The Prometheus exporter: every scrape reads Redis afresh, nothing is cached in the process.

:class:`InventoryCollector` is a prometheus_client custom collector. It serves both the
standalone ``inventory metrics`` process (:func:`serve_metrics`) and ``/metrics`` on the web
tier. A failed read (Redis down, a corrupt entry) never fails the scrape: the exposition then
holds only ``inventory_exporter_up 0`` and the scrape's duration.

See docs/metrics.md for every metric and docs/alerts.yml for the alerting rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from inventory.cache.event_ledger import EventLedger
from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, IAM_ROLE_LIMIT, Keys, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.metrics import EVENT_DROP_REASONS, EVENT_LAG_BUCKETS, RUNTIME_BUCKETS, TaskOutcomes

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from celery import Celery

    from inventory.runtime import Runtime
    from inventory.schedule import ScheduleEntry
    from inventory.settings import Settings

log = logging.getLogger(__name__)

META_BATCH = 500


class QueueLengths(Protocol):
    """Messages waiting per broker queue (:class:`inventory.brokers.BrokerQueues`)."""

    def lengths(self) -> dict[str, int]: ...


class InventoryCollector:
    """Task freshness and outcomes, queues, beat, IAM role quotas and cache ages, from Redis.

    ``task_stale_after`` maps a task's short name to its own staleness threshold (seconds);
    tasks not in it use ``stale_after_seconds``. :func:`build_collector` fills it with
    ``max(stale_after_seconds, 2 x the task's schedule interval)``, so a daily task is not
    flagged stale two hours after its run.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        broker: QueueLengths | None,
        stale_after_seconds: float,
        clock: Callable[[], float] = time.time,
        task_stale_after: Mapping[str, float] | None = None,
        partition_series: bool = True,
    ) -> None:
        self.client = client
        self.keys = keys
        self.broker = broker
        self.partition_series = partition_series
        self.stale_after_seconds = stale_after_seconds
        self.clock = clock
        self.task_stale_after = dict(task_stale_after or {})
        self.outcomes = TaskOutcomes(client, keys)
        self.cache = RedisCache(client, keys)
        self.events = EventLedger(client, keys)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def threshold(self, task: str) -> float:
        return self.task_stale_after.get(task, self.stale_after_seconds)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            # Everything is read before anything is yielded: a failure half-way exposes nothing.
            families = list(self._families(self.clock()))
            up = 1.0
        except redis.RedisError as exc:
            log.warning("metrics: cannot read Redis: %s", exc)
            families, up = [], 0.0
        except Exception:  # noqa: BLE001 - a corrupt entry or a broker error must not fail scrapes
            log.exception("metrics: cannot build the metrics")
            families, up = [], 0.0
        yield from families
        yield GaugeMetricFamily(
            "inventory_exporter_up", "1 if the exporter read Redis in this scrape, else 0", up
        )
        yield GaugeMetricFamily(
            "inventory_exporter_scrape_duration_seconds",
            "Seconds this scrape spent reading Redis",
            time.perf_counter() - started,
        )

    def _families(self, now: float) -> Iterable[Metric]:
        yield from self._tasks(now)
        yield self._runtimes()
        yield self._event_lag()
        yield from self._event_consumers(now)
        yield from self._event_counts()
        yield self._queues()
        yield from self._beat()
        yield from self._role_limits()
        yield self._reported_last_success()
        yield self._rejected()
        partitions = self._partition_meta(now)
        yield from (self._partitions if self.partition_series else self._kinds)(partitions)
        yield self._findings()

    def _tasks(self, now: float) -> Iterable[Metric]:
        labels = ["task", "account"]
        success = GaugeMetricFamily(
            "inventory_task_last_success_timestamp_seconds",
            "Unix time of the last successful run of a task for an account",
            labels=labels,
        )
        failure = GaugeMetricFamily(
            "inventory_task_last_failure_timestamp_seconds",
            "Unix time of the last failed (or retried) run of a task for an account",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "inventory_task_last_success_age_seconds",
            "Seconds since the last success; absent for a pair that never succeeded",
            labels=labels,
        )
        stale = GaugeMetricFamily(
            "inventory_task_stale",
            "1 if the last success is older than the task's threshold, or it never succeeded "
            "but failed; else 0",
            labels=labels,
        )
        thresholds = GaugeMetricFamily(
            "inventory_task_stale_threshold_seconds",
            "Seconds without success after which a task is stale",
            labels=["task"],
        )
        tasks: set[str] = set()
        for s in self.outcomes.status():
            pair = [s.task, s.account_id]
            tasks.add(s.task)
            if s.last_failure is not None:
                failure.add_metric(pair, s.last_failure)
            if s.last_success is None:
                stale.add_metric(pair, 1.0)
                continue
            since = now - s.last_success
            success.add_metric(pair, s.last_success)
            age.add_metric(pair, since)
            stale.add_metric(pair, 1.0 if since > self.threshold(s.task) else 0.0)
        for task in sorted(tasks):
            thresholds.add_metric([task], self.threshold(task))

        counts = CounterMetricFamily(
            "inventory_task_outcomes_total",
            "Runs of a task for an account by outcome (ok, failed, retry)",
            labels=["task", "account", "outcome"],
        )
        for (task, account, outcome), n in sorted(self.outcomes.counts().items()):
            counts.add_metric([task, account, outcome], n)
        return [success, failure, age, stale, thresholds, counts]

    def _runtimes(self) -> Metric:
        family = HistogramMetricFamily(
            "inventory_task_runtime_seconds", "Duration of task runs", labels=["task"]
        )
        for task, values in sorted(self.outcomes.runtimes().items()):
            # A bound no run fitted under was never written: it holds 0.
            buckets = [(floatToGoString(b), values.get(f"{b:g}", 0.0)) for b in RUNTIME_BUCKETS]
            buckets.append(("+Inf", values.get("+Inf", 0.0)))
            family.add_metric([task], buckets, values.get("sum", 0.0))
        return family

    def _event_lag(self) -> Metric:
        family = HistogramMetricFamily(
            "inventory_event_lag_seconds",
            "Seconds from a CloudTrail change event to its resource being cached again",
        )
        values = {k: float(v) for k, v in self.client.hgetall(self.keys.event_lag()).items()}
        buckets = [(floatToGoString(b), values.get(f"{b:g}", 0.0)) for b in EVENT_LAG_BUCKETS]
        buckets.append(("+Inf", values.get("+Inf", 0.0)))
        family.add_metric([], buckets, values.get("sum", 0.0))
        return family

    def _event_consumers(self, now: float) -> Iterable[Metric]:
        polls = self.events.consumers()
        up = GaugeMetricFamily(
            "inventory_event_consumers_up",
            "`inventory events` consumers that polled the change-event queue within 60 s",
            len(self.events.consumers_running(now)),
        )
        last = GaugeMetricFamily(
            "inventory_event_consumer_last_poll_timestamp_seconds",
            "Unix time of a consumer's last successful poll (removed when it stops on purpose)",
            labels=["consumer"],
        )
        for consumer, at in sorted(polls.items()):
            last.add_metric([consumer], at)
        return [up, last]

    def _event_counts(self) -> Iterable[Metric]:
        counts = self.events.counts()
        received = CounterMetricFamily(
            "inventory_event_messages_received",
            "Change-event messages received from the queue (consumer and beat drain)",
            counts.get("received", 0),
        )
        applied = CounterMetricFamily(
            "inventory_events_applied",
            "Change events whose resource was read back and stored",
            counts.get("applied", 0),
        )
        dropped = CounterMetricFamily(
            "inventory_events_dropped",
            "Change events (or messages, for not_a_change) dropped without a read, by reason",
            labels=["reason"],
        )
        for reason in EVENT_DROP_REASONS:
            dropped.add_metric([reason], counts.get(f"dropped|{reason}", 0))
        return [received, applied, dropped]

    def _queues(self) -> Metric:
        family = GaugeMetricFamily(
            "inventory_queue_length",
            "Messages waiting in a broker queue (Redis, RabbitMQ or SQS)",
            labels=["queue"],
        )
        if self.broker is None:
            return family
        for queue, length in self.broker.lengths().items():
            family.add_metric([queue], float(length))
        return family

    def _beat(self) -> Iterable[Metric]:
        tick, leader = self.client.mget([self.keys.beat_last_tick(), self.keys.beat_leader()])
        last_tick = GaugeMetricFamily(
            "inventory_beat_last_tick_timestamp_seconds",
            "Unix time of the leader beat's last tick",
        )
        if tick is not None:
            last_tick.add_metric([], float(tick))
        info = GaugeMetricFamily(
            "inventory_beat_leader_info",
            "1 for the beat (host:pid) that last held the schedule lock",
            labels=["leader"],
        )
        if leader:
            info.add_metric([str(leader)], 1.0)
        return [last_tick, info]

    def _role_limits(self) -> Iterable[Metric]:
        labels = ["account"]
        roles = GaugeMetricFamily("inventory_iam_roles", "IAM roles in an account", labels=labels)
        quota = GaugeMetricFamily(
            "inventory_iam_roles_quota", "IAM roles quota of an account", labels=labels
        )
        ratio = GaugeMetricFamily(
            "inventory_iam_role_quota_ratio", "IAM roles used / roles quota", labels=labels
        )
        records = self.cache.items(Partition(IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL))
        for record in sorted(records.values(), key=lambda r: str(r.get("account_id"))):
            account = [str(record["account_id"])]
            if record.get("roles") is not None:
                roles.add_metric(account, float(record["roles"]))
            if record.get("quota") is not None:
                quota.add_metric(account, float(record["quota"]))
            if record.get("ratio") is not None:
                ratio.add_metric(account, float(record["ratio"]))
        return [roles, quota, ratio]

    def _reported_last_success(self) -> Metric:
        family = GaugeMetricFamily(
            "inventory_task_reported_last_success_age_seconds",
            "Seconds since any run of a task last succeeded, as of the last "
            "report_celery_last_success_metrics run (ConsoleMe's celery_last_success gauge)",
            labels=["task"],
        )
        raw = self.client.hgetall(self.keys.last_success_gauge())
        for task, value in sorted(raw.items()):
            family.add_metric([str(task)], float(value))
        return family

    def _rejected(self) -> Metric:
        family = CounterMetricFamily(
            "inventory_rejected_messages_total",
            "Task messages a worker refused, by reason",
            labels=["reason"],
        )
        for reason, value in sorted(self.client.hgetall(self.keys.rejected_messages()).items()):
            family.add_metric([str(reason)], float(value))
        return family

    def _partition_meta(self, now: float) -> list[tuple[Partition, float, float]]:
        """(partition, age seconds, items) of every cached partition that was refreshed."""
        result = []
        partitions = self.cache.partitions()
        for start in range(0, len(partitions), META_BATCH):
            batch = partitions[start : start + META_BATCH]
            pipe = self.client.pipeline(transaction=False)
            for p in batch:
                pipe.hgetall(self.keys.meta(p))
            for p, meta in zip(batch, pipe.execute(), strict=True):
                if meta and "refreshed_at" in meta:
                    result.append(
                        (p, now - float(meta["refreshed_at"]), float(meta.get("count", 0)))
                    )
        return result

    def _partitions(self, partitions: list[tuple[Partition, float, float]]) -> Iterable[Metric]:
        labels = ["kind", "account", "region"]
        age = GaugeMetricFamily(
            "inventory_cache_partition_age_seconds",
            "Seconds since a cached partition was last refreshed",
            labels=labels,
        )
        items = GaugeMetricFamily(
            "inventory_cache_partition_items",
            "Records in a cached partition as last written",
            labels=labels,
        )
        for p, seconds, count in partitions:
            values = [p.kind, p.account_id, p.region]
            age.add_metric(values, seconds)
            items.add_metric(values, count)
        return [age, items]

    def _kinds(self, partitions: list[tuple[Partition, float, float]]) -> Iterable[Metric]:
        """Per kind only (``metrics.partition_series: false``): series do not grow with accounts."""
        oldest = GaugeMetricFamily(
            "inventory_cache_kind_oldest_partition_age_seconds",
            "Seconds since the least recently refreshed partition of a kind was refreshed",
            labels=["kind"],
        )
        items = GaugeMetricFamily(
            "inventory_cache_kind_items",
            "Records cached of a kind, in every partition",
            labels=["kind"],
        )
        count = GaugeMetricFamily(
            "inventory_cache_kind_partitions", "Cached partitions of a kind", labels=["kind"]
        )
        by_kind: dict[str, list[tuple[float, float]]] = {}
        for p, seconds, n in partitions:
            by_kind.setdefault(p.kind, []).append((seconds, n))
        for kind, rows in sorted(by_kind.items()):
            oldest.add_metric([kind], max(r[0] for r in rows))
            items.add_metric([kind], sum(r[1] for r in rows))
            count.add_metric([kind], float(len(rows)))
        return [oldest, items, count]

    def _findings(self) -> Metric:
        from inventory.analysis.findings import SEVERITIES
        from inventory.cache.findings import FindingsState

        family = GaugeMetricFamily(
            "inventory_findings",
            "Risk findings in an account by severity, as its last analysis counted them",
            labels=["account", "severity"],
        )
        for account, counts in sorted(FindingsState(self.client, self.keys).counts().items()):
            for severity in SEVERITIES:
                family.add_metric([account, severity], float(counts["severity"].get(severity, 0)))
        return family


def render(collector: InventoryCollector) -> bytes:
    """The text exposition of one scrape."""
    from prometheus_client import generate_latest

    return generate_latest(collector.registry)


@dataclass
class MetricsServer:
    """The standalone exporter's HTTP server (a daemon thread); ``stop()`` ends it."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_port)

    def wait(self, heartbeat_file: str | None = None, interval: float = 15.0) -> None:
        """Block until the server stops (``stop()`` from another thread, or a signal).

        Meanwhile touch ``heartbeat_file`` (if any) while the server thread lives.
        """
        from inventory.liveness import touch

        last = 0.0
        while self.thread.is_alive():
            if heartbeat_file and time.monotonic() - last >= interval:
                touch(heartbeat_file)
                last = time.monotonic()
            self.thread.join(0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def serve_metrics(host: str, port: int, collector: InventoryCollector) -> MetricsServer:
    """Serve the collector's registry on ``http://host:port/`` (any path); port 0 picks one."""
    httpd, thread = start_http_server(port, host, collector.registry)
    return MetricsServer(httpd, thread)


def schedule_interval(entry: ScheduleEntry) -> float:
    """Seconds between runs of a schedule entry: the longest gap for a crontab."""
    if entry.crontab is None:
        return float(entry.every)
    from celery import Celery

    from inventory.schedule import parse_crontab

    schedule = parse_crontab(entry.crontab)
    # Its own app: without one a crontab reads its timezone from Celery's current app, which
    # it would create (and make current) in a process that has none, such as the exporter.
    schedule.app = Celery("schedule-interval", set_as_current=False)
    start = t = datetime(2024, 1, 1, tzinfo=UTC)
    previous: datetime | None = None
    longest = 0.0
    # Eight days cover every weekly pattern; a per-minute crontab stops at the run cap.
    for _ in range(12000):
        last, delta, _now = schedule.remaining_delta(t)
        t = last + delta
        if previous is not None:
            longest = max(longest, (t - previous).total_seconds())
        previous = t
        if t - start > timedelta(days=8):
            break
    return longest or float(entry.every)


def task_thresholds(settings: Settings) -> dict[str, float]:
    """Short task name -> stale threshold: max(stale_after_seconds, 2 x schedule interval).

    A fan-out entry's interval also applies to its per-account task (``*_for_account``).
    Disabled entries are left out: their tasks use the generic threshold.
    """
    from inventory.schedule import effective_schedule

    floor = settings.metrics.stale_after_seconds
    result: dict[str, float] = {}
    for entry in effective_schedule(settings):
        if not entry.enabled:
            continue
        threshold = max(floor, 2 * schedule_interval(entry))
        short = entry.task.removeprefix("inventory.")
        result[short] = threshold
        if short.endswith("_across_accounts"):
            result[short.removesuffix("_across_accounts") + "_for_account"] = threshold
    return result


def build_collector(
    runtime: Runtime, settings: Settings, app: Celery | None = None
) -> InventoryCollector:
    """The collector over a runtime's cache Redis and the broker's queues (any broker; through
    ``app`` when the caller has a Celery app of these settings already)."""
    from inventory.brokers import broker_queues

    return InventoryCollector(
        runtime.redis,
        runtime.keys,
        broker_queues(settings, app),
        settings.metrics.stale_after_seconds,
        task_stale_after=task_thresholds(settings),
        partition_series=settings.metrics.partition_series,
    )


__all__ = [
    "InventoryCollector",
    "MetricsServer",
    "QueueLengths",
    "build_collector",
    "render",
    "schedule_interval",
    "serve_metrics",
    "task_thresholds",
]
