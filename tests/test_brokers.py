"""Every broker end to end: a real worker on Amazon SQS (moto server) and on RabbitMQ.

Each test sends real task messages, reads the queue lengths the exporter would export from the
broker itself, and has a real `inventory worker` consume them. RabbitMQ is the machine's own on
127.0.0.1:5672: without it those tests skip and say why (TESTS_STRICT=1 turns that into a
failure).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError

from inventory.brokers import BrokerQueues, broker_queues
from inventory.celery_app import QUEUES, create_app
from inventory.exporter import build_collector, render
from inventory.metrics import OK
from inventory.runtime import Runtime
from inventory.settings import load_settings
from tests.conftest import inventory_env
from tests.processes import Worker
from tests.servers import free_port
from tests.test_cli import run_cli
from tests.test_exporter import named, parse

REPORT = "inventory.report_celery_last_success_metrics"
BROKER = "INVENTORY_CELERY__BROKER_URL"
RABBITMQ = ("127.0.0.1", 5672)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout}s")


def exported_queue_lengths(runtime: Runtime, env: dict[str, str]) -> dict[str, float]:
    """inventory_queue_length as the exporter built from these settings exposes it."""
    collector = build_collector(runtime, load_settings(paths=[], environ=env))
    samples = parse(render(collector).decode())[0]
    return {
        dict(labels)["queue"]: v for labels, v in named(samples, "inventory_queue_length").items()
    }


def run_a_worker_on(env: dict[str, str], runtime: Runtime, tmp_path: Path) -> None:
    """Queue two messages with no worker, see them counted, then a worker runs them all."""
    app = create_app(load_settings(paths=[], environ=env))
    runtime.outcomes.record("get_iam_role_limit", "111111111111", OK, time.time() - 42)
    assert exported_queue_lengths(runtime, env) == dict.fromkeys(QUEUES, 0)

    queued = [app.send_task(REPORT) for _ in range(2)]

    assert exported_queue_lengths(runtime, env) == {q: 2 * (q == "metrics") for q in QUEUES}
    worker = Worker(env, tmp_path / "worker.log", concurrency=1).start()
    try:
        results = [*queued, app.send_task(REPORT)]
        ages = [r.get(timeout=60) for r in results]
        wait_for(
            lambda: exported_queue_lengths(runtime, env) == dict.fromkeys(QUEUES, 0),
            "the metrics queue did not drain",
        )
    finally:
        worker.stop()
    assert all(r.successful() for r in results)
    for reported in ages:
        assert 42 <= reported["get_iam_role_limit"]["111111111111"] < 100
    assert runtime.outcomes.counts()[("report_celery_last_success_metrics", "all", OK)] == 3


def test_queue_lengths_read_again_after_a_broker_error(env, clean, redis_server):
    live = broker_queues(load_settings(paths=[], environ=env))
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    dead = broker_queues(load_settings(paths=[], environ=env | {BROKER: dead_url}))
    connections = [dead.connect, live.connect]
    reader = BrokerQueues(lambda: connections.pop(0)(), live.queues)

    with pytest.raises(OperationalError):
        reader.lengths()
    app = create_app(load_settings(paths=[], environ=env))
    app.send_task(REPORT)

    assert reader.lengths() == {q: int(q == "metrics") for q in QUEUES}
    assert reader.lengths() == {q: int(q == "metrics") for q in QUEUES}  # the same connection
    assert connections == []


# --- Amazon SQS (moto server) ------------------------------------------------------------------


@pytest.fixture
def sqs_env(env: dict[str, str], moto_server) -> dict[str, str]:
    """The broker is SQS on the moto server: queues under a prefix of this test's own."""
    return env | {
        "INVENTORY_CELERY__BROKER_URL": f"sqs://127.0.0.1:{moto_server.port}",
        "INVENTORY_CELERY__SQS__IS_SECURE": "false",
        "INVENTORY_CELERY__SQS__QUEUE_NAME_PREFIX": f"t{uuid.uuid4().hex[:8]}-",
        "INVENTORY_CELERY__SQS__WAIT_TIME_SECONDS": "1",
        "INVENTORY_CELERY__SQS__POLLING_INTERVAL": "0.2",
    }


