"""Workers and beat log JSON with task context, mask secrets and report to Sentry however they
are started: `inventory worker` or `celery -A inventory.celery_app:app worker` (same for beat).

The real processes run against a Redis that requires a password with ``@`` and ``:`` in it,
written raw in every URL, so a partly masked URL would show a piece of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from inventory import celery_signals
from inventory.demo.seed import Seeder, demo_account
from inventory.tasks.accounts import store_account_mapping
from tests.conftest import inventory_env
from tests.processes import Beat, Worker
from tests.servers import MotoServer, RedisServer
from tests.test_observability import Sink
from tests.test_operations import only_metrics_entry

PASSWORD = "xK9q@vT7w:Lm3z"
FRAGMENTS = ("xK9q", "vT7w", "Lm3z")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("locked-redis"), password=PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture
def env(locked_redis: RedisServer, moto_server: MotoServer) -> dict[str, str]:
    """Every part of the service on the password-protected Redis; logs as JSON."""
    redis.Redis(port=locked_redis.port, password=PASSWORD).flushall()
    return inventory_env(locked_redis, moto_server, INVENTORY_LOGGING__FORMAT="json")


def json_lines(text: str) -> list[dict]:
    """Every line of a log, each of which must be one JSON object."""
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return parsed


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{fragment!r} leaked: {text[:2000]}"


def masked_url(server: RedisServer, db: int) -> str:
    return f"redis://:***@127.0.0.1:{server.port}/{db}"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["inventory", "celery"])
def test_worker_logs_json_with_task_context_reports_to_sentry_and_never_shows_a_secret(
    launcher, env, runtime, moto_server, locked_redis, tmp_path
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)
    sink = Sink()
    worker_env = env | {
        "INVENTORY_SENTRY__DSN": sink.dsn,
        "INVENTORY_CLOUDTRAIL__SOURCE": "tests.plugins.cloudtrail_source:leaky",
    }
    worker = Worker(worker_env, tmp_path / "worker.out", concurrency=1, launcher=launcher)
    worker.stderr_path = tmp_path / "worker.err"
    try:
        worker.start()
        ok = worker.app.send_task("inventory.cache_sqs_queues_for_account", args=[dev.id])
        ok.get(timeout=60)
        failed = worker.app.send_task("inventory.cache_cloudtrail_errors_by_arn")
        failed.get(timeout=60, propagate=False)
        deadline = time.monotonic() + 30
        while "cannot reach" not in sink.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        worker.stop()
        sink.close()

    lines = json_lines(worker.stderr())
    started = [x["message"] for x in lines if x["message"].startswith("inventory worker started")]
    assert started == [
        f"inventory worker started: broker {masked_url(locked_redis, 0)}, result backend "
        f"{masked_url(locked_redis, 1)}, cache {masked_url(locked_redis, 2)}, beat store "
        f"{masked_url(locked_redis, 0)}"
    ]
    # `inventory worker` starts without mingle's one-second wait; Celery's own command mingles.
    assert any(x["message"].startswith("mingle:") for x in lines) == (launcher == "celery")
    stored = [x for x in lines if x["message"].startswith("stored sqs_queue")]
    assert {(x["task"], x["task_id"], x["account_id"], x["region"]) for x in stored} == {
        ("inventory.cache_sqs_queues_for_account", ok.id, dev.id, region)
        for region in ("us-east-1", "us-west-2")
    }
    leaked = [x for x in lines if x["message"].startswith("leaky plugin")]
    assert [(x["message"], x["task_id"]) for x in leaked] == [
        (f"leaky plugin: cannot use {masked_url(locked_redis, 2)}", failed.id)
    ]
    assert any(
        f"cannot reach {masked_url(locked_redis, 2)}" in x.get("exception", "") for x in lines
    )
    assert "cannot reach" in sink.text()
    assert '"component":"worker"' in sink.text().replace(" ", "")
    assert_no_secret(worker.stderr(), worker.log(), sink.text())


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["inventory", "celery"])
def test_beat_logs_json_and_never_shows_a_secret(launcher, env, locked_redis, tmp_path):
    quick = {
        "INVENTORY_SCHEDULE": only_metrics_entry(),  # one entry, due every few seconds
        "INVENTORY_BEAT__MAX_LOOP_INTERVAL": "1",
        "INVENTORY_BEAT__LOCK_TIMEOUT": "6",
    }
    beat = Beat(env | quick, tmp_path / "beat.out", tmp_path, launcher=launcher)
    beat.stderr_path = tmp_path / "beat.err"
    try:
        beat.start()
        deadline = time.monotonic() + 60
        while "Sending due task" not in beat.stderr() and time.monotonic() < deadline:
            assert beat.proc is not None and beat.proc.poll() is None, beat.log() + beat.stderr()
            time.sleep(0.2)
    finally:
        beat.stop()

    lines = json_lines(beat.stderr())
    started = [x["message"] for x in lines if x["message"].startswith("inventory beat started")]
    assert started == [
        f"inventory beat started: broker {masked_url(locked_redis, 0)}, result backend "
        f"{masked_url(locked_redis, 1)}, cache {masked_url(locked_redis, 2)}, beat store "
        f"{masked_url(locked_redis, 0)}"
    ]
    sent = [x for x in lines if x["message"].startswith("Scheduler: Sending due task")]
    assert sent and {x["logger"] for x in sent} == {"celery.beat"}
    assert_no_secret(beat.stderr(), beat.log())


# --- the receivers themselves ------------------------------------------------------------

FOREIGN_APP = """
import json, logging, sys
from celery import Celery
import inventory.celery_app

inventory.celery_app.app  # what `celery -A inventory.celery_app` does: our receivers connect
app = inventory.celery_app.app if sys.argv[1] == "ours" else Celery("other", set_as_current=True)
app.log.setup(loglevel="INFO")
print(json.dumps([type(h.formatter).__name__ for h in logging.getLogger().handlers]))
"""


@pytest.mark.parametrize(
    ("which", "formatters"), [("ours", ["JsonFormatter"]), ("other", ["ColorFormatter"])]
)
def test_receivers_configure_logs_for_our_app_only(which, formatters):
    """In a process where our receivers are connected, another app's logs are Celery's own."""
    result = subprocess.run(
        [sys.executable, "-c", FOREIGN_APP, which],
        env={**os.environ, "INVENTORY_CONFIG": "", "INVENTORY_LOGGING__FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == formatters


def test_connecting_twice_adds_each_receiver_once_and_disconnect_removes_them():
    def ours(signal: object, receiver: object) -> int:
        uid = celery_signals._uid(receiver)
        return sum(1 for key, _ in signal.receivers if key[0] == uid)  # type: ignore[attr-defined]

    before = {receiver: list(signal.receivers) for signal, receiver in celery_signals.RECEIVERS}
    count = len(celery_signals.RECEIVERS)
    was_connected = any(ours(s, r) for s, r in celery_signals.RECEIVERS)
    try:
        celery_signals.connect()
        celery_signals.connect()
        assert [ours(s, r) for s, r in celery_signals.RECEIVERS] == [1] * count
        celery_signals.disconnect()
        assert [ours(s, r) for s, r in celery_signals.RECEIVERS] == [0] * count
    finally:
        celery_signals.disconnect()
        if was_connected:
            celery_signals.connect()
    assert {r: list(s.receivers) for s, r in celery_signals.RECEIVERS} == before
