"""Two deployments, one active and one secondary, sharing one moto server as the global tables.

Each deployment has its own real redis-server. The secondary's AWS endpoint is a counting
proxy in front of moto, so every call it makes is seen: it may read the (replicated) DynamoDB
tables, and nothing else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from inventory.cache.keys import IAM_ROLE, Partition
from inventory.celery_app import create_app
from inventory.demo.seed import AccountSeed, Seeder, demo_account
from inventory.registry import KINDS, SYNCS
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.metrics import active_only_tasks
from tests.conftest import CACHE_DB, inventory_env
from tests.faultproxy import FaultProxy
from tests.servers import RedisServer

# The only calls a secondary region may make: reads (and table checks) of the DynamoDB tables.
DYNAMODB_READS = {"DescribeTable", "Query", "BatchGetItem", "GetItem", "Scan"}
# Every kind the registry declares, AWS Config included (it lists global IAM resources in
# every region it records: the case where two partitions hold the same ARN).
STEMS = tuple(s.stem for s in SYNCS if s.stem != "iam_resources")
REGIONS = ("us-east-1", "us-west-2")  # INVENTORY_AWS__REGIONS in tests/conftest.py


@pytest.fixture(scope="module")
def secondary_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-secondary")).start()
    yield server
    server.stop()


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


@pytest.fixture
def active(runtime: Runtime, settings):
    app = create_app(settings)
    app.runtime = runtime
    return app


@pytest.fixture
def secondary(redis_server, moto_server, secondary_redis, proxy):
    redis.Redis(port=secondary_redis.port).flushall()
    env = inventory_env(
        redis_server,
        moto_server,
        INVENTORY_REGION="eu-west-1",
        INVENTORY_REDIS__URL=secondary_redis.url(CACHE_DB),
        INVENTORY_AWS__ENDPOINT_URL=proxy.url,
        # One moto region stands in for the local replica of every global table.
        INVENTORY_DYNAMODB__REGION="us-east-1",
    )
    settings = load_settings(paths=[], environ=env)
    assert not settings.is_active_region
    app = create_app(settings)
    app.runtime = Runtime(settings)
    return app


@pytest.fixture
def org(runtime: Runtime, moto_server) -> tuple[Seeder, list[AccountSeed]]:
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
    return seeder, seeds


def run(app, name: str, *args: str) -> dict:
    result = app.tasks[f"inventory.{name}"].apply(args=args)
    assert result.successful(), result.traceback
    return result.result


def sweep_active(app, accounts: list[str]) -> None:
    """The active region's sweep, every per-account task run in-process."""
    run(app, "cache_cloud_account_mapping")
    for account in accounts:
        run(app, "cache_iam_resources_for_account", account)
        for stem in STEMS:
            run(app, f"cache_{stem}_for_account", account)


def sweep_secondary(app) -> dict[str, dict]:
    """The secondary region's beat entries: the same fan-outs, which follow instead of fetch."""
    results = {"accounts": run(app, "cache_cloud_account_mapping")}
    results["iam"] = run(app, "cache_iam_resources_across_accounts")
    for stem in STEMS:
        results[stem] = run(app, f"cache_{stem}_across_accounts")
    return results


def durable_kinds() -> set[str]:
    from inventory.aws.managed_policies import AWS_DOCUMENT_KIND
    from inventory.cache.keys import ACCOUNT, IAM_KINDS

    kinds = {ACCOUNT, AWS_DOCUMENT_KIND, *IAM_KINDS}
    kinds |= {k.kind for k in KINDS if k.durable}
    return kinds


def snapshot(rt: Runtime) -> dict[str, dict[str, dict]]:
    """Every cached record of the replicated kinds, by partition id."""
    return {
        p.id: rt.redis_cache.items(p)
        for p in rt.redis_cache.partitions()
        if p.kind in durable_kinds()
    }


def test_secondary_follows_the_active_region_without_calling_aws(active, secondary, org, proxy):
    seeder, seeds = org
    accounts = [s.id for s in seeds]
    sweep_active(active, accounts)
    primary = snapshot(active.runtime)
    roles = {p for p in primary if p.startswith(IAM_ROLE)}
    assert len(roles) == 2 and all(primary[p] for p in roles)

    proxy.calls.clear()
    results = sweep_secondary(secondary)

    assert snapshot(secondary.runtime) == primary
    assert secondary.runtime.redis.smembers(secondary.runtime.keys.replica_pending()) == set()
    # AWS Config lists the same global roles in both regions; they are kept in us-east-1 only.
    config = [Partition.parse(p) for p in primary if p.startswith("config_resource|")]
    assert len(config) == 4  # 2 accounts x 2 regions
    for account in accounts:
        east, west = (primary[Partition("config_resource", account, r).id] for r in REGIONS)
        assert REGIONS[0] == "us-east-1"
        assert any(":role/" in arn for arn in east) and not any(":role/" in arn for arn in west)
    assert all(c.equal for c in active.runtime.verifier.check_all(durable_kinds()))
    assert set(proxy.calls) <= DYNAMODB_READS, sorted(set(proxy.calls) - DYNAMODB_READS)
    assert proxy.count("BatchGetItem") > 0  # it really read the replicated tables
    assert results["iam"]["followed"][IAM_ROLE]["partitions"] == 2
    # The web's search index on the secondary was fed too (the same listeners run).
    pt = secondary.runtime.policies_table
    assert secondary.runtime.redis.hlen(pt.rows_key()) > 0

    # A second round with nothing new reads only the log: no partition index, no documents.
    proxy.calls.clear()
    again = sweep_secondary(secondary)
    assert again["iam"]["followed"][IAM_ROLE]["partitions"] == 0
    assert proxy.count("BatchGetItem") == 0

    # The active region changes one role's inline policy and loses a queue.
    dev = seeds[0]
    iam = seeder.client("iam", dev.id)
    role = dev.roles[0]
    changed = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName=role.name, PolicyName="changed", PolicyDocument=json.dumps(changed)
    )
    sqs = seeder.client("sqs", dev.id, "us-west-2")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{dev.name}-jobs")["QueueUrl"])
    queue_arn = f"arn:aws:sqs:us-west-2:{dev.id}:{dev.name}-jobs"
    sweep_active(active, accounts)
    primary = snapshot(active.runtime)
    role_arn = dev.role_arn(role.name)
    role_partition = Partition(IAM_ROLE, dev.id).id
    assert "changed" in json.dumps(primary[role_partition][role_arn])
    assert queue_arn not in primary[Partition("sqs_queue", dev.id, "us-west-2").id]

    proxy.calls.clear()
    results = sweep_secondary(secondary)

    mirrored = snapshot(secondary.runtime)
    assert mirrored == primary
    assert secondary.runtime.redis.smembers(secondary.runtime.keys.replica_pending()) == set()
    assert mirrored[role_partition][role_arn] == primary[role_partition][role_arn]
    assert queue_arn not in mirrored[Partition("sqs_queue", dev.id, "us-west-2").id]
    assert secondary.runtime.redis_cache.get(queue_arn) is None
    assert set(proxy.calls) <= DYNAMODB_READS
    followed = results["iam"]["followed"][IAM_ROLE]
    assert (followed["partitions"], followed["upserted"], followed["removed"]) == (1, 1, 0)
    assert followed["pending"] == 0
    assert results["sqs_queues"]["followed"]["sqs_queue"]["removed"] == 1


