"""The Grafana dashboard: up to date with its generator, and every panel's query answered by a
real Prometheus (Debian's `prometheus`) scraping a live exporter that reads real data."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inventory.aws.limits import transform_role_limit
from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, IAM_ROLE_LIMIT
from inventory.celery_app import QUEUES, create_app
from inventory.exporter import MetricsServer, build_collector, serve_metrics
from inventory.metrics import FAILED, OK
from inventory.runtime import Runtime
from tests.servers import free_port, wait_started

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
PROMETHEUS = shutil.which("prometheus")
IAM_TASK = "cache_iam_resources_for_account"
FRESH, STALE = "111111111111", "222222222222"
LEADER = "beat-host:4242"
#: Grafana fills these in; the test stands in "every value" and a window of many scrapes.
VARIABLES = {"$task": ".*", "$account": ".*", "$__rate_interval": "20s"}


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "docs" / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def panel_queries() -> dict[str, list[str]]:
    """Panel title -> its PromQL expressions, from the JSON an operator imports."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        p["title"]: [t["expr"] for t in p["targets"]]
        for p in dashboard["panels"]
        if p.get("targets")
    }


def test_the_dashboard_json_is_what_the_generator_makes():
    assert DASHBOARD.read_text() == generator().render(), (
        "docs/grafana-dashboard.json is out of date: "
        ".venv/bin/python docs/dashboard.py > docs/grafana-dashboard.json"
    )


def test_the_dashboard_covers_what_operators_watch():
    text = " ".join(q for queries in panel_queries().values() for q in queries)
    for metric in (
        "inventory_task_last_success_age_seconds",  # freshness per task and account
        "inventory_task_stale",  # stale accounts
        "inventory_queue_length",
        "inventory_task_outcomes_total",  # failures
        "inventory_task_runtime_seconds_bucket",
        "inventory_event_lag_seconds_bucket",
        "inventory_iam_role_quota_ratio",
        "inventory_beat_leader_info",
    ):
        assert metric in text, metric


# --- a live Prometheus against a live exporter -------------------------------------------------


class Prometheus:
    """Debian's prometheus scraping one target every second, on a free local port."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: inventory\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.proc = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "prometheus.log").open("wb"),
        )
        wait_started(lambda: self.get("/-/ready") is not None, "prometheus", self.proc)

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.startswith(b"{") else body

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def scrapes(prometheus: Prometheus) -> float:
    """How many samples of `up` Prometheus holds for the exporter."""
    result = prometheus.query('count_over_time(up{job="inventory"}[5m])')
    return float(result[0]["value"][1]) if result else 0.0


def wait_for_scrapes(prometheus: Prometheus, more: int) -> None:
    start = scrapes(prometheus)
    deadline = time.monotonic() + 60
    while scrapes(prometheus) < start + more:
        assert time.monotonic() < deadline, f"prometheus did not scrape {more} more times"
        time.sleep(0.3)


def record_activity(runtime: Runtime, now: float) -> None:
    """What workers write as they run: outcomes, runtimes, event lags."""
    out = runtime.outcomes
    out.record(IAM_TASK, FRESH, OK, now - 30)
    out.record(IAM_TASK, STALE, FAILED, now - 20, "AccessDenied")
    for seconds in (0.4, 3.0, 12.0):
        out.record_runtime(IAM_TASK, seconds)
    pipe = runtime.redis.pipeline()
    for bound in (5, 10, 30, 60):  # one event 4.2 s after its CloudTrail time
        pipe.hincrby(runtime.keys.event_lag(), f"{bound:g}", 1)
    pipe.hincrby(runtime.keys.event_lag(), "+Inf", 1)
    pipe.hincrbyfloat(runtime.keys.event_lag(), "sum", 4.2)
    pipe.execute()


@pytest.fixture
def exporter(runtime: Runtime) -> Iterator[MetricsServer]:
    server = serve_metrics("127.0.0.1", 0, build_collector(runtime, runtime.settings))
    yield server
    server.stop()


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (scripts/system-deps)")
def test_every_panel_query_returns_series_from_a_live_exporter(runtime, exporter, tmp_path):
    now = time.time()
    runtime.outcomes.record(IAM_TASK, STALE, OK, now - 30 * 86400)  # succeeded a month ago
    record_activity(runtime, now)
    limits = [transform_role_limit({"Roles": 950, "RolesQuota": 1000}, FRESH)]
    runtime.store.replace_partition(IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL, limits, complete=True)
    runtime.redis.set(runtime.keys.beat_last_tick(), now)
    runtime.redis.set(runtime.keys.beat_leader(), LEADER)
    app = create_app(runtime.settings)
    for _ in range(3):
        app.send_task("inventory.cache_policy_requests")  # no worker: they wait in the queue

    prometheus = Prometheus(tmp_path, f"127.0.0.1:{exporter.port}")
    try:
        wait_for_scrapes(prometheus, 3)
        record_activity(runtime, time.time())  # counters move between scrapes: rates are real
        wait_for_scrapes(prometheus, 3)
        answers = {
            (title, expr): prometheus.query(_fill(expr))
            for title, queries in panel_queries().items()
            for expr in queries
        }
        labels = {
            name: prometheus.get(f"/api/v1/label/{name}/values?match[]=inventory_task_stale")[
                "data"
            ]
            for name in ("task", "account")
        }
    finally:
        prometheus.stop()

    empty = [key for key, result in answers.items() if not result]
    assert empty == [], f"panels whose query returned no series: {empty}"
    by_title = {title: result for (title, _), result in answers.items()}
    assert labels == {"task": [IAM_TASK], "account": [FRESH, STALE]}
    queues = {r["metric"]["queue"]: float(r["value"][1]) for r in by_title["Queue lengths"]}
    assert queues == {q: 3.0 * (q == "maintenance") for q in QUEUES}
    stale = by_title["Stale accounts (task, account, seconds since last success)"]
    assert [(r["metric"]["task"], r["metric"]["account"]) for r in stale] == [(IAM_TASK, STALE)]
    assert float(stale[0]["value"][1]) >= 30 * 86400
    (pairs,) = by_title["Stale task/account pairs"]
    assert float(pairs["value"][1]) == 1
    (failures,) = by_title["Task failures (final) per interval"]
    assert failures["metric"] == {"task": IAM_TASK} and float(failures["value"][1]) > 0
    (leader,) = by_title["Beat leader"]
    assert leader["metric"] == {"leader": LEADER}
    (quota,) = by_title["IAM role quota used"]
    assert (quota["metric"], float(quota["value"][1])) == ({"account": FRESH}, 0.95)
    lag = answers[("Change-event lag p50 / p95 (CloudTrail event to cache)", _lag_p95())]
    assert 0 < float(lag[0]["value"][1]) <= 5  # the 4.2 s events fall in the (2, 5] bucket


def _fill(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _lag_p95() -> str:
    (expr,) = [
        q
        for q in panel_queries()["Change-event lag p50 / p95 (CloudTrail event to cache)"]
        if q.startswith("histogram_quantile(0.95")
    ]
    return expr
