"""Faults in the processes themselves: a worker SIGKILLed mid-write, Redis restarted mid-sweep.

Everything is real: redis-server, the moto server over HTTP, ``inventory worker``/``beat``/``web``
subprocesses. The only test double is tests/faultproxy.py, an HTTP proxy in front of moto that
holds a chosen AWS call so a kill lands at a known point.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import redis
from celery.result import AsyncResult

from inventory.cache.keys import IAM_KINDS, IAM_ROLE, IAM_USER, Partition
from inventory.demo.seed import SPOKE_ROLE, AccountSeed, Seeder, demo_account, trust
from inventory.runtime import Runtime
from inventory.schedule import SCHEDULE, known_task_names
from inventory.settings import load_settings
from inventory.tasks.accounts import active_accounts, store_account_mapping
from inventory.tasks.iam import sync_iam_account
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy

IAM_TASK = "inventory.cache_iam_resources_for_account"
# Short limits for every task, so a short visibility timeout passes the delivery safety check
# and a message held by a killed worker comes back within seconds.
HARD, BACKOFF_MAX = 10, 1
VISIBILITY = HARD + BACKOFF_MAX + 1
OUTAGE, BEAT_LOCK = 7, 6


def fast_redelivery(hard: int = HARD, **extra: str) -> dict[str, str]:
    limits = {n: {"soft_time_limit": hard - 2, "time_limit": hard} for n in known_task_names()}
    return {
        "INVENTORY_CELERY__TASKS": json.dumps(limits),
        "INVENTORY_CELERY__VISIBILITY_TIMEOUT": str(hard + BACKOFF_MAX + 1),
        "INVENTORY_CELERY__RETRY_BACKOFF_MAX": str(BACKOFF_MAX),
        "INVENTORY_CELERY__UNACKED_RESTORE_SECONDS": "1",
        **extra,
    }


def wait_for(check, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


Snapshot = tuple[frozenset[tuple[str, str]], int | None, frozenset[str]]


class PartitionWatcher(threading.Thread):
    """Reads partitions as the web tier would, as fast as it can, and keeps every distinct view.

    Each read is one MULTI/EXEC of items, content hashes and the meta count: one instant.
    """

    def __init__(self, client: redis.Redis, runtime: Runtime, partitions: list[Partition]) -> None:
        super().__init__(daemon=True)
        self.client, self.keys, self.partitions = client, runtime.keys, partitions
        self.seen: dict[Partition, list[Snapshot]] = {p: [] for p in partitions}
        self.reads = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            pipe = self.client.pipeline(transaction=True)
            for p in self.partitions:
                pipe.hgetall(self.keys.items(p))
                pipe.hget(self.keys.meta(p), "count")
                pipe.hkeys(self.keys.hashes(p))
            replies = pipe.execute()
            self.reads += 1
            for i, p in enumerate(self.partitions):
                items, count, hashes = replies[3 * i : 3 * i + 3]
                view = (
                    frozenset(items.items()),
                    None if count is None else int(count),
                    frozenset(hashes),
                )
                if not self.seen[p] or self.seen[p][-1] != view:
                    self.seen[p].append(view)
            time.sleep(0.002)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def view_of(runtime: Runtime, p: Partition) -> Snapshot:
    client = runtime.redis
    meta = client.hget(runtime.keys.meta(p), "count")
    return (
        frozenset(client.hgetall(runtime.keys.items(p)).items()),
        None if meta is None else int(meta),
        frozenset(client.hkeys(runtime.keys.hashes(p))),
    )


def test_worker_sigkilled_mid_partition_write_readers_see_old_or_new_never_a_mix(
    runtime, redis_server, moto_server, start_worker
):
    """The kill lands after the listing's partitions are written to DynamoDB and Redis and while
    their S3 snapshots are in flight (the proxy holds the first PutObject): the redelivered task
    must still write the snapshot the kill cut off."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 3))
    store_account_mapping(runtime)
    sync_iam_account(runtime, dev.id)
    roles, users = Partition(IAM_ROLE, dev.id), Partition(IAM_USER, dev.id)
    old = {p: view_of(runtime, p) for p in (roles, users)}
    # AWS changes: a role deleted, one added, one re-tagged, a user added.
    iam = seeder.client("iam", dev.id)
    iam.delete_role_policy(RoleName="dev-worker-0", PolicyName="logs-0")
    iam.delete_role(RoleName="dev-worker-0")
    iam.create_role(RoleName="dev-new", AssumeRolePolicyDocument=json.dumps(trust("ec2")))
    iam.tag_role(RoleName="dev-worker-1", Tags=[{"Key": "tier", "Value": "changed"}])
    iam.create_user(UserName="dev-bob")

    proxy = FaultProxy(moto_server.url).start()
    reader = redis.Redis.from_url(runtime.settings.redis.url, decode_responses=True)
    watcher = PartitionWatcher(reader, runtime, [roles, users])
    try:
        env = inventory_env(
            redis_server, moto_server, INVENTORY_AWS__ENDPOINT_URL=proxy.url, **fast_redelivery()
        )
        first = start_worker(env, concurrency=1)
        held = proxy.slow("PutObject", 60, times=1)
        watcher.start()
        result = first.app.send_task(IAM_TASK, args=[dev.id])
        wait_for(lambda: held.hits == 1, 30, "a snapshot upload")
        first.kill()
        killed = time.monotonic()
        # Killed while publishing: both partitions already new in Redis and DynamoDB.
        at_kill = {p: view_of(runtime, p) for p in (roles, users)}
        for p in (roles, users):
            assert at_kill[p] != old[p], p
            assert set(runtime.dynamo.load_hashes(p)) == {a for a, _ in at_kill[p][0]}, p

        second = start_worker(env, concurrency=1)
        summary = AsyncResult(result.id, app=second.app).get(timeout=90)
        redelivered_after = time.monotonic() - killed
        time.sleep(0.3)  # a few more reads after the last write
    finally:
        watcher.stop()
        proxy.stop()

    new = {p: view_of(runtime, p) for p in (roles, users)}
    assert {a for a, _ in new[roles][0]} == {
        dev.role_arn(n) for n in ("dev-app", "dev-worker-1", "dev-worker-2", "dev-worker-3")
    } | {dev.role_arn("dev-new"), dev.role_arn(SPOKE_ROLE)}
    assert {a for a, _ in new[users][0]} == {
        f"arn:aws:iam::{dev.id}:user/{n}" for n in ("dev-alice", "dev-bob")
    }
    # Every view any reader had was the old or the new partition, whole.
    assert watcher.reads > 100, watcher.reads
    for p in (roles, users):
        assert set(watcher.seen[p]) <= {old[p], new[p]}, p
        assert watcher.seen[p][0] == old[p] and watcher.seen[p][-1] == new[p], p
        for items, count, hashes in watcher.seen[p]:
            assert count == len(items) and hashes == {a for a, _ in items}
    print(f"FIGURE sigkill: {watcher.reads} reads, redelivered+done in {redelivered_after:.1f}s")
    # Redelivered once, completed once; the three stores agree.
    assert redelivered_after >= VISIBILITY - 2
    assert runtime.outcomes.counts()[("cache_iam_resources_for_account", dev.id, "ok")] == 1
    assert summary["account_id"] == dev.id
    for kind in IAM_KINDS:
        p = Partition(kind, dev.id)
        cached = runtime.redis_cache.items(p)
        assert runtime.dynamo.items(p) == cached, kind
        assert runtime.s3.get(p)["data"] == cached, kind


