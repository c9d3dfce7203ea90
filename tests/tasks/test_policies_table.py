"""The policies table follows partition changes and the scheduled rebuild repairs drift."""

from __future__ import annotations

import json

import pytest

from inventory.aws.config import transform_resource
from inventory.cache.keys import GLOBAL, IAM_KINDS, Partition
from inventory.demo.seed import Seeder, demo_account
from inventory.registry import BY_STEM, TABLE_KINDS
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.metrics import last_success_ages
from inventory.tasks.policies_table import rebuild_policies_table
from inventory.tasks.resources import sync_kind


@pytest.fixture
def synced(runtime, moto_server):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
    store_account_mapping(runtime)
    for seed in seeds:
        sync_iam_account(runtime, seed.id)
        for stem in ("s3_buckets", "sqs_queues"):
            sync_kind(runtime, BY_STEM[stem], seed.id)
    return seeder, seeds


def cached_arns(runtime) -> dict[str, dict]:
    rows = {}
    for p in runtime.redis_cache.partitions():
        if p.kind in TABLE_KINDS:
            rows.update(runtime.redis_cache.items(p))
    return rows


def test_rows_follow_every_partition_change(runtime, synced):
    seeder, seeds = synced
    table = runtime.policies_table
    records = cached_arns(runtime)
    rows = table.rows()
    assert set(rows) == set(records)
    dev = seeds[0]
    app = rows[dev.role_arn("dev-app")]
    assert {k: v for k, v in app.items() if k != "last_updated"} == {
        "arn": dev.role_arn("dev-app"),
        "name": "dev-app",
        "kind": "iam_role",
        "account_id": dev.id,
        "account_name": "dev",
        "region": GLOBAL,
        "tags": {"owner": "team-dev", "inventory-groups": "dev-devs@example.com"},
        "errors": 0,
        "owner": "team-dev",
        "template": None,
        "findings": 0,  # not analysed yet (tests/tasks/test_findings.py)
        "severity": None,
    }
    assert rows[f"arn:aws:sqs:us-west-2:{dev.id}:dev-jobs"]["region"] == "us-west-2"

    iam = seeder.client("iam", dev.id)
    iam.delete_role_policy(RoleName="dev-worker-0", PolicyName="logs-0")
    iam.delete_role(RoleName="dev-worker-0")
    sync_iam_account(runtime, dev.id)

    assert dev.role_arn("dev-worker-0") not in table.rows()
    assert set(table.rows()) == set(cached_arns(runtime))


def test_account_sets_match_rows_and_follow_a_row_to_its_new_account(runtime, synced):
    table = runtime.policies_table
    rows = table.rows()
    client = runtime.redis
    for account in {str(r["account_id"]) for r in rows.values()}:
        members = client.smembers(table.account_key(account))
        assert members == {a for a, r in rows.items() if str(r["account_id"]) == account}
    # A bucket name is global: deleted in one account and created in another, its row moves.
    arn, row = next((a, r) for a, r in rows.items() if r["kind"] == "s3_bucket")
    other = "999999999999"
    try:
        table.upsert([row | {"account_id": other}])
        assert arn not in client.smembers(table.account_key(row["account_id"]))
        assert client.smembers(table.account_key(other)) == {arn}
    finally:
        table.upsert([row])
        client.delete(table.account_key(other))
    assert arn in client.smembers(table.account_key(row["account_id"]))


def test_rebuild_deletes_the_former_index_keys_and_nothing_else(runtime, synced):
    """Releases before 2026-12 kept facet sets and sorted sets nothing reads now."""
    table, client = runtime.policies_table, runtime.redis
    arn = next(iter(table.rows()))
    former = [
        f"{table.prefix}s:name",
        f"{table.prefix}s:last_updated",
        f"{table.prefix}f:kind:iam_role",
        f"{table.prefix}f:region:us-east-1",
        f"{table.prefix}f:has_errors",
    ]
    for key in former:
        if key.split(":")[-2] == "s":
            client.zadd(key, {arn: 1.0})
        else:
            client.sadd(key, arn)
    keys_before = {k for k in client.scan_iter(count=1_000) if k not in former}

    assert rebuild_policies_table(runtime)["obsolete_keys"] == len(former)

    assert not client.exists(*former)
    assert set(client.scan_iter(count=1_000)) == keys_before
    assert rebuild_policies_table(runtime)["obsolete_keys"] == 0


def test_rebuild_reports_no_drift_when_in_step_and_repairs_when_not(runtime, synced):
    table = runtime.policies_table
    assert rebuild_policies_table(runtime) == {
        "rows": table.count(),
        "fixed": 0,
        "removed": 0,
        "obsolete_keys": 0,
    }

    victim = next(iter(table.rows()))
    broken = table.rows()[victim] | {"name": "tampered", "account_name": "nope"}
    runtime.redis.hset(table.rows_key(), victim, json.dumps(broken))
    runtime.redis.hset(
        table.rows_key(),
        "arn:aws:iam::000000000000:role/orphan",
        json.dumps(broken | {"arn": "arn:aws:iam::000000000000:role/orphan"}),
    )

    result = rebuild_policies_table(runtime)

    assert result == {"rows": table.count(), "fixed": 1, "removed": 1, "obsolete_keys": 0}
    assert table.rows()[victim]["name"] != "tampered"
    assert "arn:aws:iam::000000000000:role/orphan" not in table.rows()


