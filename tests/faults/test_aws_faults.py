"""AWS faults against a real worker: DynamoDB and S3 errors, 10% throttling and AccessDenied, a role
that cannot be assumed.

Faults are injected over the wire by tests/faultproxy.py, an HTTP proxy in front of the moto
server: the worker's botocore clients get real AWS error responses and go through their real
retry handlers (botocore's, PynamoDB's, then the task's Celery retry). Nothing is patched.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from celery.result import AsyncResult

from inventory.cache.keys import IAM_KINDS, IAM_ROLE, Partition
from inventory.demo.seed import REGIONS, SPOKE_ROLE, AccountSeed, RoleSeed, Seeder, trust
from inventory.runtime import Runtime
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy
from tests.faults.test_process_faults import HARD, fast_redelivery, iam_only

IAM = "cache_iam_resources_for_account"
SQS = "cache_sqs_queues_for_account"
IAM_FANOUT = "inventory.cache_iam_resources_across_accounts"
SQS_FANOUT = "inventory.cache_sqs_queues_across_accounts"


def sqs_kind():
    from inventory.registry import BY_STEM

    return BY_STEM["sqs_queues"]


def cached_arns(runtime: Runtime, account_id: str) -> dict[Partition, set[str]]:
    """ARNs per partition for IAM and SQS, as Redis holds them."""
    partitions = [Partition(k, account_id) for k in IAM_KINDS]
    partitions += [Partition("sqs_queue", account_id, r) for r in REGIONS]
    return {p: set(runtime.redis_cache.items(p)) for p in partitions}


def durable_arns(runtime: Runtime, account_id: str) -> dict[Partition, set[str]]:
    return {p: set(runtime.dynamo.load_hashes(p)) for p in cached_arns(runtime, account_id)}


def run_sweep(app, fanouts: list[str], timeout: float = 120) -> dict[tuple[str, str], str]:
    """Send the fan-outs; the final state (after Celery retries) of every per-account task."""
    sent = {}
    for fanout in fanouts:
        summary = app.send_task(fanout).get(timeout=60)
        task = fanout.removeprefix("inventory.").replace("_across_accounts", "_for_account")
        for account_id, task_id in zip(summary["accounts"], summary["task_ids"], strict=True):
            sent[(task, account_id)] = task_id
    states = {}
    for key, task_id in sent.items():
        result = AsyncResult(task_id, app=app)
        result.get(timeout=timeout, propagate=False)
        states[key] = result.state
    return states


def test_throttling_and_access_denied_on_10_percent_of_calls_delete_nothing(
    runtime, redis_server, moto_server, start_worker
):
    """10% Throttling and ~9% AccessDenied on every IAM and SQS listing call, from a seeded
    random sequence in the proxy (the worker is a separate process, so an in-process botocore
    hook could not reach it; the proxy exercises the same retry path over the wire: botocore's
    adaptive retries with backoff and jitter, then the task's Celery retry with full jitter).
    Three sweeps under faults, then every ARN cached by the clean sweep is still cached."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = []
    for name in ["dev", "staging", "prod", "audit"]:
        seed = iam_only(name, 3)
        seed.queues = _queues(name)
        seeds.append(seeder.create_account(seed))
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            # Two botocore attempts, so that some throttling also reaches the Celery retry.
            INVENTORY_AWS__MAX_ATTEMPTS="2",
            # Adaptive retries also slow the client down after throttling: room for that.
            **fast_redelivery(hard=30),
        )
        worker = start_worker(env, concurrency=2)
        clean = run_sweep(worker.app, [IAM_FANOUT, SQS_FANOUT])
        assert set(clean.values()) == {"SUCCESS"}, clean
        accounts = sorted({a for _, a in clean})
        before = {a: cached_arns(runtime, a) for a in accounts}
        assert before == {a: durable_arns(runtime, a) for a in accounts}
        assert all(before[s.id][Partition("sqs_queue", s.id, "us-west-2")] for s in seeds)
        # A real change in AWS: only a complete listing may apply it.
        gone = seeds[0].role_arn("dev-worker-0")
        iam = seeder.client("iam", seeds[0].id)
        iam.delete_role_policy(RoleName="dev-worker-0", PolicyName="logs-0")
        iam.delete_role(RoleName="dev-worker-0")

        listing_calls = [
            "GetAccountAuthorizationDetails",
            "ListQueues",
            "GetQueueAttributes",
            "ListQueueTags",
        ]
        throttled = [
            proxy.fail(a, "Throttling", 400, rate=0.10, seed=i) for i, a in enumerate(listing_calls)
        ]
        denied = [
            proxy.fail(a, "AccessDenied", 403, rate=0.10, seed=100 + i)
            for i, a in enumerate(listing_calls)
        ]
        calls_before = Counter(proxy.calls)
        started = time.time()
        rounds = [run_sweep(worker.app, [IAM_FANOUT, SQS_FANOUT]) for _ in range(3)]
        proxy.clear()
    finally:
        proxy.stop()

    after = {a: cached_arns(runtime, a) for a in accounts}
    durable = {a: durable_arns(runtime, a) for a in accounts}
    iam_succeeded = any(r[(IAM, seeds[0].id)] == "SUCCESS" for r in rounds)
    for a in accounts:
        for p, arns in before[a].items():
            expected = arns - {gone} if iam_succeeded else arns
            assert after[a][p] == expected, (a, p)  # zero false deletions, nothing stale added
            assert durable[a][p] == expected, (a, p)
    # Faults were really injected, retried with backoff, and counted.
    assert sum(f.hits for f in throttled) > 0 and sum(f.hits for f in denied) > 0
    calls = Counter(proxy.calls) - calls_before
    counts = runtime.outcomes.counts()
    failed = Counter(k for r in rounds for k, state in r.items() if state == "FAILURE")
    succeeded = Counter(k for r in rounds for k, state in r.items() if state == "SUCCESS")
    assert sum(failed.values()) > 0 and sum(succeeded.values()) > sum(failed.values())
    status = {(s.task, s.account_id): s for s in runtime.outcomes.status()}
    for (task, account_id), n in failed.items():
        assert counts[(task, account_id, "failed")] == n
        # Throttling never surfaces: botocore's or Celery's retries absorbed every one.
        assert "AccessDenied" in status[(task, account_id)].last_error
    # Other accounts unaffected: whatever succeeded in a round is fresh.
    for key in succeeded:
        assert (status[key].last_success or 0) > started, key
    retries = sum(n for (_, _, outcome), n in counts.items() if outcome == "retry")
    print(
        f"FIGURE 10%: {sum(calls.values())} AWS calls, {sum(f.hits for f in throttled)} "
        f"throttled, {sum(f.hits for f in denied)} denied; task runs ok={sum(succeeded.values())} "
        f"failed={sum(failed.values())} celery-retries={retries}; false deletions 0"
    )


