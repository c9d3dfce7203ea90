"""replace_partition against a real Redis and DynamoDB/S3 in a moto server."""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest
from pynamodb.signals import pre_dynamodb_send

from inventory.cache.keys import GLOBAL, Partition
from inventory.cache.store import canonical_json, content_hash
from inventory.runtime import Runtime

KIND = "iam_role"
ACCOUNT = "111122223333"


def record(n: int, version: int = 1) -> dict:
    return {"arn": f"arn:aws:iam::{ACCOUNT}:role/r{n}", "name": f"r{n}", "version": version}


@pytest.fixture
def dynamo_calls():
    """Counts DynamoDB operations as PynamoDB sends them (its own signal, not a mock)."""
    calls: Counter[str] = Counter()

    def count(sender, operation_name, table_name, req_uuid):
        calls[operation_name] += 1
        calls[f"{operation_name}:{table_name}"] += 1

    pre_dynamodb_send.connect(count)
    yield calls
    pre_dynamodb_send.disconnect(count)


def replace(rt: Runtime, records, complete=True, keep=()):
    return rt.store.replace_partition(KIND, ACCOUNT, GLOBAL, records, complete=complete, keep=keep)


def test_first_write_batches_dynamo_calls_by_25(runtime, dynamo_calls):
    records = [record(n) for n in range(130)]
    dynamo_calls.clear()

    result = replace(runtime, records)

    assert result.created == 130 and result.dynamo_writes == 130
    assert dynamo_calls["BatchWriteItem"] == math.ceil(130 / 25)
    # PutItem only for the partition's manifests in the replication log (the "writing" one
    # before the first items, the real one after), never for an item.
    assert dynamo_calls["PutItem"] == dynamo_calls["PutItem:test_replication"] == 2
    p = Partition(KIND, ACCOUNT)
    assert runtime.redis_cache.items(p) == {r["arn"]: r for r in records}
    assert runtime.dynamo.items(p) == {r["arn"]: r for r in records}


def test_unchanged_listing_writes_nothing_and_only_changes_are_written(runtime, dynamo_calls):
    records = [record(n) for n in range(30)]
    replace(runtime, records)
    dynamo_calls.clear()

    same = replace(runtime, records)
    assert (same.dynamo_writes, same.s3_objects, dynamo_calls["BatchWriteItem"]) == (0, 0, 0)

    records[3] = record(3, version=2)
    changed = replace(runtime, records)
    assert (changed.created, changed.updated, changed.removed) == (0, 1, 0)
    assert changed.dynamo_writes == 1 and changed.s3_objects == 1
    assert runtime.redis_cache.get(records[3]["arn"]) == record(3, version=2)


def test_incomplete_listing_removes_nothing(runtime):
    replace(runtime, [record(n) for n in range(5)])

    result = replace(runtime, [record(0), record(1, version=9)], complete=False)

    p = Partition(KIND, ACCOUNT)
    assert result.removed == 0 and result.updated == 1
    assert set(runtime.redis_cache.items(p)) == {record(n)["arn"] for n in range(5)}
    assert set(runtime.dynamo.items(p)) == {record(n)["arn"] for n in range(5)}
    assert runtime.redis_cache.meta(p).complete is False
    assert runtime.redis_cache.meta(p).count == 5
    # The snapshot holds the whole cached partition, not just the partial listing.
    assert set(runtime.s3.get(p)["data"]) == {record(n)["arn"] for n in range(5)}


def test_complete_listing_removes_missing_but_keeps_named_bad_records(runtime):
    replace(runtime, [record(n) for n in range(4)])

    result = replace(runtime, [record(0)], keep=[record(1)["arn"]])

    p = Partition(KIND, ACCOUNT)
    assert result.removed == 2
    assert set(runtime.redis_cache.items(p)) == {record(0)["arn"], record(1)["arn"]}
    assert set(runtime.dynamo.items(p)) == {record(0)["arn"], record(1)["arn"]}
    assert runtime.redis_cache.get(record(2)["arn"]) is None


def test_cold_redis_reloads_hashes_from_dynamo_instead_of_rewriting(runtime, dynamo_calls):
    records = [record(n) for n in range(10)]
    replace(runtime, records)
    runtime.redis.flushdb()
    dynamo_calls.clear()

    result = replace(runtime, records[:8])

    assert result.dynamo_writes == 2  # only the two deletions
    assert result.removed == 2
    # One call for the two deletions, one for their history (old versions read from DynamoDB).
    assert dynamo_calls["BatchWriteItem"] == 2
    for gone in records[8:]:
        (change,) = runtime.history.for_resource(KIND, gone["arn"])
        assert change.change == "deleted"
        assert {op["path"]: op["old"] for op in change.diff}["/name"] == gone["name"]
    p = Partition(KIND, ACCOUNT)
    assert runtime.redis_cache.items(p) == {r["arn"]: r for r in records[:8]}
    assert set(runtime.dynamo.items(p)) == {r["arn"] for r in records[:8]}


