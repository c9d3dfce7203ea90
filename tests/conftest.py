"""Fixtures: a real redis-server and moto server per session, clean state per test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import celery
import pytest
import redis

from inventory.demo.seed import MANAGEMENT_ACCOUNT, SPOKE_ROLE
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from tests import isolation
from tests.servers import MotoServer, RedisServer

BROKER_DB, RESULTS_DB, CACHE_DB = 0, 1, 2
#: CI sets TESTS_STRICT=1: a test that skips (no chromium, no promtool...) fails the run.
STRICT = os.environ.get("TESTS_STRICT") == "1"
BUCKET = "inventory-snapshots"

# Credentials for moto only; set before any boto3 session exists.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)
# 4xx answers are what many web tests expect; keep Tornado's access log out of the output.
logging.getLogger("tornado.access").setLevel(logging.ERROR)
for name in [n for n in os.environ if n.startswith("INVENTORY_")]:
    del os.environ[name]
# redis-py adds its "push_response" logger the first time any client reads a push message:
# done here, once, so that library set-up is not reported as a change made by some test.
redis.utils._set_info_logger()
# Celery creates its fallback default app the first time anything reads current_app (a crontab
# does): done here too, so that lazy set-up is part of the baseline every test starts from.
celery.current_app._get_current_object()


def _skipped(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """No silent skips: how many tests did not run, and why, as the last thing printed."""
    skipped = _skipped(config)
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section(f"{len(skipped)} TESTS SKIPPED: they did not run", sep="!", red=True)
    for reason, count in sorted(reasons.items(), key=lambda r: -r[1]):
        terminalreporter.write_line(f"{count:5d}  {reason}", red=True)
    if STRICT:
        terminalreporter.write_line("TESTS_STRICT=1: a skipped test fails the run", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if STRICT and exitstatus == 0 and _skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _leaves_process_state_alone() -> Iterator[None]:
    """Fail a test that changes process-global state (see tests/isolation.py), then undo it."""
    before = isolation.snapshot()
    yield
    leaked = isolation.leaks(before)
    if leaked:
        pytest.fail("test changed process-global state: " + "; ".join(leaked), pytrace=False)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    # Without AWS managed policies: loading them costs seconds for every new account.
    server = MotoServer().start()
    yield server
    server.stop()


def inventory_env(
    redis_server: RedisServer, moto_server: MotoServer, **extra: str
) -> dict[str, str]:
    """INVENTORY_* variables that point every part of the service at the test servers."""
    env = {
        "INVENTORY_CELERY__BROKER_URL": redis_server.url(BROKER_DB),
        "INVENTORY_CELERY__RESULT_BACKEND": redis_server.url(RESULTS_DB),
        "INVENTORY_REDIS__URL": redis_server.url(CACHE_DB),
        "INVENTORY_AWS__ENDPOINT_URL": moto_server.url,
        "INVENTORY_AWS__ROLE_NAME": SPOKE_ROLE,
        "INVENTORY_AWS__REGIONS": "[us-east-1, us-west-2]",
        "INVENTORY_ACTIVE_REGION": "us-east-1",
        "INVENTORY_REGION": "us-east-1",
        "INVENTORY_ACCOUNTS__ORGANIZATIONS__ENABLED": "true",
        "INVENTORY_ACCOUNTS__ORGANIZATIONS__MANAGEMENT_ACCOUNT_ID": MANAGEMENT_ACCOUNT,
        "INVENTORY_S3__BUCKET": BUCKET,
        "INVENTORY_DYNAMODB__TABLE_PREFIX": "test_",
    }
    env.update(extra)
    return env


@pytest.fixture
def env(redis_server: RedisServer, moto_server: MotoServer) -> dict[str, str]:
    return inventory_env(redis_server, moto_server)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(paths=[], environ=env)


@pytest.fixture
def clean(redis_server: RedisServer, moto_server: MotoServer) -> None:
    """Empty moto and every Redis database before the test."""
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()


@pytest.fixture
def runtime(settings: Settings, clean: None) -> Runtime:
    """A fresh Runtime over clean servers, with its tables and snapshot bucket created."""
    rt = Runtime(settings)
    rt.ensure_tables()
    s3 = rt.aws.hub_client("s3", "us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return rt


@pytest.fixture
def tmp_config(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "inventory.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def start_worker(tmp_path: Path):
    """Start a real `inventory worker` (prefork, 2 processes) with the given environment."""
    from tests.processes import Worker

    workers: list[Worker] = []

    def start(env: dict[str, str], concurrency: int = 2) -> Worker:
        worker = Worker(env, tmp_path / f"worker{len(workers)}.log", concurrency).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
