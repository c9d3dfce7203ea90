"""The IAM slice end to end: moto organisation -> real Celery worker -> Redis, DynamoDB and S3."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
from celery.result import AsyncResult

from inventory.cache.keys import (
    GLOBAL,
    IAM_GROUP,
    IAM_KINDS,
    IAM_POLICY,
    IAM_ROLE,
    IAM_USER,
    Partition,
)
from inventory.demo.seed import (
    MANAGEMENT_ACCOUNT,
    SPOKE_ROLE,
    AccountSeed,
    Seeder,
    aws_policy_arn,
    seed_demo_organisation,
)
from inventory.runtime import Runtime
from tests.conftest import BUCKET, inventory_env
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.slow


def sweep(worker, timeout: float = 90) -> dict[str, Any]:
    """Run the fan-out through the broker and wait for every per-account task it sent."""
    app = worker.app
    fanout = app.send_task("inventory.cache_iam_resources_across_accounts", queue="fanout")
    summary = fanout.get(timeout=timeout)
    results = {}
    for account_id, task_id in zip(summary["accounts"], summary["task_ids"], strict=True):
        results[account_id] = AsyncResult(task_id, app=app).get(timeout=timeout, propagate=False)
    return results


def expected_iam(seeder: Seeder, seed: AccountSeed) -> dict[str, set[str]]:
    """ARNs per kind, from the seed plus the spoke role moto creates in each member account."""
    return {
        IAM_ROLE: {seed.role_arn(r.name) for r in seed.roles} | {seed.role_arn(SPOKE_ROLE)},
        IAM_USER: {f"arn:aws:iam::{seed.id}:user/{u.name}" for u in seed.users},
        IAM_GROUP: {f"arn:aws:iam::{seed.id}:group/{g.name}" for g in seed.groups},
        IAM_POLICY: {seed.policy_arn(p) for p in seed.policies},
    }


def expected_role(seeder: Seeder, seed: AccountSeed, name: str) -> dict[str, Any]:
    """A role record built from what we seeded plus GetRole (a different API than ours)."""
    role = next(r for r in seed.roles if r.name == name)
    got = seeder.client("iam", seed.id).get_role(RoleName=name)["Role"]
    return {
        "arn": seed.role_arn(name),
        "kind": IAM_ROLE,
        "account_id": seed.id,
        "name": name,
        "id": got["RoleId"],
        "path": "/",
        "created": got["CreateDate"].isoformat().replace("+00:00", "Z"),
        # from ListRoles (GetAccountAuthorizationDetails has neither)
        "description": role.description or None,
        "max_session_duration": role.max_session_duration or 3600,
        "trust_policy": role.trust_policy,
        "inline_policies": role.inline,
        "attached_policies": sorted(
            [{"name": p, "arn": seed.policy_arn(p)} for p in role.attached]
            + [{"name": p, "arn": aws_policy_arn(p)} for p in role.aws_policies],
            key=lambda p: p["arn"],
        ),
        "permissions_boundary": (
            {"type": "PermissionsBoundaryPolicy", "arn": seed.policy_arn(role.boundary)}
            if role.boundary
            else None
        ),
        "tags": role.tags,
        "last_used": None,
        "instance_profiles": [],
    }


def dynamo_items(runtime: Runtime, p: Partition) -> dict[str, dict[str, Any]]:
    return runtime.dynamo.items(p)


def snapshot(runtime: Runtime, p: Partition) -> dict[str, Any] | None:
    return runtime.s3.get(p) if runtime.s3 else None


def s3_versions(runtime: Runtime) -> int:
    s3 = runtime.aws.hub_client("s3", "us-east-1")
    return len(s3.list_object_versions(Bucket=BUCKET).get("Versions", []))


def dynamo_updated_at(runtime: Runtime, account_ids: list[str]) -> dict[str, float]:
    stamps = {}
    for account_id in account_ids:
        for kind in IAM_KINDS:
            model = runtime.dynamo.model(kind)
            for item in model.partition_index.query(Partition(kind, account_id).id):
                full = model.get(item.arn, account_id)
                stamps[item.arn] = full.updatedAt
    return stamps


@pytest.fixture
def org(runtime: Runtime, moto_server) -> tuple[Seeder, list[AccountSeed]]:
    seeds = seed_demo_organisation(moto_server.url)
    return Seeder(moto_server.url), seeds


def test_sweep_through_worker_caches_every_account_exactly(runtime, org, env, start_worker):
    seeder, seeds = org
    worker = start_worker(env)

    results = sweep(worker)

    assert set(results) == {MANAGEMENT_ACCOUNT} | {s.id for s in seeds}
    assert all("error" not in r and isinstance(r, dict) for r in results.values()), results
    cache = runtime.redis_cache
    for seed in seeds:
        for kind, arns in expected_iam(seeder, seed).items():
            p = Partition(kind, seed.id, GLOBAL)
            redis_items = cache.items(p)
            assert set(redis_items) == arns, (kind, seed.name)
            assert dynamo_items(runtime, p) == redis_items
            envelope = snapshot(runtime, p)
            assert envelope is not None and envelope["data"] == redis_items
            assert envelope["partition"] == {"kind": kind, "account_id": seed.id, "region": GLOBAL}
        for role in seed.roles:
            assert cache.get(seed.role_arn(role.name)) == expected_role(seeder, seed, role.name)
        user = cache.get(f"arn:aws:iam::{seed.id}:user/{seed.name}-alice")
        assert user["groups"] == [f"{seed.name}-admins"]
        assert user["tags"] == {"email": f"alice@{seed.name}.example.com"}
        policy = cache.get(seed.policy_arn(f"{seed.name}-queue-access"))
        assert policy["name"] == f"{seed.name}-queue-access"
        assert policy["document"] == seed.policies[f"{seed.name}-queue-access"]
    # Every account's task recorded its success; none failed.
    status = {(s.task, s.account_id): s for s in runtime.outcomes.status()}
    for account_id in results:
        entry = status[("cache_iam_resources_for_account", account_id)]
        assert entry.last_success is not None and entry.last_failure is None
    assert status[("cache_iam_resources_across_accounts", "all")].last_success is not None


def test_second_sweep_without_changes_writes_nothing_durable(runtime, org, env, start_worker):
    seeder, seeds = org
    worker = start_worker(env)
    first = sweep(worker)
    versions = s3_versions(runtime)
    stamps = dynamo_updated_at(runtime, list(first))
    assert sum(r["dynamo_writes"] for r in first.values()) == len(stamps)

    second = sweep(worker)

    assert {a: r["dynamo_writes"] for a, r in second.items()} == dict.fromkeys(first, 0)
    assert {a: r["s3_objects"] for a, r in second.items()} == dict.fromkeys(first, 0)
    assert s3_versions(runtime) == versions
    assert dynamo_updated_at(runtime, list(first)) == stamps


def test_role_deleted_in_aws_disappears_after_next_complete_sweep(runtime, org, env, start_worker):
    seeder, seeds = org
    dev = seeds[0]
    gone = dev.role_arn("dev-worker-0")
    worker = start_worker(env)
    sweep(worker)
    assert runtime.redis_cache.get(gone) is not None

    iam = seeder.client("iam", dev.id)
    iam.delete_role_policy(RoleName="dev-worker-0", PolicyName="logs-0")
    iam.delete_role(RoleName="dev-worker-0")
    results = sweep(worker)

    assert results[dev.id]["partitions"][IAM_ROLE]["removed"] == 1
    p = Partition(IAM_ROLE, dev.id)
    assert runtime.redis_cache.get(gone) is None
    assert gone not in runtime.redis_cache.items(p)
    assert gone not in dynamo_items(runtime, p)
    assert gone not in snapshot(runtime, p)["data"]
    assert set(runtime.redis_cache.items(p)) == expected_iam(seeder, dev)[IAM_ROLE] - {gone}


@pytest.mark.parametrize(
    ("code", "status"), [("AccessDenied", 403), ("Throttling", 400)], ids=["denied", "throttled"]
)
def test_failed_iam_listing_keeps_cache_and_records_failure(
    runtime, org, redis_server, moto_server, start_worker, code, status
):
    seeder, seeds = org
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            INVENTORY_AWS__MAX_ATTEMPTS="1",
        )
        worker = start_worker(env)
        sweep(worker)
        before = {
            s.id: {k: runtime.redis_cache.items(Partition(k, s.id)) for k in IAM_KINDS}
            for s in seeds
        }
        # Something really changed in AWS meanwhile: a failed listing must not apply it.
        iam = seeder.client("iam", seeds[0].id)
        iam.delete_role_policy(RoleName="dev-worker-0", PolicyName="logs-0")
        iam.delete_role(RoleName="dev-worker-0")
        started = time.time()

        proxy.fail("GetAccountAuthorizationDetails", code, status)
        fanout = worker.app.send_task("inventory.cache_iam_resources_across_accounts")
        summary = fanout.get(timeout=60)
        wait_for_failures(runtime, summary["accounts"], started)

        after = {
            s.id: {k: runtime.redis_cache.items(Partition(k, s.id)) for k in IAM_KINDS}
            for s in seeds
        }
        assert after == before
        for s in seeds:
            for k in IAM_KINDS:
                p = Partition(k, s.id)
                assert set(dynamo_items(runtime, p)) == set(before[s.id][k])
        status_by = {(x.task, x.account_id): x for x in runtime.outcomes.status()}
        for account_id in summary["accounts"]:
            entry = status_by[("cache_iam_resources_for_account", account_id)]
            assert entry.last_failure is not None and entry.last_failure >= started
            assert code in entry.last_error
        if code == "Throttling":
            # Throttling is retried with backoff: once the fault clears, the retry completes.
            proxy.clear()
            wait_for(
                lambda: runtime.redis_cache.get(seeds[0].role_arn("dev-worker-0")) is None,
                timeout=120,
            )
        else:
            counts = runtime.outcomes.counts()
            assert counts[("cache_iam_resources_for_account", seeds[0].id, "failed")] == 1
            assert ("cache_iam_resources_for_account", seeds[0].id, "retry") not in counts
    finally:
        proxy.stop()


def wait_for(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def wait_for_failures(runtime: Runtime, accounts: list[str], since: float) -> None:
    def failed() -> bool:
        status = {(s.task, s.account_id): s for s in runtime.outcomes.status()}
        return all(
            (e := status.get(("cache_iam_resources_for_account", a))) is not None
            and (e.last_failure or 0) >= since
            for a in accounts
        )

    wait_for(failed)


def test_snapshot_is_gzipped_json_envelope(runtime, org):
    """The S3 object itself: gzip, JSON, ConsoleMe's {last_updated, data} envelope."""
    from inventory.tasks.accounts import store_account_mapping
    from inventory.tasks.iam import sync_iam_account

    seeder, seeds = org
    store_account_mapping(runtime)
    sync_iam_account(runtime, seeds[0].id)
    s3 = runtime.aws.hub_client("s3", "us-east-1")
    key = f"inventory/{IAM_ROLE}/{seeds[0].id}/global.json.gz"
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    body = json.loads(gzip.decompress(obj["Body"].read()))
    assert set(body) == {"last_updated", "partition", "data"}
    assert set(body["data"]) == expected_iam(seeder, seeds[0])[IAM_ROLE]