def test_a_worker_on_sqs_runs_tasks_and_queue_lengths_are_exported(sqs_env, runtime, tmp_path):
    run_a_worker_on(sqs_env, runtime, tmp_path)


def test_sqs_broker_queues_carry_the_prefix_and_the_visibility_timeout(sqs_env, runtime):
    settings = load_settings(paths=[], environ=sqs_env)
    broker_queues(settings).lengths()  # declares the queues, as a worker would

    sqs = runtime.aws.hub_client("sqs", "us-east-1")
    prefix = settings.celery.sqs.queue_name_prefix
    urls = sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]
    assert {u.rsplit("/", 1)[1] for u in urls} == {f"{prefix}{q}" for q in QUEUES}
    attributes = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == str(settings.celery.visibility_timeout)


def test_sqs_worker_sends_no_events_and_needs_no_ping(sqs_env):
    app = create_app(load_settings(paths=[], environ=sqs_env))
    assert app.conf.worker_send_task_events is False
    assert app.conf.task_send_sent_event is False
    assert app.connection_for_read().supports_exchange_type("fanout") is False


def test_a_worker_heartbeat_makes_inventory_health_pass_without_the_broker(
    sqs_env, runtime, tmp_path
):
    beat_file = tmp_path / "alive"
    env = sqs_env | {
        "INVENTORY_HEALTH__HEARTBEAT_PATH": str(beat_file),
        "INVENTORY_HEALTH__INTERVAL_SECONDS": "1",
        "INVENTORY_HEALTH__MAX_AGE_SECONDS": "5",
    }
    proc, _ = run_cli(["health"], env)
    assert (proc.returncode, proc.stderr) == (1, f"unhealthy: no heartbeat at {beat_file}\n")

    worker = Worker(env, tmp_path / "worker.log", concurrency=1).start()
    try:
        first = beat_file.stat().st_mtime
        wait_for(lambda: beat_file.stat().st_mtime > first + 1.5, "the heartbeat did not move")
        proc, _ = run_cli(["health"], env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("healthy: heartbeat ")
    finally:
        worker.stop()
    stopped = beat_file.stat().st_mtime
    time.sleep(2)
    assert beat_file.stat().st_mtime == stopped  # nothing touches it once the worker is gone
    proc, _ = run_cli(["health", "--max-age", "1"], env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("unhealthy: heartbeat ")


def test_health_without_a_heartbeat_file_setting_exits_2():
    proc, _ = run_cli(["health"], {})
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: health.heartbeat_path is not set (INVENTORY_HEALTH__HEARTBEAT_PATH)\n",
    )


# --- RabbitMQ (the machine's, on 127.0.0.1:5672) -----------------------------------------------


def rabbitmq_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(RABBITMQ) == 0


needs_rabbitmq = pytest.mark.skipif(
    not rabbitmq_up(), reason="RabbitMQ is not listening on 127.0.0.1:5672: amqp:// untested"
)


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """A virtual host of this test's own (rabbitmqctl), so parallel tests share no queue."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl not found: cannot make a virtual host of the test's own")
    vhost = f"inventory-test-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> None:
        subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)

    run("add_vhost", vhost)
    try:
        run("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        run("delete_vhost", vhost)


@needs_rabbitmq
def test_a_worker_on_rabbitmq_runs_tasks_and_queue_lengths_are_exported(
    redis_server, moto_server, runtime, rabbitmq_vhost, tmp_path
):
    env = inventory_env(
        redis_server,
        moto_server,
        INVENTORY_CELERY__BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{rabbitmq_vhost}",
    )
    run_a_worker_on(env, runtime, tmp_path)