def test_redis_write_is_one_transaction_per_partition(runtime):
    """Readers never see a half-applied partition: MULTI ... EXEC around every change."""
    replace(runtime, [record(n) for n in range(3)])
    monitor_client = runtime.redis.connection_pool.get_connection()
    try:
        monitor_client.send_command("MONITOR")
        assert monitor_client.read_response() in (b"OK", "OK")
        replace(runtime, [record(0, version=2), record(5)])
        seen = []
        while True:
            line = str(monitor_client.read_response())
            seen.append(line)
            if '"EXEC"' in line or '"exec"' in line:
                break
    finally:
        monitor_client.disconnect()
    writes = [line for line in seen if any(f'"{c}"' in line for c in ("HSET", "HDEL", "ZADD"))]
    multi = next(i for i, line in enumerate(seen) if '"MULTI"' in line)
    assert writes and all(seen.index(w) > multi for w in writes)


def test_large_document_is_stored_compressed_and_read_back(runtime):
    big = {"arn": f"arn:aws:iam::{ACCOUNT}:role/big", "blob": "x" * 400_000}
    replace(runtime, [big])
    p = Partition(KIND, ACCOUNT)
    item = runtime.dynamo.model(KIND).get(big["arn"], ACCOUNT)
    assert item.data is None and item.dataZ is not None
    assert runtime.dynamo.items(p) == {big["arn"]: big}
    assert item.contentHash == content_hash(canonical_json(big))


def test_store_without_bucket_skips_s3(settings, clean):
    rt = Runtime(
        settings.model_copy(update={"s3": settings.s3.model_copy(update={"bucket": None})})
    )
    rt.ensure_tables()
    result = replace(rt, [record(1)])
    assert result.s3_objects == 0 and rt.s3 is None


def test_volatile_fields_do_not_count_as_changes(runtime):
    arn = f"arn:aws:s3:::{ACCOUNT}-bucket"
    first = {"arn": arn, "resource_type": "AWS::S3::Bucket", "captured": "2026-01-01T00:00:00Z"}
    store = runtime.store
    store.replace_partition("config_resource", ACCOUNT, "us-east-1", [first], complete=True)

    moved = first | {"captured": "2026-01-02T00:00:00Z"}
    same = store.replace_partition("config_resource", ACCOUNT, "us-east-1", [moved], complete=True)
    changed = store.replace_partition(
        "config_resource", ACCOUNT, "us-east-1", [moved | {"resource_type": "x"}], complete=True
    )

    assert (same.updated, same.dynamo_writes) == (0, 0)
    assert (changed.updated, changed.dynamo_writes) == (1, 1)


def test_unchanged_items_are_rewritten_before_their_dynamodb_ttl_runs_out(runtime):
    """An unchanged resource is never written again, so its TTL must be renewed on a cycle."""
    from inventory.cache.store import Store

    now = [1_800_000_000.0]
    store = Store(
        runtime.redis_cache, runtime.dynamo, clock=lambda: now[0], history=runtime.history
    )
    records = [record(n) for n in range(30)]
    p = Partition(KIND, ACCOUNT)

    def ttls() -> set[float]:
        return {runtime.dynamo.model(KIND).get(r["arn"], ACCOUNT).ttl.timestamp() for r in records}

    store.replace_partition(KIND, ACCOUNT, GLOBAL, records, complete=True)
    first = ttls()
    now[0] += 9 * 86400  # under a third of the 30-day TTL: nothing to do
    assert store.replace_partition(KIND, ACCOUNT, GLOBAL, records, complete=True).dynamo_writes == 0
    now[0] += 2 * 86400  # past it: every listed item is written again, nothing "changed"
    renewed = store.replace_partition(KIND, ACCOUNT, GLOBAL, records, complete=True)
    assert (renewed.dynamo_writes, renewed.created, renewed.updated) == (30, 0, 0)
    assert min(ttls()) > max(first) + 10 * 86400
    assert all(runtime.history.for_resource(KIND, r["arn"]) == [] for r in records)
    now[0] += 86400
    assert store.replace_partition(KIND, ACCOUNT, GLOBAL, records, complete=True).dynamo_writes == 0
    # With Redis lost, the renewal time comes back from DynamoDB (updatedAt in the index).
    runtime.redis.flushdb()
    assert store.replace_partition(KIND, ACCOUNT, GLOBAL, records, complete=True).dynamo_writes == 0
    assert runtime.redis_cache.items(p) == {r["arn"]: r for r in records}