class DurableRedis:
    """A redis-server configured as deployed (docker-compose.yml: append-only file), which a
    test can SIGKILL and start again on the same port and data directory."""

    def __init__(self, workdir) -> None:
        from tests.servers import free_port

        self.port, self.workdir = free_port(), workdir
        self.proc: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> DurableRedis:
        from tests.servers import redis_binary

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir), "--appendonly", "yes", "--save", "60 1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: _pings(client), 30, "redis-server start")
        return self

    def crash(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    stop = crash


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def iam_only(name: str, roles: int) -> AccountSeed:
    """A member account with a few roles and one user, and nothing else to seed."""
    seed = demo_account(name, roles - 1)
    seed.buckets, seed.queues, seed.topics = [], [], []
    seed.keys, seed.functions, seed.secrets, seed.repositories = [], [], [], []
    return seed


def get(url: str, token: str | None = None, timeout: float = 3) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of a GET; an error status is a result, not an exception."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def test_redis_crash_mid_sweep_web_503_then_everything_reconnects_and_sweep_completes(
    runtime, moto_server, tmp_path
):
    """Redis is SIGKILLed while a sweep's tasks are running and restarted 7 s later (same port,
    same append-only file), longer than beat's 6 s lock. Web, worker and beat must carry on by
    themselves: the interrupted tasks are requeued and finish, beat takes its lock again."""
    from tests.processes import Beat, CliProcess, Worker
    from tests.servers import free_port

    server = DurableRedis(tmp_path / "redis").start()
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(iam_only(n, 2)) for n in ("dev", "staging", "prod")]
    proxy = FaultProxy(moto_server.url).start()
    token = "fault-test-token"
    schedule = {e.name: {"enabled": False} for e in SCHEDULE}
    schedule["report_celery_last_success_metrics"] = {"enabled": True, "every": 2}
    env = {
        "INVENTORY_CELERY__BROKER_URL": server.url(0),
        "INVENTORY_CELERY__RESULT_BACKEND": server.url(1),
        "INVENTORY_REDIS__URL": server.url(2),
        "INVENTORY_AWS__ENDPOINT_URL": proxy.url,
        "INVENTORY_WEB__API_TOKENS": json.dumps(
            [{"name": "ops", "sha256": hashlib.sha256(token.encode()).hexdigest()}]
        ),
        "INVENTORY_SCHEDULE": json.dumps(schedule),
        "INVENTORY_BEAT__MAX_LOOP_INTERVAL": "1",
        "INVENTORY_BEAT__LOCK_TIMEOUT": str(BEAT_LOCK),
    }
    env = inventory_env(server, moto_server, **fast_redelivery(**env))  # type: ignore[arg-type]
    rt = Runtime(load_settings(paths=[], environ=env))
    port = free_port()
    web = CliProcess(env, tmp_path / "web.log")
    beat = Beat(env, tmp_path / "beat.log", tmp_path)
    worker: Worker | None = None
    try:
        worker = Worker(env, tmp_path / "worker.log", concurrency=2).start()
        web.spawn("web", "--port", str(port))
        beat.start()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/healthz"), 30, "the web tier")
        wait_for(lambda: rt.redis.get(rt.keys.beat_last_tick()), 30, "a beat tick")

        proxy.slow("GetAccountAuthorizationDetails", 1.5)
        started = time.time()
        worker.app.send_task("inventory.cache_iam_resources_across_accounts")
        wait_for(lambda: proxy.count("GetAccountAuthorizationDetails") >= 2, 30, "tasks running")
        server.crash()
        down_at = time.monotonic()
        statuses: list[tuple[str, int, str | None, Any]] = []
        while time.monotonic() - down_at < OUTAGE:
            for path, auth in (("/readyz", None), ("/api/v1/partitions", token)):
                status, headers, body = get(base + path, auth)
                statuses.append((path, status, headers.get("Retry-After"), body))
            time.sleep(0.3)
        server.start()
        up_at = time.monotonic()
        web_back = wait_for(
            lambda: get(f"{base}/api/v1/partitions", token)[0] == 200, 30, "web recovery"
        )

        accounts = [a["id"] for a in active_accounts(rt)]
        assert set(accounts) >= {s.id for s in seeds}

        def swept() -> bool:
            status = {(s.task, s.account_id): s for s in rt.outcomes.status()}
            return all(
                (e := status.get(("cache_iam_resources_for_account", a))) is not None
                and (e.last_success or 0) > started
                for a in accounts
            )

        wait_for(swept, 90, "the sweep")
        sweep_done = time.monotonic() - up_at
        tick = float(rt.redis.get(rt.keys.beat_last_tick()))
        wait_for(
            lambda: float(rt.redis.get(rt.keys.beat_last_tick())) > tick + 1, 20, "beat ticking"
        )
        metrics_task = ("report_celery_last_success_metrics", "all")
        wait_for(
            lambda: any(
                (s.task, s.account_id) == metrics_task and (s.last_success or 0) > time.time() - 3
                for s in rt.outcomes.status()
            ),
            20,
            "a beat-sent task run after the restart",
        )
        # A client connection from before the crash may fail once; the worker itself answers.
        wait_for(lambda: _worker_answers(worker), 10, "a worker ping")
        assert web.proc.poll() is None and beat.proc.poll() is None
        assert "lock lost and acquired again" in beat.log()
        # Nothing lost: every account's IAM data is cached and the stores agree.
        for seed in seeds:
            for kind in IAM_KINDS:
                p = Partition(kind, seed.id)
                cached = rt.redis_cache.items(p)
                assert rt.dynamo.items(p) == cached, (seed.name, kind)
            assert set(rt.redis_cache.items(Partition(IAM_ROLE, seed.id))) == {
                seed.role_arn(r.name) for r in seed.roles
            } | {seed.role_arn(SPOKE_ROLE)}
    finally:
        for process in (worker, beat, web):
            if process is not None:
                process.stop()
        proxy.stop()
        server.stop()

    # While Redis was down: 503 with a JSON error and Retry-After, never 500, never a hang.
    assert statuses and {s for _, s, _, _ in statuses} == {503}, statuses
    assert all(r == "5" for _, _, r, _ in statuses), statuses
    for path, _, _, body in statuses:
        if path == "/readyz":
            assert body == {"status": "unavailable", "redis": False}
        else:
            assert body == {"error": "cache unavailable", "status": 503}
    print(
        f"FIGURE redis-crash: {len(statuses)} requests while down, all 503; web back "
        f"{web_back:.1f}s after restart; sweep done {sweep_done:.1f}s after restart"
    )


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


def _worker_answers(worker) -> bool:
    try:
        return worker.ping(1)
    except (redis.RedisError, OSError):
        return False