def test_config_resources_come_from_the_listing_fallback(runtime, synced):
    seeder, seeds = synced
    dev = seeds[0]
    summary = sync_kind(runtime, BY_STEM["resources_from_aws_config"], dev.id)
    assert set(summary["regions"]) == {"us-east-1", "us-west-2"}
    cached = runtime.redis_cache.items(Partition("config_resource", dev.id, "us-east-1"))
    buckets = {r["arn"] for r in cached.values() if r["resource_type"] == "AWS::S3::Bucket"}
    assert buckets >= {f"arn:aws:s3:::{b.name}" for b in dev.buckets if b.region == "us-east-1"}
    # Config resources never displace the primary record of the same ARN
    bucket_arn = f"arn:aws:s3:::{dev.buckets[0].name}"
    assert runtime.redis_cache.get(bucket_arn)["kind"] == "s3_bucket"


def test_last_success_ages_per_task_and_account(runtime, synced):
    from inventory.metrics import OK

    seeder, seeds = synced
    runtime.outcomes.record("cache_iam_resources_for_account", seeds[0].id, OK, 1000.0)
    ages = last_success_ages(runtime, now=1060.0)
    assert ages == {"cache_iam_resources_for_account": {seeds[0].id: 60.0}}
    assert set(IAM_KINDS) <= TABLE_KINDS


def test_rows_written_before_the_account_mapping_get_its_names_when_it_is_cached(
    runtime, moto_server
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    bucket = {"arn": "arn:aws:s3:::early", "kind": "s3_bucket", "name": "early"}
    runtime.store.replace_partition(
        "s3_bucket", dev.id, GLOBAL, [{**bucket, "account_id": dev.id}], complete=True
    )
    assert runtime.policies_table.rows()["arn:aws:s3:::early"]["account_name"] is None

    store_account_mapping(runtime)

    row = runtime.policies_table.rows()["arn:aws:s3:::early"]
    assert row["account_name"] == "dev"
    assert runtime.policies_table.client.smembers(runtime.policies_table.account_key(dev.id)) == {
        "arn:aws:s3:::early"
    }
    # The search index follows the stream: the renamed row is in its latest entry.
    _, latest = runtime.redis.xrevrange(runtime.keys.changes(), count=1)[0]
    assert json.loads(latest["rows"]) == [row]
    assert rebuild_policies_table(runtime)["fixed"] == 0


def test_config_resources_of_types_not_listed_directly_are_rows_with_their_config_history(
    runtime, synced
):
    seeder, seeds = synced
    dev = seeds[0]
    table = runtime.policies_table
    bucket = next(b for b in dev.buckets if b.region == "us-east-1")
    group = {
        "resourceType": "AWS::EC2::SecurityGroup",
        "resourceId": "sg-0123456789abcdef0",
        "resourceName": "web",
        "arn": f"arn:aws:ec2:us-east-1:{dev.id}:security-group/sg-0123456789abcdef0",
        "awsRegion": "us-east-1",
        "tags": [{"key": "owner", "value": "team-web"}],
        "configuration": {"groupName": "web"},
        "configurationItemCaptureTime": "2026-11-30T10:00:00.000Z",
    }
    also_a_bucket = {
        "resourceType": "AWS::S3::Bucket",
        "resourceId": bucket.name,
        "resourceName": bucket.name,
        "arn": f"arn:aws:s3:::{bucket.name}",
        "awsRegion": "us-east-1",
        "tags": [],
        "configuration": {"name": bucket.name},
    }
    records = [transform_resource(r, dev.id, "us-east-1") for r in (group, also_a_bucket)]
    runtime.store.replace_partition("config_resource", dev.id, "us-east-1", records, complete=True)

    row = table.rows()[group["arn"]]
    assert {k: v for k, v in row.items() if k != "last_updated"} == {
        "arn": group["arn"],
        "name": "web",
        "kind": "config_resource",
        "account_id": dev.id,
        "account_name": "dev",
        "region": "us-east-1",
        "tags": {"owner": "team-web"},
        "errors": 0,
        "owner": "team-web",
        "template": None,
        "findings": 0,
        "severity": None,
        "link": "https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1"
        "#/resources/timeline?resourceId=sg-0123456789abcdef0"
        "&resourceType=AWS%3A%3AEC2%3A%3ASecurityGroup",
    }
    # A type other kinds list directly keeps its own row (as ConsoleMe's table skipped them).
    assert table.rows()[also_a_bucket["arn"]]["kind"] == "s3_bucket"
    assert rebuild_policies_table(runtime)["fixed"] == 0

    # Config no longer records the bucket: the bucket's own row stays; the group's goes with it.
    runtime.store.replace_partition("config_resource", dev.id, "us-east-1", [], complete=True)
    assert table.rows()[also_a_bucket["arn"]]["kind"] == "s3_bucket"
    assert group["arn"] not in table.rows()
    rebuilt = rebuild_policies_table(runtime)
    assert rebuilt["fixed"] == rebuilt["removed"] == 0