def _queues(name: str) -> list[Any]:
    from inventory.demo.seed import QueueSeed

    return [QueueSeed(f"{name}-jobs-{n}", region) for region in REGIONS for n in range(2)]


@pytest.mark.parametrize("store", ["dynamodb", "s3"])
def test_storage_error_mid_write_fails_the_task_and_the_retry_leaves_stores_agreeing(
    runtime, redis_server, moto_server, start_worker, store
):
    """DynamoDB: the second BatchWriteItem of a 30-item partition answers
    ProvisionedThroughputExceededException until PynamoDB's own retries give up (the first batch
    is already written). S3: PutObject answers 503 SlowDown past botocore's attempts (Redis and
    DynamoDB already written). Either way the task fails, Celery retries it, and after the retry
    Redis, DynamoDB and S3 hold the same partition."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seed = AccountSeed(
        name="big",
        roles=[RoleSeed(f"svc-{n:02d}", trust("lambda.amazonaws.com")) for n in range(30)],
    )
    big = seeder.create_account(seed)
    store_account_mapping(runtime)
    sync_iam_account(runtime, big.id)
    roles = Partition(IAM_ROLE, big.id)
    # Changes whose write needs two BatchWriteItem calls: 2 deleted, 28 added (30 writes).
    iam = seeder.client("iam", big.id)
    for n in range(2):
        iam.delete_role(RoleName=f"svc-{n:02d}")
    for n in range(28):
        iam.create_role(
            RoleName=f"new-{n:02d}",
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}',
        )
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            INVENTORY_AWS__MAX_ATTEMPTS="2",
            # PynamoDB makes 6 attempts with botocore's standard backoff (mean 15 s in all).
            **fast_redelivery(hard=45 if store == "dynamodb" else HARD),
        )
        if store == "dynamodb":
            fault = proxy.fail(
                "BatchWriteItem", "ProvisionedThroughputExceededException", 400, times=8, skip=1
            )
        else:
            fault = proxy.fail("PutObject", "SlowDown", 503, times=3)
        worker = start_worker(env, concurrency=1)
        started = time.monotonic()
        summary = worker.app.send_task(f"inventory.{IAM}", args=[big.id]).get(timeout=120)
        took = time.monotonic() - started
    finally:
        proxy.stop()

    counts = runtime.outcomes.counts()
    assert fault.remaining == 0 and fault.hits == (8 if store == "dynamodb" else 3)
    assert counts[(IAM, big.id, "retry")] >= 1 and counts[(IAM, big.id, "ok")] == 1
    assert (IAM, big.id, "failed") not in counts
    expected = (
        {big.role_arn(f"svc-{n:02d}") for n in range(2, 30)}
        | {big.role_arn(f"new-{n:02d}") for n in range(28)}
        | {big.role_arn(SPOKE_ROLE)}
    )
    for kind in IAM_KINDS:
        p = Partition(kind, big.id)
        cached = runtime.redis_cache.items(p)
        assert runtime.dynamo.items(p) == cached, kind
        assert runtime.s3.get(p)["data"] == cached, kind
    assert set(runtime.redis_cache.items(roles)) == expected
    assert summary["account_id"] == big.id
    assert took < 60
    print(f"FIGURE {store}: {fault.hits} injected errors, task ok after retry in {took:.1f}s")


def test_account_whose_role_cannot_be_assumed_fails_alone_and_keeps_its_cache(
    runtime, redis_server, moto_server, start_worker
):
    """AssumeRole into one account answers AccessDenied (what AWS says when the role is missing
    or does not trust the hub); moto assumes any role, so the proxy gives that answer."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(iam_only(n, 2)) for n in ("dev", "staging", "prod")]
    for s in seeds:
        s.queues = _queues(s.name)
        seeder.fill_resources(s)
    store_account_mapping(runtime)
    for s in seeds:
        sync_iam_account(runtime, s.id)
        sync_kind(runtime, sqs_kind(), s.id)
    locked = seeds[1]
    before = {s.id: cached_arns(runtime, s.id) for s in seeds}
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server, moto_server, INVENTORY_AWS__ENDPOINT_URL=proxy.url, **fast_redelivery()
        )
        denied = proxy.fail("AssumeRole", "AccessDenied", 403, match=locked.id)
        worker = start_worker(env, concurrency=2)
        started = time.time()
        states = run_sweep(worker.app, [IAM_FANOUT, SQS_FANOUT])
    finally:
        proxy.stop()

    assert denied.hits >= 2
    assert {k: v for k, v in states.items() if v != "SUCCESS"} == {
        (IAM, locked.id): "FAILURE",
        (SQS, locked.id): "FAILURE",
    }
    counts = runtime.outcomes.counts()
    status = {(s.task, s.account_id): s for s in runtime.outcomes.status()}
    for task in (IAM, SQS):
        assert counts[(task, locked.id, "failed")] == 1
        assert (task, locked.id, "retry") not in counts  # AccessDenied is not retried
        assert "AccessDenied" in status[(task, locked.id)].last_error
        assert (status[(task, locked.id)].last_success or 0) < started
        for s in seeds:
            if s is not locked:
                assert status[(task, s.id)].last_success > started
    assert {s.id: cached_arns(runtime, s.id) for s in seeds} == before
