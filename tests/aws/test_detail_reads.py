"""Detail reads on a bounded pool: the serial listing, a bounded number in flight, throttling
absorbed by botocore's adaptive retries or, past them, a failed listing that deletes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inventory.aws import s3, sns, sqs
from inventory.aws.listing import SERIAL, DetailReads
from inventory.cache.keys import GLOBAL, Partition
from inventory.demo.seed import AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import account_record, store_account_mapping
from inventory.tasks.resources import RegionsFailed, sync_kind
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy

EXTRA_BUCKETS = 12


@pytest.fixture
def dev(runtime: Runtime, moto_server: Any) -> tuple[Seeder, AccountSeed]:
    """One member account with the demo's resources and a dozen more buckets."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seed = seeder.create_account(demo_account("dev", 0))
    client = seeder.client("s3", seed.id)
    for n in range(EXTRA_BUCKETS):
        client.create_bucket(Bucket=f"dev-extra-{n:02d}")
        client.put_bucket_tagging(
            Bucket=f"dev-extra-{n:02d}", Tagging={"TagSet": [{"Key": "n", "Value": str(n)}]}
        )
    # Two more queues and topics, so one deleted leaves some to read (and to throttle).
    for n in range(2):
        seeder.client("sqs", seed.id, "us-east-1").create_queue(QueueName=f"dev-extra-{n}")
        seeder.client("sns", seed.id, "us-east-1").create_topic(Name=f"dev-extra-{n}")
    store_account_mapping(runtime)
    return seeder, seed


@pytest.fixture
def proxy(moto_server: Any) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


def proxied(redis_server: Any, moto_server: Any, proxy: FaultProxy, **extra: str) -> Runtime:
    env = inventory_env(redis_server, moto_server, INVENTORY_AWS__ENDPOINT_URL=proxy.url, **extra)
    return Runtime(load_settings(paths=[], environ=env))


def s3_client(rt: Runtime, account_id: str) -> Any:
    return rt.account_client("s3", account_record(rt, account_id), "us-east-1")


def test_pooled_reads_list_what_serial_reads_do_with_at_most_the_pool_in_flight(
    dev, redis_server, moto_server, proxy
):
    _, seed = dev
    rt = proxied(redis_server, moto_server, proxy)
    client = s3_client(rt, seed.id)
    # Each tag read held long enough that reads started together are answered together.
    proxy.slow("GetBucketTagging", 0.2)
    serial = s3.collect_buckets(client, seed.id, GLOBAL, SERIAL)
    serial_in_flight = proxy.max_in_flight
    proxy.max_in_flight = 0

    with DetailReads(4) as reads:
        pooled = s3.collect_buckets(client, seed.id, GLOBAL, reads)

    assert pooled == serial
    assert len(pooled.records) == len(seed.buckets) + EXTRA_BUCKETS
    assert pooled.complete and not pooled.skipped
    assert serial_in_flight == 1
    assert 2 <= proxy.max_in_flight <= 4


def test_throttled_detail_reads_are_retried_adaptively_and_the_listing_completes(
    dev, redis_server, moto_server, proxy
):
    _, seed = dev
    rt = proxied(redis_server, moto_server, proxy, INVENTORY_AWS__MAX_ATTEMPTS="5")
    client = s3_client(rt, seed.id)
    assert client.meta.config.retries["mode"] == "adaptive"
    expected = s3.collect_buckets(client, seed.id, GLOBAL)
    before = proxy.count("GetBucketPolicy")
    throttle = proxy.fail("GetBucketPolicy", "SlowDown", 503, times=8)

    with DetailReads(4) as reads:
        listing = s3.collect_buckets(client, seed.id, GLOBAL, reads)

    assert throttle.hits == 8
    assert proxy.count("GetBucketPolicy") - before == len(expected.records) + 8
    assert listing == expected


@pytest.mark.parametrize(
    ("stem", "kind", "action", "code", "region"),
    [
        ("s3_buckets", s3.KIND, "GetBucketPolicy", "SlowDown", GLOBAL),
        ("sqs_queues", sqs.KIND, "GetQueueAttributes", "RequestThrottled", "us-east-1"),
        ("sns_topics", sns.KIND, "GetTopicAttributes", "Throttling", "us-east-1"),
    ],
)
def test_detail_reads_throttled_past_retries_fail_the_listing_and_delete_nothing(
    dev, runtime, redis_server, moto_server, proxy, stem, kind, action, code, region
):
    seeder, seed = dev
    rt = proxied(
        redis_server,
        moto_server,
        proxy,
        INVENTORY_AWS__MAX_ATTEMPTS="2",
        INVENTORY_AWS__DETAIL_READS="4",
    )
    sync_kind(rt, BY_STEM[stem], seed.id)
    partition = Partition(kind, seed.id, region)
    cached = rt.redis_cache.items(partition)
    assert cached
    # One resource deleted in AWS: a complete listing would remove it.
    gone = next(iter(cached.values()))
    if kind == s3.KIND:
        seeder.client("s3", seed.id).delete_bucket(Bucket=gone["name"])
    elif kind == sqs.KIND:
        seeder.client("sqs", seed.id, region).delete_queue(QueueUrl=gone["url"])
    else:
        seeder.client("sns", seed.id, region).delete_topic(TopicArn=gone["arn"])
    proxy.fail(action, code, 503 if kind == s3.KIND else 400)

    with pytest.raises((ClientError, RegionsFailed)):
        sync_kind(rt, BY_STEM[stem], seed.id)

    assert rt.redis_cache.items(partition) == cached
    assert set(rt.dynamo.items(partition)) == set(cached)