def test_secondary_reports_the_active_regions_freshness(active, secondary, org, proxy):
    _, seeds = org
    accounts = [s.id for s in seeds]
    sweep_active(active, accounts)
    run(active, "report_celery_last_success_metrics")
    active_status = {
        (s.task, s.account_id): s.last_success
        for s in active.runtime.outcomes.status()
        if s.task in active_only_tasks(active)
    }
    assert ("cache_iam_resources_for_account", accounts[0]) in active_status

    time.sleep(0.05)
    proxy.calls.clear()
    run(secondary, "report_celery_last_success_metrics")

    imported = {(s.task, s.account_id): s.last_success for s in secondary.runtime.outcomes.status()}
    # The secondary's freshness is the active region's write time, not its own.
    assert {k: imported[k] for k in active_status} == active_status
    assert set(proxy.calls) <= DYNAMODB_READS
    # Its own tasks are told apart: they never mask a stalled active region.
    run(secondary, "cache_iam_resources_across_accounts")
    after = {(s.task, s.account_id): s.last_success for s in secondary.runtime.outcomes.status()}
    assert (
        after[("cache_iam_resources_for_account", accounts[0])]
        == active_status[("cache_iam_resources_for_account", accounts[0])]
    )
    assert ("cache_iam_resources_across_accounts.replica", "all") in after


def test_secondary_never_prunes_or_calls_aws_for_active_only_tasks(secondary, proxy):
    proxy.calls.clear()
    result = run(secondary, "clear_old_redis_iam_cache")
    assert result["skipped"]
    assert proxy.calls == []


def test_manifest_ahead_of_its_items_waits_until_they_replicate(active, secondary):
    """Global tables replicate each table on its own: a manifest may arrive before its items."""
    from inventory.cache.store import canonical_json, content_hash, partition_digest

    def follow_kind(rt: Runtime, kind: str) -> dict[str, int]:
        return rt.replica.follow_kind(kind)

    from inventory.settings import ReplicationSettings

    # No overlap at all: only the pending set can bring the late item in.
    settings = secondary.runtime.settings.model_copy(
        update={"replication": ReplicationSettings(overlap_seconds=0)}
    )
    secondary.runtime = Runtime(settings)
    account, arn = "111122223333", "arn:aws:iam::111122223333:role/app"
    v1 = {"arn": arn, "kind": IAM_ROLE, "name": "app", "description": "v1"}
    v2 = v1 | {"description": "v2"}
    p = Partition(IAM_ROLE, account)
    active.runtime.store.replace_partition(IAM_ROLE, account, "global", [v1], complete=True)
    follow_kind(secondary.runtime, IAM_ROLE)
    assert secondary.runtime.redis_cache.item(p, arn) == v1

    # v2's manifest has replicated, its item not yet.
    v2_hash = content_hash(canonical_json(v2))
    digest = partition_digest({arn: v2_hash})
    active.runtime.replication.put_manifest(p, digest, 1, True, time.time())
    waiting = follow_kind(secondary.runtime, IAM_ROLE)
    assert waiting["pending"] == 1
    assert secondary.runtime.redis_cache.item(p, arn) == v1
    assert secondary.runtime.redis_cache.meta(p).manifest_digest != digest

    # Long after the cursor moved past the manifest, the item arrives: the next round takes it.
    active.runtime.dynamo.write(p, {arn: (canonical_json(v2), v2_hash)}, [], time.time())
    later = follow_kind(secondary.runtime, IAM_ROLE)
    assert (later["pending"], later["upserted"]) == (0, 1)
    assert secondary.runtime.redis_cache.item(p, arn) == v2
    assert follow_kind(secondary.runtime, IAM_ROLE)["partitions"] == 0
    # The secondary's first load was not "created" history; the v1 -> v2 change is.
    feed, _ = secondary.runtime.history.feed(account_id=account)
    assert [(c.change, c.diff) for c in feed] == [
        ("updated", [{"op": "replace", "path": "/description", "old": "v1", "new": "v2"}])
    ]
