"""The account mapping and clear_old_redis_iam_cache, in process against real servers."""

from __future__ import annotations

import time

import pytest

from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, IAM_ROLE, Partition
from inventory.demo.seed import MANAGEMENT_ACCOUNT, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import AccountNotSynced, active_accounts, store_account_mapping
from inventory.tasks.base import should_retry
from inventory.tasks.iam import clear_stale_iam, sync_iam_account
from inventory.tasks.resources import sync_kind

#: Not in the organisation nor in config. moto, like AWS for a role that trusts the hub,
#: lets the hub assume a role there: only the mapping stands in the way.
STRANGER = "999999999999"


def test_mapping_merges_organizations_and_static_and_syncs_only_active(
    runtime: Runtime, moto_server, env
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    old = seeder.create_account(demo_account("old", 0))
    seeder.client("organizations").close_account(AccountId=old.id)
    env = env | {
        "INVENTORY_ACCOUNTS__STATIC": (
            f'[{{id: "{dev.id}", name: "Development"}}, {{id: "210987654321", name: lab}}]'
        )
    }
    rt = Runtime(load_settings(paths=[], environ=env))

    summary = store_account_mapping(rt)

    items = rt.redis_cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
    by_id = {r["id"]: r for r in items.values()}
    assert set(by_id) == {MANAGEMENT_ACCOUNT, dev.id, old.id, "210987654321"}
    assert by_id[dev.id]["name"] == "Development"  # static wins over Organizations
    assert by_id[dev.id]["email"] == "dev@example.com"  # Organizations fills what static lacks
    assert by_id[dev.id]["source"] == "organizations+static"
    assert by_id[old.id]["status"] == "SUSPENDED"
    assert by_id["210987654321"] == {
        "arn": "arn:aws:iam::210987654321:root",
        "kind": "account",
        "id": "210987654321",
        "name": "lab",
        "status": "ACTIVE",
        "email": None,
        "joined": None,
        "organizations_arn": None,
        "source": "static",
        "role_name": None,
    }
    assert summary == {"accounts": 4, "active": 3, "created": 4, "updated": 0, "removed": 0}
    assert {a["id"] for a in active_accounts(rt)} == {MANAGEMENT_ACCOUNT, dev.id, "210987654321"}
    assert set(rt.dynamo.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))) == set(items)


def test_an_account_not_in_the_mapping_or_not_active_is_never_synced(runtime: Runtime, moto_server):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    old = seeder.create_account(demo_account("old", 0))
    seeder.client("organizations").close_account(AccountId=old.id)
    store_account_mapping(runtime)

    for account_id, reason in (
        (STRANGER, f"account {STRANGER} is not in the account mapping"),
        (old.id, f"account {old.id} is SUSPENDED, not ACTIVE"),
    ):
        with pytest.raises(AccountNotSynced) as iam_error:
            sync_iam_account(runtime, account_id)
        with pytest.raises(AccountNotSynced) as sqs_error:
            sync_kind(runtime, BY_STEM["sqs_queues"], account_id)
        assert str(iam_error.value) == str(sqs_error.value) == reason
        assert not should_retry(iam_error.value)  # the task fails at once, no retries
        assert [p for p in runtime.redis_cache.partitions() if p.account_id == account_id] == []
    # The mapped ACTIVE account next to them syncs as ever.
    assert sync_iam_account(runtime, dev.id)["account_id"] == dev.id
    assert runtime.redis_cache.get(dev.role_arn("dev-app")) is not None


def test_a_sync_before_any_mapping_builds_it_instead_of_guessing(runtime: Runtime, moto_server):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))

    assert sync_iam_account(runtime, dev.id)["account_id"] == dev.id
    with pytest.raises(AccountNotSynced):
        sync_iam_account(runtime, STRANGER)
    assert {a["id"] for a in active_accounts(runtime)} == {MANAGEMENT_ACCOUNT, dev.id}


def test_clear_old_removes_only_entries_not_refreshed_in_time(runtime: Runtime, moto_server):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 1))
    store_account_mapping(runtime)
    sync_iam_account(runtime, dev.id)
    p = Partition(IAM_ROLE, dev.id)
    arns = set(runtime.redis_cache.items(p))
    stale_after = runtime.settings.iam.stale_after_seconds

    assert clear_stale_iam(runtime, now=time.time() + stale_after - 60) == {}
    assert set(runtime.redis_cache.items(p)) == arns

    removed = clear_stale_iam(runtime, now=time.time() + stale_after + 60)

    assert removed[p.id] == len(arns)
    assert runtime.redis_cache.items(p) == {}
    assert runtime.redis_cache.get(dev.role_arn("dev-app")) is None
    # DynamoDB loses them too, so Redis, DynamoDB and every region following them agree; a
    # later listing that returns them brings them back in both.
    assert set(runtime.dynamo.items(p)) == set()
    sync_iam_account(runtime, dev.id)
    assert set(runtime.redis_cache.items(p)) == set(runtime.dynamo.items(p)) == arns


def test_old_event_read_times_are_pruned(runtime: Runtime):
    from inventory.tasks.iam import prune_event_reads

    key = runtime.keys.event_applied()
    now = time.time()
    window = runtime.settings.events.seen_ttl_seconds
    runtime.redis.hset(key, mapping={"old": now - window - 10, "old|*": 1.0, "new": now - 5})

    assert prune_event_reads(runtime, now=now) == 2
    assert set(runtime.redis.hkeys(key)) == {"new"}
