"""The Prometheus exporter against the real Redis: exact samples, Redis down, HTTP, alert rules."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from inventory.aws.limits import transform_role_limit
from inventory.brokers import BrokerQueues, broker_queues
from inventory.cache.findings import FindingsState
from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, IAM_ROLE, IAM_ROLE_LIMIT, Partition
from inventory.cache.redis_cache import connect
from inventory.celery_app import QUEUES
from inventory.exporter import (
    InventoryCollector,
    build_collector,
    render,
    serve_metrics,
    task_thresholds,
)
from inventory.metrics import FAILED, OK, RETRY, RUNTIME_BUCKETS
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.web.app import Readers, make_app
from tests.servers import free_port
from tests.web.conftest import Server
from tests.web.test_app import TOKEN, TOKEN_HASH, WRONG_TOKEN

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "docs" / "alerts.yml"
NOW = 1_700_000_000.0
STALE_AFTER = 7200.0
ROLE_LIMIT_THRESHOLD = 172800.0
ACCOUNT_A, ACCOUNT_B = "111111111111", "222222222222"
IAM_TASK = "cache_iam_resources_for_account"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
#: kombu's Redis transport keeps priority ``n`` of queue ``q`` in the list ``q + SEP + n``.
PRIORITY_SEP = "\x06\x16"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def parse(text: str) -> tuple[Samples, set[str]]:
    """Sample (name, labels) -> value, and every family and sample name in the exposition."""
    samples: Samples = {}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for s in family.samples:
            names.add(s.name)
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples, names


def scrape(collector: InventoryCollector) -> Samples:
    return parse(render(collector).decode())[0]


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def lbl(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


@pytest.fixture
def broker(runtime: Runtime) -> redis.Redis:
    return redis.Redis.from_url(runtime.settings.celery.broker_url, decode_responses=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def collector(runtime: Runtime, broker: redis.Redis, clock: Clock) -> InventoryCollector:
    return InventoryCollector(
        runtime.redis,
        runtime.keys,
        broker_queues(runtime.settings),
        STALE_AFTER,
        clock=clock,
        task_stale_after={"get_iam_role_limit": ROLE_LIMIT_THRESHOLD},
    )


def dead_redis() -> redis.Redis:
    return connect(f"redis://127.0.0.1:{free_port()}/2", socket_timeout=2.0)


def dead_broker(settings: Settings) -> BrokerQueues:
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {"INVENTORY_CELERY__BROKER_URL": url, "INVENTORY_REDIS__URL": settings.redis.url}
    return broker_queues(load_settings(paths=[], environ=env))


# --- task freshness and outcomes -------------------------------------------------------------


def test_stale_account_after_failure_following_an_old_success(runtime, collector):
    out = runtime.outcomes
    out.record(IAM_TASK, ACCOUNT_A, OK, NOW - 10_000)
    out.record(IAM_TASK, ACCOUNT_A, FAILED, NOW - 100, "AccessDenied: nope")
    out.record(IAM_TASK, ACCOUNT_B, OK, NOW - 60)

    s = scrape(collector)

    a = {"task": IAM_TASK, "account": ACCOUNT_A}
    b = {"task": IAM_TASK, "account": ACCOUNT_B}
    assert sample(s, "inventory_task_stale", **a) == 1
    assert sample(s, "inventory_task_last_success_age_seconds", **a) == 10_000
    assert sample(s, "inventory_task_last_success_timestamp_seconds", **a) == NOW - 10_000
    assert sample(s, "inventory_task_last_failure_timestamp_seconds", **a) == NOW - 100
    assert sample(s, "inventory_task_stale", **b) == 0
    assert sample(s, "inventory_task_last_success_age_seconds", **b) == 60
    assert sample(s, "inventory_task_last_failure_timestamp_seconds", **b) is None
    assert named(s, "inventory_task_outcomes_total") == {
        lbl(task=IAM_TASK, account=ACCOUNT_A, outcome=OK): 1,
        lbl(task=IAM_TASK, account=ACCOUNT_A, outcome=FAILED): 1,
        lbl(task=IAM_TASK, account=ACCOUNT_B, outcome=OK): 1,
    }
    assert named(s, "inventory_task_stale_threshold_seconds") == {lbl(task=IAM_TASK): STALE_AFTER}
    assert sample(s, "inventory_exporter_up") == 1


def test_staleness_follows_the_injected_clock_and_the_threshold_boundary(runtime, collector, clock):
    runtime.outcomes.record(IAM_TASK, ACCOUNT_A, OK, NOW)
    clock.now = NOW + STALE_AFTER  # exactly the threshold: not yet stale
    s = scrape(collector)
    assert sample(s, "inventory_task_stale", task=IAM_TASK, account=ACCOUNT_A) == 0
    assert (
        sample(s, "inventory_task_last_success_age_seconds", task=IAM_TASK, account=ACCOUNT_A)
        == STALE_AFTER
    )
    clock.now = NOW + STALE_AFTER + 1
    s = scrape(collector)
    assert sample(s, "inventory_task_stale", task=IAM_TASK, account=ACCOUNT_A) == 1


def test_never_succeeded_but_failed_is_stale_without_seconds_since_success(runtime, collector):
    runtime.outcomes.record("cache_policy_requests", None, FAILED, NOW - 5, "boom")
    runtime.outcomes.record("cache_policy_requests", None, RETRY, NOW - 3, "throttled")

    s = scrape(collector)

    pair = {"task": "cache_policy_requests", "account": ALL_ACCOUNTS}
    assert sample(s, "inventory_task_stale", **pair) == 1
    assert sample(s, "inventory_task_last_failure_timestamp_seconds", **pair) == NOW - 3
    assert sample(s, "inventory_task_last_success_age_seconds", **pair) is None
    assert sample(s, "inventory_task_last_success_timestamp_seconds", **pair) is None
    assert sample(s, "inventory_task_outcomes_total", outcome=FAILED, **pair) == 1
    assert sample(s, "inventory_task_outcomes_total", outcome=RETRY, **pair) == 1


def test_per_task_threshold_keeps_a_daily_task_fresh_between_runs(runtime, collector):
    runtime.outcomes.record("get_iam_role_limit", ACCOUNT_A, OK, NOW - 80_000)
    runtime.outcomes.record("get_iam_role_limit", ACCOUNT_B, OK, NOW - 180_000)

    s = scrape(collector)

    assert sample(s, "inventory_task_stale", task="get_iam_role_limit", account=ACCOUNT_A) == 0
    assert sample(s, "inventory_task_stale", task="get_iam_role_limit", account=ACCOUNT_B) == 1
    assert (
        sample(s, "inventory_task_stale_threshold_seconds", task="get_iam_role_limit")
        == ROLE_LIMIT_THRESHOLD
    )


def test_runtime_histogram_has_cumulative_buckets_sum_and_count(runtime, collector):
    for seconds in (0.3, 7, 4000):
        runtime.outcomes.record_runtime(IAM_TASK, seconds)
    runtime.outcomes.record_runtime("get_iam_role_limit", 1)

    s = scrape(collector)

    buckets = {
        dict(labels)["le"]: v
        for labels, v in named(s, "inventory_task_runtime_seconds_bucket").items()
        if dict(labels)["task"] == IAM_TASK
    }
    expected = {"0.5": 1, "1.0": 1, "2.5": 1, "5.0": 1, "10.0": 2, "30.0": 2, "60.0": 2}
    expected |= {"120.0": 2, "300.0": 2, "600.0": 2, "1800.0": 2, "+Inf": 3}
    assert len(expected) == len(RUNTIME_BUCKETS) + 1
    assert buckets == expected
    assert sample(s, "inventory_task_runtime_seconds_count", task=IAM_TASK) == 3
    assert sample(s, "inventory_task_runtime_seconds_sum", task=IAM_TASK) == pytest.approx(4007.3)
    assert (
        sample(s, "inventory_task_runtime_seconds_bucket", task="get_iam_role_limit", le="0.5") == 0
    )
    assert (
        sample(s, "inventory_task_runtime_seconds_bucket", task="get_iam_role_limit", le="1.0") == 1
    )
    assert sample(s, "inventory_task_runtime_seconds_count", task="get_iam_role_limit") == 1


# --- queues, beat, quotas, gauges, partitions --------------------------------------------------


def test_queue_length_sums_every_priority_list(collector, broker):
    broker.lpush("aws", "m1", "m2", "m3")
    broker.lpush(f"aws{PRIORITY_SEP}3", "p1", "p2")
    broker.lpush(f"fanout{PRIORITY_SEP}9", "p3")
    broker.lpush("unrelated", "x")

    s = scrape(collector)

    assert named(s, "inventory_queue_length") == {
        lbl(queue="fanout"): 1,
        lbl(queue="aws"): 5,
        lbl(queue="maintenance"): 0,
        lbl(queue="metrics"): 0,
    }


def test_no_broker_client_means_no_queue_samples(runtime):
    collector = InventoryCollector(runtime.redis, runtime.keys, None, STALE_AFTER)
    s = scrape(collector)
    assert named(s, "inventory_queue_length") == {}
    assert sample(s, "inventory_exporter_up") == 1


def test_beat_tick_and_leader(runtime, collector):
    s = scrape(collector)
    assert named(s, "inventory_beat_last_tick_timestamp_seconds") == {}
    assert named(s, "inventory_beat_leader_info") == {}

    runtime.redis.set(runtime.keys.beat_last_tick(), NOW - 7.5)
    runtime.redis.set(runtime.keys.beat_leader(), "beat-host:4242")
    s = scrape(collector)

    assert sample(s, "inventory_beat_last_tick_timestamp_seconds") == NOW - 7.5
    assert named(s, "inventory_beat_leader_info") == {lbl(leader="beat-host:4242"): 1}


def test_iam_role_quota_from_the_role_limit_partition(runtime, collector, clock):
    records = [
        transform_role_limit({"Roles": 950, "RolesQuota": 1000}, ACCOUNT_A),
        transform_role_limit({"Roles": 10, "RolesQuota": 1000}, ACCOUNT_B),
    ]
    runtime.store.replace_partition(IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL, records, complete=True)
    meta = runtime.redis_cache.meta(Partition(IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL))
    assert meta is not None
    clock.now = meta.refreshed_at + 123.25

    s = scrape(collector)

    assert named(s, "inventory_iam_roles") == {
        lbl(account=ACCOUNT_A): 950,
        lbl(account=ACCOUNT_B): 10,
    }
    assert named(s, "inventory_iam_roles_quota") == {
        lbl(account=ACCOUNT_A): 1000,
        lbl(account=ACCOUNT_B): 1000,
    }
    assert named(s, "inventory_iam_role_quota_ratio") == {
        lbl(account=ACCOUNT_A): 0.95,
        lbl(account=ACCOUNT_B): 0.01,
    }
    partition = {"kind": IAM_ROLE_LIMIT, "account": ALL_ACCOUNTS, "region": GLOBAL}
    assert (
        sample(s, "inventory_cache_partition_age_seconds", **partition)
        == clock.now - meta.refreshed_at
    )
    assert sample(s, "inventory_cache_partition_items", **partition) == 2


def test_partition_age_for_every_partition(runtime, collector, clock):
    role = {"arn": f"arn:aws:iam::{ACCOUNT_A}:role/r", "name": "r"}
    runtime.store.replace_partition(IAM_ROLE, ACCOUNT_A, GLOBAL, [role], complete=True)
    runtime.store.replace_partition(IAM_ROLE, ACCOUNT_B, GLOBAL, [], complete=True)
    metas = {
        a: runtime.redis_cache.meta(Partition(IAM_ROLE, a, GLOBAL)) for a in (ACCOUNT_A, ACCOUNT_B)
    }
    clock.now = time.time() + 1000

    s = scrape(collector)

    assert named(s, "inventory_cache_partition_age_seconds") == {
        lbl(kind=IAM_ROLE, account=a, region=GLOBAL): clock.now - m.refreshed_at
        for a, m in metas.items()
    }
    assert named(s, "inventory_cache_partition_items") == {
        lbl(kind=IAM_ROLE, account=ACCOUNT_A, region=GLOBAL): 1,
        lbl(kind=IAM_ROLE, account=ACCOUNT_B, region=GLOBAL): 0,
    }


def test_partition_series_off_exports_per_kind_series_only(runtime, clock):
    role = {"arn": f"arn:aws:iam::{ACCOUNT_A}:role/r", "name": "r"}
    roles = [role, {"arn": f"arn:aws:iam::{ACCOUNT_B}:role/s", "name": "s"}]
    runtime.store.replace_partition(IAM_ROLE, ACCOUNT_A, GLOBAL, [role], complete=True)
    runtime.store.replace_partition(IAM_ROLE, ACCOUNT_B, GLOBAL, roles[1:], complete=True)
    runtime.store.replace_partition(IAM_ROLE, "333333333333", GLOBAL, [], complete=True)
    refreshed = [
        runtime.redis_cache.meta(Partition(IAM_ROLE, a, GLOBAL)).refreshed_at
        for a in (ACCOUNT_A, ACCOUNT_B, "333333333333")
    ]
    clock.now = time.time() + 500
    collector = InventoryCollector(
        runtime.redis, runtime.keys, None, STALE_AFTER, clock=clock, partition_series=False
    )

    s = scrape(collector)

    assert named(s, "inventory_cache_partition_age_seconds") == {}
    assert named(s, "inventory_cache_partition_items") == {}
    assert named(s, "inventory_cache_kind_oldest_partition_age_seconds") == {
        lbl(kind=IAM_ROLE): clock.now - min(refreshed)
    }
    assert named(s, "inventory_cache_kind_items") == {lbl(kind=IAM_ROLE): 2}
    assert named(s, "inventory_cache_kind_partitions") == {lbl(kind=IAM_ROLE): 3}


def test_partition_series_setting_reaches_the_collector(env, runtime):
    settings = load_settings(
        paths=[], environ=env | {"INVENTORY_METRICS__PARTITION_SERIES": "false"}
    )
    assert build_collector(runtime, settings).partition_series is False
    assert build_collector(runtime, load_settings(paths=[], environ=env)).partition_series is True


def test_reported_last_success_gauge_written_by_the_real_report_task(runtime, collector, settings):
    from inventory.celery_app import create_app

    runtime.outcomes.record("get_iam_role_limit", ACCOUNT_A, OK, time.time() - 100)
    runtime.outcomes.record("get_iam_role_limit", ACCOUNT_B, OK, time.time() - 500)
    app = create_app(settings)
    result = app.tasks["inventory.report_celery_last_success_metrics"].apply()
    assert result.successful(), result.traceback

    gauge = named(scrape(collector), "inventory_task_reported_last_success_age_seconds")

    assert set(gauge) == {lbl(task="get_iam_role_limit")}
    assert 100 <= gauge[lbl(task="get_iam_role_limit")] < 130


def test_rejected_messages_counter(runtime, collector):
    runtime.redis.hincrby(runtime.keys.rejected_messages(), "unsigned", 2)
    runtime.redis.hincrby(runtime.keys.rejected_messages(), "bad signature", 1)

    assert named(scrape(collector), "inventory_rejected_messages_total") == {
        lbl(reason="unsigned"): 2,
        lbl(reason="bad signature"): 1,
    }


# --- failures never break the scrape -----------------------------------------------------------


def assert_only_up_zero(samples: Samples) -> None:
    assert {name for name, _ in samples} == {
        "inventory_exporter_up",
        "inventory_exporter_scrape_duration_seconds",
    }
    assert sample(samples, "inventory_exporter_up") == 0


def test_redis_down_exposes_only_exporter_up_zero(runtime):
    broker = dead_broker(runtime.settings)
    collector = InventoryCollector(dead_redis(), runtime.keys, broker, 60)
    assert_only_up_zero(scrape(collector))


def test_broker_down_with_cache_up_is_also_up_zero(runtime, collector):
    runtime.outcomes.record(IAM_TASK, ACCOUNT_A, OK, NOW)
    collector.broker = dead_broker(runtime.settings)
    assert_only_up_zero(scrape(collector))


def test_corrupt_entry_is_up_zero_not_an_error(runtime, collector):
    runtime.outcomes.record(IAM_TASK, ACCOUNT_A, OK, NOW)
    runtime.redis.hset(runtime.keys.outcomes(), "no-pipes-here", 1)
    assert_only_up_zero(scrape(collector))
    runtime.redis.hdel(runtime.keys.outcomes(), "no-pipes-here")
    assert sample(scrape(collector), "inventory_exporter_up") == 1


# --- HTTP: the standalone exporter and /metrics on the web tier --------------------------------


def http_get(port: int, path: str, token: str | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def test_standalone_server_serves_every_scrape_fresh_and_stops(runtime, collector):
    server = serve_metrics("127.0.0.1", 0, collector)
    try:
        status, _, body = http_get(server.port, "/metrics")
        assert status == 200
        assert (
            parse(body)[0].get(("inventory_task_stale", lbl(task=IAM_TASK, account=ACCOUNT_A)))
            is None
        )

        runtime.outcomes.record(IAM_TASK, ACCOUNT_A, FAILED, NOW, "x")
        status, _, body = http_get(server.port, "/metrics")
        assert sample(parse(body)[0], "inventory_task_stale", task=IAM_TASK, account=ACCOUNT_A) == 1
    finally:
        server.stop()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        http_get(server.port, "/metrics")


def test_standalone_server_with_redis_down_answers_200_up_zero(runtime):
    collector = InventoryCollector(dead_redis(), runtime.keys, None, 60)
    server = serve_metrics("127.0.0.1", 0, collector)
    try:
        status, _, body = http_get(server.port, "/metrics")
    finally:
        server.stop()
    assert status == 200
    assert_only_up_zero(parse(body)[0])


def web_settings(env: dict[str, str], **extra: str) -> Settings:
    return load_settings(
        paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"} | extra
    )


@pytest.fixture
def web(env: dict[str, str], runtime: Runtime, collector: InventoryCollector) -> Iterator[Server]:
    readers = Readers(runtime.redis_cache, runtime.outcomes, metrics=collector)
    server = Server(make_app(web_settings(env), readers)).start()
    yield server
    server.stop()


def test_web_metrics_requires_the_bearer_token(web):
    for token, message in ((None, "authentication required"), (WRONG_TOKEN, "invalid token")):
        response = web.get("/metrics", token)
        assert response.status == 401
        assert response.json() == {"error": message, "status": 401}


def test_web_metrics_with_token_is_the_exposition(web, runtime):
    runtime.outcomes.record(IAM_TASK, ACCOUNT_A, OK, NOW - 30)
    response = web.get("/metrics", TOKEN)
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    s = parse(response.body.decode())[0]
    assert sample(s, "inventory_exporter_up") == 1
    assert (
        sample(s, "inventory_task_last_success_age_seconds", task=IAM_TASK, account=ACCOUNT_A) == 30
    )


def test_web_metrics_when_redis_is_down_is_200_up_zero(env, runtime):
    collector = InventoryCollector(dead_redis(), runtime.keys, None, 60)
    readers = Readers(runtime.redis_cache, runtime.outcomes, metrics=collector)
    server = Server(make_app(web_settings(env), readers)).start()
    try:
        response = server.get("/metrics", TOKEN)
    finally:
        server.stop()
    assert response.status == 200
    assert_only_up_zero(parse(response.body.decode())[0])


def test_web_metrics_without_a_collector_is_404(env, runtime):
    server = Server(make_app(web_settings(env), Readers(runtime.redis_cache, runtime.outcomes)))
    server.start()
    try:
        unauthenticated = server.get("/metrics")
        response = server.get("/metrics", TOKEN)
    finally:
        server.stop()
    assert unauthenticated.status == 401
    assert response.status == 404
    assert response.json() == {"error": "metrics are not enabled", "status": 404}


# --- build_collector from settings -------------------------------------------------------------


def test_build_collector_reads_the_settings_broker_and_per_task_thresholds(env, runtime, broker):
    settings = load_settings(
        paths=[],
        environ=env
        | {
            "INVENTORY_METRICS__STALE_AFTER_SECONDS": "3000",
            "INVENTORY_SCHEDULE__CACHE_POLICY_REQUESTS__ENABLED": "false",
            "INVENTORY_SCHEDULE__CACHE_CLOUD_ACCOUNT_MAPPING__CRONTAB": "0 9 * * 1-5",
        },
    )
    thresholds = task_thresholds(settings)
    assert thresholds["get_iam_role_limit"] == 2 * 86400
    assert thresholds["cache_iam_resources_across_accounts"] == 2 * 2700
    assert thresholds[IAM_TASK] == 2 * 2700
    assert thresholds["cache_sqs_queues_for_account"] == 2 * 2700
    assert thresholds["report_celery_last_success_metrics"] == 3000  # the floor
    assert thresholds["cache_cloud_account_mapping"] == 2 * 3 * 86400  # Friday -> Monday
    assert "cache_policy_requests" not in thresholds

    collector = build_collector(runtime, settings)
    broker.lpush("maintenance", "m")
    runtime.outcomes.record("cache_policy_requests", None, OK, time.time() - 3500)

    s = scrape(collector)

    assert named(s, "inventory_queue_length") == {
        lbl(queue=q): int(q == "maintenance") for q in QUEUES
    }
    assert (
        sample(s, "inventory_task_stale", task="cache_policy_requests", account=ALL_ACCOUNTS) == 1
    )


def test_build_collector_reads_an_amqp_broker_through_kombu(env, runtime):
    settings = load_settings(
        paths=[], environ=env | {"INVENTORY_CELERY__BROKER_URL": "amqp://guest@127.0.0.1:1//"}
    )
    collector = build_collector(runtime, settings)
    assert isinstance(collector.broker, BrokerQueues)
    assert collector.broker.names == list(QUEUES)
    assert collector.broker.connect().transport.driver_type == "amqp"


# --- the alert rules ---------------------------------------------------------------------------


PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers not followed by '(' nor PromQL words."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if match.group(2) is None and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture
def exported_names(runtime, collector, broker) -> set[str]:
    """Every name a full scrape exposes, with each family holding samples."""
    out = runtime.outcomes
    out.record(IAM_TASK, ACCOUNT_A, OK, NOW - 10)
    out.record(IAM_TASK, ACCOUNT_A, FAILED, NOW - 5, "x")
    out.record_runtime(IAM_TASK, 3)
    broker.lpush("aws", "m")
    runtime.redis.set(runtime.keys.beat_last_tick(), NOW)
    runtime.redis.set(runtime.keys.beat_leader(), "h:1")
    runtime.redis.hset(runtime.keys.last_success_gauge(), IAM_TASK, 10)
    runtime.redis.hincrby(runtime.keys.rejected_messages(), "unsigned", 1)
    records = [transform_role_limit({"Roles": 1, "RolesQuota": 1000}, ACCOUNT_A)]
    runtime.store.replace_partition(IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL, records, complete=True)
    counts = {"severity": {"critical": 1}, "category": {"public_access": 1}}
    FindingsState(runtime.redis, runtime.keys).set_subject_keys(ACCOUNT_A, {}, counts)
    runtime.event_ledger.consumer_polled("h:2", NOW - 5, NOW - 3600)
    text = render(collector).decode()
    samples, names = parse(text)
    families_without_samples = {
        f.name for f in text_string_to_metric_families(text) if not f.samples
    }
    assert families_without_samples == set()
    return names


def test_metric_name_parser():
    expr = (
        'sum by (task) (rate(a_total{outcome="failed", x=~"b|c"}[30m])) / on (task) '
        "b_metric > 0.2 unless on () (absent(c:rule) and time() - d_seconds > 300)"
    )
    assert metric_names(expr) == {"a_total", "b_metric", "c:rule", "d_seconds"}


def test_every_rule_is_complete_and_uses_only_exported_metrics(exported_names):
    rules = load_rules()
    assert {r["alert"] for r in rules} >= {
        "InventoryTaskStale",
        "InventoryAccountStale",
        "InventoryBeatDown",
        "InventoryTaskFailureRate",
        "InventoryExporterDown",
        "InventoryIamRoleQuotaHigh",
        "InventoryCriticalFindings",
        "InventoryEventConsumerStalled",
    }
    for rule in rules:
        assert rule.get("alert"), rule
        assert rule.get("expr"), rule
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for"))), rule
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, rule
        assert rule.get("annotations", {}).get("summary"), rule
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported_names, f"{rule['alert']}: not exported: {used - exported_names}"


def test_metrics_doc_names_every_exported_metric(exported_names):
    doc = (ROOT / "docs" / "metrics.md").read_text()
    for name in exported_names:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert f"`{family}" in doc, name


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


@needs_promtool
def test_promtool_checks_the_rules():
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Unit tests of the rules' logic; annotations are dropped from the copy under test, as
# promtool would otherwise need every rendered text spelled out.
RULE_TESTS = """
evaluation_interval: 1m
rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - {series: 'inventory_task_stale{task="a",account="1"}', values: '1x40'}
      - {series: 'inventory_task_stale{task="a",account="2"}', values: '1x40'}
      - {series: 'inventory_task_stale{task="b",account="1"}', values: '1x40'}
      - {series: 'inventory_task_stale{task="b",account="2"}', values: '0x40'}
      - {series: 'inventory_task_stale{task="c",account="all"}', values: '1x40'}
      - {series: 'inventory_task_stale{task="d",account="1"}', values: '1x10 0x30'}
      - {series: 'inventory_beat_last_tick_timestamp_seconds', values: '0+60x40'}
      - {series: 'inventory_exporter_up{instance="x"}', values: '1x40'}
    alert_rule_test:
      - eval_time: 20m
        alertname: InventoryTaskStale
        exp_alerts:
          - exp_labels: {severity: critical, task: a}
          - exp_labels: {severity: critical, task: c}
      - eval_time: 20m
        alertname: InventoryAccountStale
        exp_alerts:
          - exp_labels: {severity: warning, task: b, account: "1"}
      - eval_time: 20m
        alertname: InventoryBeatDown
        exp_alerts: []
      - eval_time: 20m
        alertname: InventoryExporterDown
        exp_alerts: []
  - interval: 1m
    input_series:
      - {series: 'inventory_beat_last_tick_timestamp_seconds{instance="x"}', values: '0x40'}
      - {series: 'inventory_exporter_up{instance="x"}', values: '0x40'}
    alert_rule_test:
      - eval_time: 5m
        alertname: InventoryBeatDown
        exp_alerts: []
      - eval_time: 15m
        alertname: InventoryBeatDown
        exp_alerts: [{exp_labels: {severity: critical}}]
      - eval_time: 15m
        alertname: InventoryExporterDown
        exp_alerts: [{exp_labels: {severity: critical, instance: x}}]
  - interval: 1m
    input_series:
      - {series: 'inventory_exporter_up{instance="x"}', values: '1x40'}
    alert_rule_test:
      - eval_time: 15m
        alertname: InventoryBeatDown
        exp_alerts: [{exp_labels: {severity: critical}}]
  - interval: 1m
    input_series:
      - {series: 'inventory_iam_role_quota_ratio{account="1"}', values: '0.95x40'}
      - {series: 'inventory_iam_role_quota_ratio{account="2"}', values: '0.5x40'}
    alert_rule_test:
      - eval_time: 20m
        alertname: InventoryIamRoleQuotaHigh
        exp_alerts: [{exp_labels: {severity: warning, account: "1"}}]
      - eval_time: 20m
        alertname: InventoryExporterDown
        exp_alerts: [{exp_labels: {severity: critical}}]
  - interval: 1m
    input_series:
      - {series: 'inventory_task_outcomes_total{task="t",outcome="ok"}', values: '0+1x60'}
      - {series: 'inventory_task_outcomes_total{task="t",outcome="failed"}', values: '0+1x60'}
      - {series: 'inventory_task_outcomes_total{task="u",outcome="ok"}', values: '0+5x60'}
      - {series: 'inventory_task_outcomes_total{task="u",outcome="failed"}', values: '0x60'}
      - {series: 'inventory_task_outcomes_total{task="u",outcome="retry"}', values: '0+50x60'}
      - {series: 'inventory_task_outcomes_total{task="v",outcome="ok"}', values: '0+9x60'}
      - {series: 'inventory_task_outcomes_total{task="v",outcome="failed"}', values: '0+1x60'}
    alert_rule_test:
      - eval_time: 40m
        alertname: InventoryTaskFailureRate
        exp_alerts: [{exp_labels: {severity: warning, task: t}}]
  - interval: 1m
    input_series:
      - {series: 'inventory_findings{account="1",severity="critical"}', values: '2x60'}
      - {series: 'inventory_findings{account="1",severity="high"}', values: '5x60'}
      - {series: 'inventory_findings{account="2",severity="critical"}', values: '0x60'}
      - {series: 'inventory_findings{account="2",severity="high"}', values: '9x60'}
      - {series: 'inventory_findings{account="3",severity="critical"}', values: '1x10 0x50'}
      - {series: 'inventory_exporter_up', values: '1x60'}
      - {series: 'inventory_beat_last_tick_timestamp_seconds', values: '0+60x60'}
    alert_rule_test:
      - eval_time: 20m
        alertname: InventoryCriticalFindings
        exp_alerts: []
      - eval_time: 45m
        alertname: InventoryCriticalFindings
        exp_alerts: [{exp_labels: {severity: warning, account: "1"}}]
  # Two consumers: one killed at 10m (its heartbeat stays), the other polling: no alert.
  # Then the one left stalls at 30m: the alert fires 2 minutes later plus its 5 minutes.
  - interval: 1m
    input_series:
      - series: 'inventory_event_consumer_last_poll_timestamp_seconds{consumer="a:1"}'
        values: '0+60x10 600x50'
      - series: 'inventory_event_consumer_last_poll_timestamp_seconds{consumer="b:2"}'
        values: '0+60x30 1800x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: InventoryEventConsumerStalled
        exp_alerts: []
      - eval_time: 36m
        alertname: InventoryEventConsumerStalled
        exp_alerts: []
      - eval_time: 38m
        alertname: InventoryEventConsumerStalled
        exp_alerts: [{exp_labels: {severity: warning}}]
