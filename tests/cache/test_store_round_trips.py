"""A listing's partitions wait on AWS round trips together, not one after another: their state
loads (conditional PutItem claims), BatchWriteItem calls (at most dynamodb.write_concurrency in
flight) and publications (S3 snapshots and manifests). Measured at the fault proxy, which holds
each matching request and counts how many it held at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inventory.cache.keys import GLOBAL, IAM_KINDS
from inventory.cache.store import PartitionWrite
from inventory.runtime import Runtime
from inventory.settings import load_settings
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy

ACCOUNT = "111122223333"
HOLD = 0.25  # seconds each held request waits: requests sent together overlap


@pytest.fixture
def proxy(moto_server: Any) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


def proxied(runtime: Runtime, redis_server, moto_server, proxy, **extra: str) -> Runtime:
    """The ``runtime`` fixture's tables and bucket, reached through the proxy."""
    env = inventory_env(redis_server, moto_server, INVENTORY_AWS__ENDPOINT_URL=proxy.url, **extra)
    return Runtime(load_settings(paths=[], environ=env))


def listing(per_kind: int) -> list[PartitionWrite]:
    """One account's four IAM partitions, ``per_kind`` records each."""
    return [
        PartitionWrite(
            kind,
            ACCOUNT,
            GLOBAL,
            [{"arn": f"arn:aws:iam::{ACCOUNT}:{kind}/n{n}", "n": n} for n in range(per_kind)],
            complete=True,
        )
        for kind in IAM_KINDS
    ]


def test_a_listings_partitions_claim_and_publish_at_once_and_store_what_one_at_a_time_would(
    runtime, redis_server, moto_server, proxy
):
    rt = proxied(runtime, redis_server, moto_server, proxy)
    proxy.slow("PutItem", HOLD)  # the first-write claims, then the manifests
    proxy.slow("PutObject", HOLD)  # the snapshots
    rt.store  # noqa: B018 - the runtime's own start-up calls (key migration) are not counted
    put_items = proxy.count("PutItem")

    results = rt.store.replace_partitions(listing(3))

    assert proxy.max_held["PutItem"] == len(IAM_KINDS)
    assert proxy.max_held["PutObject"] == len(IAM_KINDS)
    assert proxy.count("PutItem") - put_items == 2 * len(IAM_KINDS)  # a claim and a manifest each
    for write, result in zip(listing(3), results, strict=True):
        p = write.partition
        assert (result.kind, result.created, result.s3_objects) == (write.kind, 3, 1)
        cached = rt.redis_cache.items(p)
        assert len(cached) == 3
        assert rt.dynamo.items(p) == cached
        assert rt.s3.get(p)["data"] == cached
        assert rt.replication.manifest(p).count == 3


@pytest.mark.parametrize("concurrency", [1, 3])
def test_batch_writes_in_flight_never_exceed_the_write_concurrency_setting(
    concurrency, runtime, redis_server, moto_server, proxy
):
    rt = proxied(
        runtime,
        redis_server,
        moto_server,
        proxy,
        INVENTORY_DYNAMODB__WRITE_CONCURRENCY=str(concurrency),
    )
    proxy.slow("BatchWriteItem", HOLD)
    rt.store  # noqa: B018 - made before counting

    rt.store.replace_partitions(listing(40))  # 160 items: 7 batches of at most 25 per table

    assert proxy.count("BatchWriteItem") >= 7
    assert proxy.max_held["BatchWriteItem"] == concurrency
    assert sum(len(rt.dynamo.items(w.partition)) for w in listing(40)) == 160
