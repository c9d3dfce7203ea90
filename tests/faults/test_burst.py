"""A burst: one IAM sweep fanned out to 500 accounts at once, drained by two worker processes."""

from __future__ import annotations

import time

import pytest
import redis
from celery.result import AsyncResult

from inventory.cache.keys import IAM_KINDS, IAM_ROLE, Partition
from inventory.celery_app import QUEUES
from inventory.demo.seed import MANAGEMENT_ACCOUNT, SPOKE_ROLE, Seeder
from tests.conftest import BROKER_DB
from tests.faults.test_process_faults import wait_for

ACCOUNTS = 500


@pytest.mark.timeout(480)
def test_500_accounts_fanned_out_at_once_all_complete_and_the_queue_drains(
    env, runtime, redis_server, moto_server, start_worker
):
    """500 moto Organizations accounts (each holds only the spoke role moto creates), one
    fan-out, one worker with two prefork processes. Every account's task must succeed, every
    account's partitions must exist in Redis and DynamoDB, and the broker must end empty.
    S3 snapshots are off: they are tested elsewhere, and here they would only add 2,000 calls
    to the one moto process that sets the pace."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    org = seeder.client("organizations")
    seeding = time.monotonic()
    members = {
        org.create_account(AccountName=f"acct-{n:03d}", Email=f"acct-{n:03d}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
        for n in range(ACCOUNTS)
    }
    seeded_in = time.monotonic() - seeding
    assert len(members) == ACCOUNTS
    worker = start_worker(env | {"INVENTORY_S3__BUCKET": "null"}, concurrency=2)

    started = time.monotonic()
    summary = worker.app.send_task("inventory.cache_iam_resources_across_accounts").get(timeout=60)
    fanned_out = time.monotonic() - started
    assert set(summary["accounts"]) == members | {MANAGEMENT_ACCOUNT}
    results = [AsyncResult(t, app=worker.app) for t in summary["task_ids"]]
    for result in results:
        result.get(timeout=400)
    took = time.monotonic() - started

    broker = redis.Redis(port=redis_server.port, db=BROKER_DB)

    def drained() -> bool:
        pipe = broker.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
        pipe.hlen("unacked")
        pipe.zcard("unacked_index")
        return not any(pipe.execute())

    wait_for(drained, 15, "the broker draining")
    assert {r.state for r in results} == {"SUCCESS"}
    counts = runtime.outcomes.counts()
    ok = {a for (task, a, outcome) in counts if outcome == "ok" and task.startswith("cache_iam_")}
    assert ok >= members | {MANAGEMENT_ACCOUNT}
    assert not [k for k in counts if k[2] != "ok"], "no failure or retry in the burst"
    # Nothing lost: every member's spoke role cached in Redis and DynamoDB, every partition stamped.
    pipe = runtime.redis.pipeline(transaction=False)
    for account_id in sorted(members):
        pipe.hkeys(runtime.keys.items(Partition(IAM_ROLE, account_id)))
        for kind in IAM_KINDS:
            pipe.exists(runtime.keys.meta(Partition(kind, account_id)))
    replies = iter(pipe.execute())
    for account_id in sorted(members):
        assert next(replies) == [f"arn:aws:iam::{account_id}:role/{SPOKE_ROLE}"], account_id
        assert [next(replies) for _ in IAM_KINDS] == [1] * len(IAM_KINDS), account_id
    durable = {item.accountId for item in runtime.dynamo.model(IAM_ROLE).scan()}
    assert durable >= members
    print(
        f"FIGURE burst: seeded {ACCOUNTS} accounts in {seeded_in:.1f}s; fan-out {fanned_out:.1f}s; "
        f"{len(results)} tasks done and queue drained in {took:.1f}s "
        f"({len(results) / took:.1f} tasks/s on 2 processes)"
    )
    # ~14 AWS calls per account through one moto server (a Python process) on 2 shared cores
    # (docs/reliability.md has the figure); the bound catches a stall or a lost task.
    assert took < 400
