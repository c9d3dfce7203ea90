"""Registry kinds (S3, SQS, SNS, managed policies) against moto and a real Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from inventory.aws.regions import EnabledRegions, get_enabled_regions
from inventory.cache.keys import GLOBAL, Partition
from inventory.demo.seed import REGIONS, AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.resources import RegionsFailed, sync_kind
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy


@pytest.fixture
def org(runtime: Runtime, moto_server) -> tuple[Seeder, list[AccountSeed]]:
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
    store_account_mapping(runtime)
    return seeder, seeds


def items(rt: Runtime, kind: str, account: str, region: str = GLOBAL) -> dict:
    return rt.redis_cache.items(Partition(kind, account, region))


def expected_buckets(seed: AccountSeed) -> dict:
    return {
        f"arn:aws:s3:::{b.name}": {
            "arn": f"arn:aws:s3:::{b.name}",
            "kind": "s3_bucket",
            "account_id": seed.id,
            "name": b.name,
            "region": b.region,
            "tags": b.tags,
            "policy": b.policy,
        }
        for b in seed.buckets
    }


def test_s3_buckets_cached_with_region_tags_and_policy(runtime, org):
    seeder, seeds = org
    for seed in seeds:
        sync_kind(runtime, BY_STEM["s3_buckets"], seed.id)
    for seed in seeds:
        cached = items(runtime, "s3_bucket", seed.id)
        listed = {
            b["Name"]: b["CreationDate"]
            for b in seeder.client("s3", seed.id).list_buckets()["Buckets"]
        }
        assert {a: {k: v for k, v in r.items() if k != "created"} for a, r in cached.items()} == (
            expected_buckets(seed)
        )
        assert {r["name"]: r["created"] for r in cached.values()} == {
            n: d.isoformat().replace("+00:00", "Z") for n, d in listed.items()
        }
        # a bucket without a policy is not an error: policy is None
        assert cached[f"arn:aws:s3:::{seed.buckets[1].name}"]["policy"] is None


def test_sqs_queues_cached_per_region_with_policy_redrive_and_tags(runtime, org):
    seeder, seeds = org
    dev = seeds[0]
    summary = sync_kind(runtime, BY_STEM["sqs_queues"], dev.id)
    assert set(summary["regions"]) == set(REGIONS)
    for region in REGIONS:
        cached = items(runtime, "sqs_queue", dev.id, region)
        expected_arns = {dev.queue_arn(q) for q in dev.queues if q.region == region}
        assert set(cached) == expected_arns
        jobs = cached[f"arn:aws:sqs:{region}:{dev.id}:dev-jobs"]
        sqs = seeder.client("sqs", dev.id, region)
        url = sqs.get_queue_url(QueueName="dev-jobs")["QueueUrl"]
        created = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["CreatedTimestamp"])
        assert jobs == {
            "arn": f"arn:aws:sqs:{region}:{dev.id}:dev-jobs",
            "kind": "sqs_queue",
            "account_id": dev.id,
            "region": region,
            "name": "dev-jobs",
            "url": url,
            "policy": next(q.policy for q in dev.queues if q.name == "dev-jobs"),
            "kms_key": None,
            "sqs_managed_sse": True,
            "redrive_policy": {
                "deadLetterTargetArn": f"arn:aws:sqs:{region}:{dev.id}:dev-jobs-dlq",
                "maxReceiveCount": 5,
            },
            "fifo": False,
            "visibility_timeout": 30,
            "retention_seconds": 345600,
            # SQS answers epoch seconds; every record's timestamps are ISO-8601 in UTC.
            "created": datetime.fromtimestamp(float(created["Attributes"]["CreatedTimestamp"]), UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "tags": {"service": "jobs"},
        }


def test_sns_topics_cached_per_region(runtime, org):
    seeder, seeds = org
    dev = seeds[0]
    sync_kind(runtime, BY_STEM["sns_topics"], dev.id)
    for region in REGIONS:
        cached = items(runtime, "sns_topic", dev.id, region)
        arn = f"arn:aws:sns:{region}:{dev.id}:dev-events"
        assert set(cached) == {arn}
        policy = json.loads(
            seeder.client("sns", dev.id, region).get_topic_attributes(TopicArn=arn)["Attributes"][
                "Policy"
            ]
        )
        assert cached[arn] == {
            "arn": arn,
            "kind": "sns_topic",
            "account_id": dev.id,
            "region": region,
            "name": "dev-events",
            "display_name": None,
            "policy": policy,
            "kms_key": None,
            "fifo": False,
            "tags": {"service": "events"},
        }


def test_failing_region_keeps_its_cache_while_other_regions_update(
    runtime, org, redis_server, moto_server
):
    seeder, seeds = org
    dev = seeds[0]
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            INVENTORY_AWS__MAX_ATTEMPTS="1",
        )
        rt = Runtime(load_settings(paths=[], environ=env))
        sync_kind(rt, BY_STEM["sqs_queues"], dev.id)
        before_west = items(rt, "sqs_queue", dev.id, "us-west-2")
        for region in REGIONS:
            sqs = seeder.client("sqs", dev.id, region)
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="dev-jobs")["QueueUrl"])
        proxy.fail("ListQueues", "AccessDenied", 403, region="us-west-2")

        with pytest.raises(RegionsFailed) as failed:
            sync_kind(rt, BY_STEM["sqs_queues"], dev.id)

        assert set(failed.value.failures) == {"us-west-2"}
        assert failed.value.retryable is False
        assert items(rt, "sqs_queue", dev.id, "us-west-2") == before_west
        assert set(items(rt, "sqs_queue", dev.id, "us-east-1")) == {
            f"arn:aws:sqs:us-east-1:{dev.id}:dev-jobs-dlq"
        }
    finally:
        proxy.stop()


def test_regions_are_read_at_once_and_a_failing_one_keeps_its_cache(
    runtime, org, redis_server, moto_server
):
    seeder, seeds = org
    dev = seeds[0]
    proxy = FaultProxy(moto_server.url).start()
    try:

        def at(detail_reads: str) -> Runtime:
            env = inventory_env(
                redis_server,
                moto_server,
                INVENTORY_AWS__ENDPOINT_URL=proxy.url,
                INVENTORY_AWS__MAX_ATTEMPTS="1",
                INVENTORY_AWS__DETAIL_READS=detail_reads,
            )
            return Runtime(load_settings(paths=[], environ=env))

        # The serial path (detail_reads 1) lists one region after the other...
        proxy.slow("ListQueues", 0.3)
        sync_kind(at("1"), BY_STEM["sqs_queues"], dev.id)
        assert proxy.max_held["ListQueues"] == 1
        # ... the default pool lists both regions at once.
        proxy.max_held.clear()
        rt = at("16")
        sync_kind(rt, BY_STEM["sqs_queues"], dev.id)
        assert proxy.max_held["ListQueues"] == len(REGIONS)

        before_west = items(rt, "sqs_queue", dev.id, "us-west-2")
        for region in REGIONS:
            sqs = seeder.client("sqs", dev.id, region)
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="dev-jobs")["QueueUrl"])
        proxy.clear()
        proxy.fail("ListQueues", "AccessDenied", 403, region="us-west-2")
        with pytest.raises(RegionsFailed) as failed:
            sync_kind(rt, BY_STEM["sqs_queues"], dev.id)

        assert set(failed.value.failures) == {"us-west-2"}
        assert items(rt, "sqs_queue", dev.id, "us-west-2") == before_west
        assert set(items(rt, "sqs_queue", dev.id, "us-east-1")) == {
            f"arn:aws:sqs:us-east-1:{dev.id}:dev-jobs-dlq"
        }
    finally:
        proxy.stop()


def test_enabled_regions_asked_once_for_every_regional_sync_of_an_account(
    runtime, org, redis_server, moto_server
):
    _, seeds = org
    dev = seeds[0]
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            INVENTORY_AWS__REGIONS="[]",
        )
        rt = Runtime(load_settings(paths=[], environ=env))
        enabled = get_enabled_regions(rt.account_client("ec2", {"id": dev.id}, "us-east-1"))
        proxy.calls.clear()
        queues = sync_kind(rt, BY_STEM["sqs_queues"], dev.id)
        topics = sync_kind(rt, BY_STEM["sns_topics"], dev.id)

        assert sorted(queues["regions"]) == sorted(topics["regions"]) == enabled
        assert proxy.count("DescribeRegions") == 1
        # Once they are no longer taken as known, the next sync asks again.
        rt.enabled_regions = EnabledRegions(seconds=0)
        sync_kind(rt, BY_STEM["sns_topics"], dev.id)
        assert proxy.count("DescribeRegions") == 2
    finally:
        proxy.stop()


def test_deleted_bucket_goes_and_steady_state_writes_nothing(runtime, org):
    seeder, seeds = org
    dev = seeds[0]
    kind = BY_STEM["s3_buckets"]
    sync_kind(runtime, kind, dev.id)
    again = sync_kind(runtime, kind, dev.id)["regions"][GLOBAL]
    assert (again["dynamo_writes"], again["s3_objects"]) == (0, 0)

    seeder.client("s3", dev.id, "us-west-2").delete_bucket(Bucket=dev.buckets[1].name)
    after = sync_kind(runtime, kind, dev.id)["regions"][GLOBAL]

    assert after["removed"] == 1
    assert set(items(runtime, "s3_bucket", dev.id)) == {f"arn:aws:s3:::{dev.buckets[0].name}"}
    assert set(runtime.dynamo.items(Partition("s3_bucket", dev.id))) == {
        f"arn:aws:s3:::{dev.buckets[0].name}"
    }


def _delete_one(seeder: Seeder, seed: AccountSeed, stem: str) -> tuple[str, str]:
    """Delete one resource of the kind in AWS; returns (region of its partition, its ARN)."""
    if stem == "sqs_queues":
        sqs = seeder.client("sqs", seed.id, "us-west-2")
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{seed.name}-jobs")["QueueUrl"])
        return "us-west-2", f"arn:aws:sqs:us-west-2:{seed.id}:{seed.name}-jobs"
    if stem == "sns_topics":
        arn = f"arn:aws:sns:us-west-2:{seed.id}:{seed.name}-events"
        seeder.client("sns", seed.id, "us-west-2").delete_topic(TopicArn=arn)
        return "us-west-2", arn
    if stem == "managed_policies":
        iam = seeder.client("iam", seed.id)
        arn = seed.policy_arn(f"{seed.name}-queue-access")
        iam.detach_role_policy(RoleName=f"{seed.name}-app", PolicyArn=arn)
        iam.detach_group_policy(GroupName=f"{seed.name}-admins", PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)  # detached, it would still be offered
        return GLOBAL, arn
    if stem == "resources_from_aws_config":
        bucket = next(b for b in seed.buckets if b.region == "us-east-1")
        seeder.client("s3", seed.id).delete_bucket(Bucket=bucket.name)
        return "us-east-1", f"arn:aws:s3:::{bucket.name}"
    raise AssertionError(stem)


KIND_OF = {
    "sqs_queues": "sqs_queue",
    "sns_topics": "sns_topic",
    "managed_policies": "managed_policy",
    "resources_from_aws_config": "config_resource",
}


@pytest.mark.parametrize("stem", sorted(KIND_OF))
def test_steady_state_writes_nothing_and_deleted_resource_goes(runtime, org, stem):
    seeder, seeds = org
    kind = BY_STEM[stem]
    for seed in seeds:
        sync_kind(runtime, kind, seed.id)
    for seed in seeds:
        again = sync_kind(runtime, kind, seed.id)["regions"]
        assert {r: (s["dynamo_writes"], s["s3_objects"]) for r, s in again.items()} == {
            r: (0, 0) for r in again
        }
    dev, prod = seeds
    region, arn = _delete_one(seeder, dev, stem)
    prod_before = {
        r: items(runtime, KIND_OF[stem], prod.id, r)
        for r in ([GLOBAL] if region == GLOBAL else REGIONS)
    }
    assert arn in items(runtime, KIND_OF[stem], dev.id, region)

    result = sync_kind(runtime, kind, dev.id)["regions"][region]

    assert result["removed"] == 1
    assert arn not in items(runtime, KIND_OF[stem], dev.id, region)
    assert arn not in runtime.dynamo.items(Partition(KIND_OF[stem], dev.id, region))
    assert {r: items(runtime, KIND_OF[stem], prod.id, r) for r in prod_before} == prod_before


def test_kinds_sharing_an_arn_keep_separate_durable_copies(runtime, org):
    """A customer managed policy is an iam_policy and a managed_policy: two DynamoDB items."""
    from inventory.tasks.iam import sync_iam_account

    _, seeds = org
    dev = seeds[0]
    sync_iam_account(runtime, dev.id)
    sync_kind(runtime, BY_STEM["managed_policies"], dev.id)
    shared = dev.policy_arn(f"{dev.name}-queue-access")

    for kind in ("iam_policy", "managed_policy"):
        p = Partition(kind, dev.id)
        durable = runtime.dynamo.items(p)
        assert shared in durable
        assert durable == runtime.redis_cache.items(p)
        assert durable[shared]["kind"] == kind

    # Neither sync overwrites the other's item, so a second round writes nothing.
    assert sync_iam_account(runtime, dev.id)["dynamo_writes"] == 0
    again = sync_kind(runtime, BY_STEM["managed_policies"], dev.id)
    assert again["regions"][GLOBAL]["dynamo_writes"] == 0
