"""Faults in the processes themselves: a worker SIGKILLed mid-write, Redis restarted mid-sweep.

Everything is real: redis-server, the moto server over HTTP, ``inventory worker``/``beat``/``web``
subprocesses. The only test double is tests/faultproxy.py, an HTTP proxy in front of moto that
holds a chosen AWS call so a kill lands at a known point.
"""

from __future__ import annotations

import json
import threading
import time

import redis
from celery.result import AsyncResult

from inventory.cache.keys import IAM_KINDS, IAM_ROLE, IAM_USER, Partition
from inventory.demo.seed import SPOKE_ROLE, Seeder, demo_account, trust
from inventory.runtime import Runtime
from inventory.schedule import known_task_names
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy

IAM_TASK = "inventory.cache_iam_resources_for_account"
# Short limits for every task, so a short visibility timeout passes the delivery safety check
# and a message held by a killed worker comes back within seconds.
SOFT, HARD, BACKOFF_MAX, VISIBILITY = 8, 10, 1, 12


def fast_redelivery(**extra: str) -> dict[str, str]:
    limits = {n: {"soft_time_limit": SOFT, "time_limit": HARD} for n in known_task_names()}
    return {
        "INVENTORY_CELERY__TASKS": json.dumps(limits),
        "INVENTORY_CELERY__VISIBILITY_TIMEOUT": str(VISIBILITY),
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
    """The kill lands after the role partition is written to DynamoDB and Redis and while its
    S3 snapshot is in flight (the proxy holds that PutObject), before the user partition."""
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
        wait_for(lambda: held.hits == 1, 30, "the role snapshot upload")
        first.kill()
        killed = time.monotonic()
        # Killed between partitions: roles already new in Redis and DynamoDB, users still old.
        at_kill = {p: view_of(runtime, p) for p in (roles, users)}
        assert at_kill[roles] != old[roles]
        assert at_kill[users] == old[users]
        assert set(runtime.dynamo.load_hashes(roles)) == {a for a, _ in at_kill[roles][0]}

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
