"""Operations proven with real processes: RedBeat leadership, redelivery after SIGKILL, signing."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import redis
from celery.result import AsyncResult

from inventory.cache.keys import IAM_KINDS, Partition
from inventory.demo.seed import Seeder, demo_account
from inventory.runtime import Runtime
from inventory.schedule import SCHEDULE
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from tests.conftest import BROKER_DB, inventory_env
from tests.faultproxy import FaultProxy
from tests.processes import Beat

pytestmark = pytest.mark.slow

TICK, LOCK, EVERY = 1, 6, 4


def only_metrics_entry() -> str:
    """A schedule with every entry off except a cheap one every 10 s on the metrics queue."""
    entries = {e.name: {"enabled": False} for e in SCHEDULE}
    entries["report_celery_last_success_metrics"] = {"enabled": True, "every": EVERY}
    return json.dumps(entries)


def wait_for(check, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@pytest.fixture
def beat_env(env):
    return env | {
        "INVENTORY_SCHEDULE": only_metrics_entry(),
        "INVENTORY_BEAT__MAX_LOOP_INTERVAL": str(TICK),
        "INVENTORY_BEAT__LOCK_TIMEOUT": str(LOCK),
    }


def test_two_beats_dispatch_each_slot_once_and_standby_takes_over(
    beat_env, runtime, redis_server, tmp_path
):
    broker = redis.Redis(port=redis_server.port, db=BROKER_DB)
    beats = [Beat(beat_env, tmp_path / f"beat{i}.log", tmp_path).start() for i in range(2)]
    try:
        wait_for(lambda: runtime.redis.get(runtime.keys.beat_leader()), 30, "a leader")
        started = time.monotonic()
        time.sleep(3.5 * EVERY)
        elapsed = time.monotonic() - started
        sent = broker.llen("metrics")
        # One scheduler: at most one message per slot (+1 for the slot due at start-up).
        assert 1 <= sent <= int(elapsed // EVERY) + 2, sent
        senders = [b for b in beats if "Sending due task" in b.log()]
        assert len(senders) == 1, [b.log()[-2000:] for b in beats]
        leader, standby = senders[0], next(b for b in beats if b is not senders[0])
        assert runtime.redis.get(runtime.keys.beat_leader()).endswith(f":{leader.pid}")

        leader.kill()
        killed = time.monotonic()
        took = wait_for(
            lambda: (runtime.redis.get(runtime.keys.beat_leader()) or "").endswith(
                f":{standby.pid}"
            ),
            LOCK + 10 * TICK + 10,
            "standby takeover",
        )
        assert took <= LOCK + 3 * TICK + 2, took
        before = broker.llen("metrics")
        wait_for(
            lambda: broker.llen("metrics") > before, EVERY + LOCK + 5, "a dispatch by the standby"
        )
        assert "Sending due task" in standby.log()
        assert time.monotonic() - killed < LOCK + EVERY + 10
    finally:
        for b in beats:
            b.stop()


def test_unsafe_lock_timeout_refused_at_start(beat_env, tmp_path):
    import subprocess
    import sys

    env = beat_env | {"INVENTORY_BEAT__LOCK_TIMEOUT": "3", "INVENTORY_BEAT__MAX_LOOP_INTERVAL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "inventory.cli", "beat"],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "lock_timeout (3s) must be at least 2 x max_loop_interval (2s)" in result.stderr


def test_worker_killed_mid_task_is_redelivered_and_cache_written_once(
    runtime, redis_server, moto_server, start_worker, tmp_path
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 1))
    store_account_mapping(runtime)
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            INVENTORY_CELERY__VISIBILITY_TIMEOUT="20",
            INVENTORY_CELERY__RETRY_BACKOFF_MAX="2",
            INVENTORY_CELERY__UNACKED_RESTORE_SECONDS="2",
        )
        # Short limits everywhere, so the 20 s visibility timeout passes the safety check.
        limits = {n: {"soft_time_limit": 10, "time_limit": 15} for n in _all_tasks()}
        env["INVENTORY_CELERY__TASKS"] = json.dumps(limits)
        first = start_worker(env, concurrency=1)
        proxy.slow("GetAccountAuthorizationDetails", 30, times=1)
        result = first.app.send_task("inventory.cache_iam_resources_for_account", args=[dev.id])
        wait_for(lambda: proxy.count("GetAccountAuthorizationDetails") >= 1, 30, "task start")
        first.kill()
        killed, killed_wall = time.monotonic(), time.time()
        assert runtime.redis_cache.items(Partition("iam_role", dev.id)) == {}

        second = start_worker(env, concurrency=1)
        summary = AsyncResult(result.id, app=second.app).get(timeout=150)

        assert time.monotonic() - killed >= 15  # redelivered after the visibility timeout
        listed = sum(p["listed"] for p in summary["partitions"].values())
        assert summary["dynamo_writes"] == listed  # this run wrote everything: nobody before it
        counts = runtime.outcomes.counts()
        assert counts[("cache_iam_resources_for_account", dev.id, "ok")] == 1
        stamps = {
            kind: {
                item.updatedAt
                for item in runtime.dynamo.model(kind).scan()
                if item.accountId == dev.id and item.kind == kind
            }
            for kind in IAM_KINDS
        }
        # Each partition written once, and only by the redelivered run.
        assert all(len(s) == 1 for s in stamps.values()), stamps
        assert min(min(s) for s in stamps.values()) > killed_wall
        assert set(runtime.redis_cache.items(Partition("iam_role", dev.id))) == {
            dev.role_arn(r.name) for r in dev.roles
        } | {dev.role_arn("OrganizationAccountAccessRole")}
    finally:
        proxy.stop()


def _all_tasks() -> set[str]:
    from inventory.schedule import known_task_names

    return known_task_names()


def _self_signed(tmp_path, name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def signing_env(tmp_path) -> tuple[dict[str, str], Path, Path]:
    """Settings for signed messages with a fresh self-signed certificate the store trusts."""
    store = tmp_path / "trusted"
    store.mkdir()
    key, cert = _self_signed(tmp_path, "inventory")
    (store / "inventory.pem").write_bytes(cert.read_bytes())
    env = {
        "INVENTORY_CELERY__SIGNING__ENABLED": "true",
        "INVENTORY_CELERY__SIGNING__KEY": str(key),
        "INVENTORY_CELERY__SIGNING__CERTIFICATE": str(cert),
        "INVENTORY_CELERY__SIGNING__CERT_STORE": str(store),
    }
    return env, key, cert


def test_signed_messages_run_and_unsigned_or_foreign_ones_are_rejected_and_counted(
    env, runtime, start_worker, tmp_path
):
    signing, key, cert = signing_env(tmp_path)
    worker = start_worker(env | signing)
    rejected_key = runtime.keys.rejected_messages()

    signed = worker.app.send_task("inventory.report_celery_last_success_metrics", queue="metrics")
    assert signed.get(timeout=60) == {}

    from inventory.celery_app import create_app

    plain = create_app(load_settings(paths=[], environ=env))
    unsigned = plain.send_task("inventory.cache_policy_requests", queue="maintenance")
    wait_for(lambda: runtime.redis.hgetall(rejected_key), 30, "the refusal")
    assert sum(int(v) for v in runtime.redis.hgetall(rejected_key).values()) == 1

    # Signed with a key whose certificate the worker does not trust: also refused.
    other_key, other_cert = _self_signed(tmp_path, "intruder")
    intruder = create_app(
        load_settings(
            paths=[],
            environ=env
            | signing
            | {
                "INVENTORY_CELERY__SIGNING__KEY": str(other_key),
                "INVENTORY_CELERY__SIGNING__CERTIFICATE": str(other_cert),
            },
        )
    )
    intruder.send_task("inventory.cache_policy_requests", queue="maintenance")
    wait_for(
        lambda: sum(int(v) for v in runtime.redis.hgetall(rejected_key).values()) == 2,
        30,
        "the second refusal",
    )
    assert runtime.redis.hgetall(rejected_key) == {"ContentDisallowed": "1", "DecodeError": "1"}
    time.sleep(2)
    assert not any(s.task == "cache_policy_requests" for s in runtime.outcomes.status())
    assert AsyncResult(unsigned.id, app=plain).state == "PENDING"


def test_rediss_urls_require_certificate_verification():
    import ssl

    from inventory.celery_app import celery_config

    settings = load_settings(
        paths=[],
        environ={
            "INVENTORY_CELERY__BROKER_URL": "rediss://cache.internal:6379/0",
            "INVENTORY_CELERY__RESULT_BACKEND": "rediss://cache.internal:6379/1",
            "INVENTORY_CELERY__TLS__CA_CERTS": "/etc/ssl/certs/ca-certificates.crt",
        },
    )
    config = celery_config(settings)
    expected = {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/ssl/certs/ca-certificates.crt",
    }
    assert config["broker_use_ssl"] == expected
    assert config["redis_backend_use_ssl"] == expected
    assert config["redbeat_redis_options"] == {"ssl": True, **expected}


def test_unsafe_visibility_timeout_is_refused_with_what_to_change():
    from inventory.celery_app import create_app
    from inventory.settings import ConfigError

    with pytest.raises(ConfigError) as exc:
        create_app(load_settings(paths=[], environ={"INVENTORY_CELERY__VISIBILITY_TIMEOUT": "900"}))
    message = str(exc.value)
    assert "celery.visibility_timeout (900s) must exceed the longest hard time limit" in message
    assert "raise visibility_timeout above 1260" in message


def test_runtime_not_touched_before_fork():
    """create_app builds no clients: nothing connects until a task needs it."""
    from inventory.celery_app import create_app

    app = create_app(
        load_settings(paths=[], environ={"INVENTORY_REDIS__URL": "redis://127.0.0.1:1/0"})
    )
    assert isinstance(app.runtime, Runtime)
    assert "redis" not in vars(app.runtime)


def test_metrics_endpoint_shows_the_account_whose_task_failed_as_stale(
    runtime, redis_server, moto_server, start_worker, tmp_path
):
    import subprocess
    import sys
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.servers import free_port

    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev, prod = (seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"]))
    store_account_mapping(runtime)
    proxy = FaultProxy(moto_server.url).start()
    port = free_port()
    env = inventory_env(
        redis_server,
        moto_server,
        INVENTORY_AWS__ENDPOINT_URL=proxy.url,
        INVENTORY_AWS__MAX_ATTEMPTS="1",
    )
    exporter = subprocess.Popen(
        [sys.executable, "-m", "inventory.cli", "metrics", "--port", str(port)],
        env={**__import__("os").environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        worker = start_worker(env)
        proxy.fail("ListQueues", "AccessDenied", 403, times=1)
        task = "inventory.cache_sqs_queues_for_account"
        worker.app.send_task(task, args=[dev.id]).get(timeout=60, propagate=False)
        worker.app.send_task(task, args=[prod.id]).get(timeout=60)

        def scrape() -> dict[tuple[str, str], float]:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            return {
                (s.labels.get("account", ""), s.name): s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples
                if s.labels.get("task") == "cache_sqs_queues_for_account"
            }

        wait_for(lambda: _up(port), 30, "the exporter")
        samples = scrape()
        assert samples[(dev.id, "inventory_task_stale")] == 1
        assert samples[(prod.id, "inventory_task_stale")] == 0
        assert (dev.id, "inventory_task_last_failure_timestamp_seconds") in samples
        assert (dev.id, "inventory_task_last_success_age_seconds") not in samples
        assert samples[(prod.id, "inventory_task_last_success_age_seconds")] < 60
    finally:
        exporter.terminate()
        exporter.wait(10)
        proxy.stop()


def _up(port: int) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        return True
    except OSError:
        return False


def test_a_fresh_beat_sends_the_derived_entries_at_once_then_on_their_schedule(
    env, runtime, redis_server, tmp_path
):
    """Who may use a role is derived every 5 minutes: a new deployment's beat sends it at its
    first tick (not 5 minutes on), and a restarted beat that has run it waits for its slot."""
    entries = {e.name: {"enabled": False} for e in SCHEDULE}
    entries["cache_credential_authorization_mapping"] = {"enabled": True, "every": 3600}
    entries["cache_policies_table_details"] = {"enabled": True, "every": 3600}  # not at_start
    beat_env = env | {
        "INVENTORY_SCHEDULE": json.dumps(entries),
        "INVENTORY_BEAT__MAX_LOOP_INTERVAL": str(TICK),
        "INVENTORY_BEAT__LOCK_TIMEOUT": str(LOCK),
        # A schedule no other test's beat has stored: this deployment is new.
        "INVENTORY_BEAT__KEY_PREFIX": f"redbeat-at-start-{time.time_ns()}.",
    }
    broker = redis.Redis(port=redis_server.port, db=BROKER_DB)
    broker.delete("maintenance")

    def sent() -> list[str]:
        return [json.loads(m)["headers"]["task"] for m in broker.lrange("maintenance", 0, -1)]

    beat = Beat(beat_env, tmp_path / "beat1.log", tmp_path).start()
    try:
        wait_for(lambda: sent(), 30, "the first tick's send")
        time.sleep(3 * TICK)
        assert sent() == ["inventory.cache_credential_authorization_mapping"]
    finally:
        beat.stop()
    # Restarted: the entry has run, so nothing is due until its next slot an hour on.
    beat = Beat(beat_env, tmp_path / "beat2.log", tmp_path).start()
    try:
        wait_for(lambda: runtime.redis.get(runtime.keys.beat_leader()), 30, "a leader")
        time.sleep(4 * TICK)
        assert sent() == ["inventory.cache_credential_authorization_mapping"]
    finally:
        beat.stop()