"""


@needs_promtool
def test_promtool_unit_tests_of_the_rules(tmp_path):
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(document))
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_finding_counts_by_account_and_severity_from_the_last_analysis(runtime, collector):
    state = FindingsState(runtime.redis, runtime.keys)
    state.set_subject_keys(ACCOUNT_A, {}, {"severity": {"critical": 2, "low": 7}, "category": {}})
    state.set_subject_keys("222222222222", {}, {"severity": {}, "category": {}})
    samples, _ = parse(render(collector).decode())
    found = {
        (dict(labels)["account"], dict(labels)["severity"]): value
        for (name, labels), value in samples.items()
        if name == "inventory_findings"
    }
    assert found == {
        (ACCOUNT_A, "critical"): 2.0,
        (ACCOUNT_A, "high"): 0.0,
        (ACCOUNT_A, "medium"): 0.0,
        (ACCOUNT_A, "low"): 7.0,
        ("222222222222", "critical"): 0.0,
        ("222222222222", "high"): 0.0,
        ("222222222222", "medium"): 0.0,
        ("222222222222", "low"): 0.0,
    }


def test_event_consumers_and_counters(runtime, collector):
    ledger = runtime.event_ledger
    ledger.consumer_polled("host:1", NOW - 10, NOW - 3600)
    ledger.consumer_polled("host:2", NOW - 61, NOW - 3600)  # killed a minute ago
    ledger.consumer_polled("host:3", NOW - 20, NOW - 3600)
    ledger.consumer_stopped("host:3")  # stopped on purpose: gone at once
    ledger.count({"received": 7, "dropped|duplicate": 2, "dropped|not_a_change": 1})
    ledger.record({}, [3.0], {"applied": 4, "dropped|stale": 1})

    samples, _ = parse(render(collector).decode())

    assert sample(samples, "inventory_event_consumers_up") == 1
    assert named(samples, "inventory_event_consumer_last_poll_timestamp_seconds") == {
        lbl(consumer="host:1"): NOW - 10,
        lbl(consumer="host:2"): NOW - 61,
    }
    assert sample(samples, "inventory_event_messages_received_total") == 7
    assert sample(samples, "inventory_events_applied_total") == 4
    assert named(samples, "inventory_events_dropped_total") == {
        lbl(reason="not_a_change"): 1,
        lbl(reason="duplicate"): 2,
        lbl(reason="not_synced"): 0,
        lbl(reason="stale"): 1,
    }