def test_listing_older_than_an_event_refresh_does_not_overwrite_it(runtime):
    """A sweep lists at T0, an event refresh reads and writes at T1, the sweep stores at T2."""
    old, new = record(1, 1), record(1, 2)
    replace(runtime, [old, record(2)])
    listed_at = time.time()
    # The event refresh: reads the resource after the listing began, writes the new version.
    runtime.redis.hset(runtime.keys.event_applied(), new["arn"], listed_at + 1)
    runtime.store.replace_partition(KIND, ACCOUNT, GLOBAL, [new], complete=False, partial=True)

    stale = runtime.store.replace_partition(
        KIND, ACCOUNT, GLOBAL, [old], complete=True, listed_at=listed_at
    )

    p = Partition(KIND, ACCOUNT)
    assert runtime.redis_cache.item(p, new["arn"]) == new
    assert runtime.dynamo.items(p)[new["arn"]] == new
    # The rest of the listing still applies: record 2 is gone from a complete listing.
    assert stale.removed == 1 and runtime.redis_cache.get(record(2)["arn"]) is None


def test_stale_iam_entries_leave_redis_and_dynamodb_together(runtime):
    from inventory.tasks.iam import clear_stale_iam

    records = [record(n) for n in range(3)]
    replace(runtime, records)
    replace(runtime, records)  # a second listing: the history starts after the first load
    p = Partition(KIND, ACCOUNT)
    gone = records[0]["arn"]
    runtime.redis.zadd(runtime.keys.seen(p), {gone: 1000.0})  # last listed long ago

    assert clear_stale_iam(runtime) == {p.id: 1}

    assert set(runtime.redis_cache.items(p)) == {r["arn"] for r in records[1:]}
    assert set(runtime.dynamo.items(p)) == {r["arn"] for r in records[1:]}
    assert [c.change for c in runtime.history.for_resource(KIND, gone)] == ["deleted"]
    assert runtime.redis_cache.meta(p).count == 2


def test_partitions_of_one_listing_share_batch_writes(runtime, dynamo_calls):
    """An account's IAM kinds in one call: ceil(items / 25) BatchWriteItem per table."""
    from inventory.cache.store import PartitionWrite

    def items(kind: str, n: int) -> list[dict]:
        return [{"arn": f"arn:aws:iam::{ACCOUNT}:{kind}/x{i}", "n": i} for i in range(n)]

    sizes = {"iam_role": 30, "iam_user": 20, "iam_group": 5, "iam_policy": 10}
    dynamo_calls.clear()

    results = runtime.store.replace_partitions(
        [PartitionWrite(k, ACCOUNT, GLOBAL, items(k, n), complete=True) for k, n in sizes.items()]
    )

    assert [r.dynamo_writes for r in results] == list(sizes.values())
    # Roles have their own table (2 calls for 30); users, groups and policies share one (35 -> 2).
    assert dynamo_calls["BatchWriteItem"] == math.ceil(30 / 25) + math.ceil(35 / 25) == 4
    for kind, n in sizes.items():
        p = Partition(kind, ACCOUNT)
        assert runtime.dynamo.items(p) == runtime.redis_cache.items(p)
        assert len(runtime.redis_cache.items(p)) == n


def test_a_partition_without_a_manifest_is_not_queried_and_one_with_items_always_has_one(
    runtime, dynamo_calls, monkeypatch
):
    """A cold write claims the partition with a conditional "writing" manifest instead of
    querying the partition index: one call says the partition is new and marks it before its
    first items, so a crash between the items and the real manifest still leaves the marker,
    and the next cold write queries."""
    records = [record(n) for n in range(3)]
    p = Partition(KIND, ACCOUNT)
    dynamo_calls.clear()
    replace(runtime, records)
    assert (dynamo_calls["Query"], dynamo_calls["GetItem"]) == (0, 0)
    assert runtime.replication.manifest(p).digest  # the real one, after the items

    # A new partition's write crashes between its items and the real manifest.
    other = "210987654321"

    def crash(*_args, **_kwargs):
        raise ConnectionError("the process died before the real manifest")

    monkeypatch.setattr(runtime.replication, "put_manifest", crash)
    with pytest.raises(ConnectionError):
        runtime.store.replace_partition(KIND, other, GLOBAL, records, complete=True)
    monkeypatch.undo()
    marker = runtime.replication.manifest(Partition(KIND, other))
    assert marker is not None and marker.digest == ""  # the "writing" marker
    assert set(runtime.dynamo.items(Partition(KIND, other))) == {r["arn"] for r in records}

    # With Redis lost, the next write finds the marker and reads the index: nothing is missed.
    runtime.redis.flushdb()
    dynamo_calls.clear()
    again = runtime.store.replace_partition(KIND, other, GLOBAL, records[:2], complete=True)
    assert dynamo_calls["Query"] == 1  # the index is read: the items exist
    assert (again.dynamo_writes, again.removed) == (1, 1)
    assert set(runtime.dynamo.items(Partition(KIND, other))) == {r["arn"] for r in records[:2]}
