"""Items written before keys named their partition: moved once to ``item_key``, nothing lost.

Up to schema 1, a resource item's hash key was its ARN (``<kind>|<arn>`` for some kinds), so
AWS Config's copy of a global role in eu-west-1 overwrote the us-east-1 copy. Schema 2 keys
every item of the resources table by ``<kind>|<region>|<arn>``. The migration scans the table
once, copies each old-keyed item to its new key (unless a newer write already put it there),
then deletes the old key; it can be stopped and run again at any point. A marker item records
the schema reached, so a process checks it with one GetItem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from inventory.cache.dynamo import BATCH_SIZE, DynamoStore, arn_of, item_key
from inventory.cache.keys import TABLE_RESOURCES, Partition

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
#: The marker's key; it has no ``partition`` attribute, so no partition query ever returns it.
MARKER = {"arn": {"S": "__schema__"}, "accountId": {"S": "__schema__"}}


@dataclass
class KeyMigration:
    """What one run of the migration did."""

    scanned: int = 0
    moved: int = 0
    #: Old-keyed items whose new key a newer write already holds: only the old key is deleted.
    superseded: int = 0
    partitions: set[Partition] = field(default_factory=set)
    #: Partitions whose DynamoDB or S3 copy lacked items Redis held, written back afterwards.
    repaired: int = 0


def _client_and_table(dynamo: DynamoStore) -> tuple[Any, Any, str]:
    connection = dynamo.models[TABLE_RESOURCES]._get_connection()
    return connection, connection.connection.client, connection.table_name


def schema_version(dynamo: DynamoStore) -> int:
    """The schema the resources table is at (1 when it predates the marker).

    A table that does not exist yet holds no old keys: it will be created at this schema.
    """
    _, client, table = _client_and_table(dynamo)
    try:
        item = client.get_item(TableName=table, Key=MARKER, ConsistentRead=True).get("Item")
    except client.exceptions.ResourceNotFoundException:
        return SCHEMA_VERSION
    return int(item["version"]["N"]) if item else 1


def _legacy(item: dict[str, Any]) -> tuple[Partition, str] | None:
    """(partition, new key) of an item stored under an old key; None for a current one."""
    if "partition" not in item:
        return None  # the schema marker
    p = Partition.parse(item["partition"]["S"])
    want = item_key(p, arn_of(item["arn"]["S"]))
    return None if item["arn"]["S"] == want else (p, want)


def migrate_item_keys(
    dynamo: DynamoStore, progress: Callable[[KeyMigration], None] | None = None
) -> KeyMigration:
    """Move every old-keyed item of the resources table to its partition's key; then mark it."""
    connection, client, table = _client_and_table(dynamo)
    done = KeyMigration()
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    for page in pages:
        items = page.get("Items", [])
        done.scanned += len(items)
        legacy = [(item, *found) for item in items if (found := _legacy(item))]
        for start in range(0, len(legacy), BATCH_SIZE):
            _move(dynamo, connection, legacy[start : start + BATCH_SIZE], done)
        if progress is not None:
            progress(done)
    marker = {**MARKER, "version": {"N": str(SCHEMA_VERSION)}}
    client.put_item(TableName=table, Item=marker)
    return done


def _existing(client: Any, table: str, keys: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Which of these keys hold an item (BatchGetItem, unprocessed keys asked again)."""
    found: set[tuple[str, str]] = set()
    request = {
        table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "arn, accountId"}
    }
    while request:
        answer = client.batch_get_item(RequestItems=request)
        for item in answer.get("Responses", {}).get(table, []):
            found.add((item["arn"]["S"], item["accountId"]["S"]))
        request = answer.get("UnprocessedKeys") or {}
    return found


def _move(
    dynamo: DynamoStore,
    connection: Any,
    batch: list[tuple[dict[str, Any], Partition, str]],
    done: KeyMigration,
) -> None:
    """Copy then delete: a crash in between leaves both, and the next run only deletes."""
    client, table = connection.connection.client, connection.table_name
    existing = _existing(
        client,
        table,
        [{"arn": {"S": key}, "accountId": item["accountId"]} for item, _, key in batch],
    )
    puts = []
    for item, p, key in batch:
        done.partitions.add(p)
        if (key, item["accountId"]["S"]) in existing:
            done.superseded += 1
        else:
            puts.append({"PutRequest": {"Item": {**item, "arn": {"S": key}}}})
            done.moved += 1
    if puts:
        dynamo._write_batch(connection, puts)
    deletes = [
        {"DeleteRequest": {"Key": {"arn": item["arn"], "accountId": item["accountId"]}}}
        for item, _, _ in batch
    ]
    dynamo._write_batch(connection, deletes)


def upgrade(
    dynamo: DynamoStore,
    lock: Any,
    held: Callable[[], Iterable[Partition]],
    repair: Callable[[Partition], object],
) -> KeyMigration | None:
    """Bring the table to SCHEMA_VERSION once, whichever process gets there first.

    ``lock`` (a Redis lock) keeps other processes waiting while one migrates, so none writes
    under a new key an item the migration would then copy over. Then every partition the cache
    ``held`` is ``repair``-ed from it: an old key collision lost items of partitions whose
    DynamoDB copy may now hold nothing at all.
    """
    if schema_version(dynamo) >= SCHEMA_VERSION:
        return None
    with lock:
        if schema_version(dynamo) >= SCHEMA_VERSION:
            return None  # another process migrated while this one waited
        log.warning("resources table: moving items to partition keys (schema %d)", SCHEMA_VERSION)

        def report(done: KeyMigration) -> None:
            lock.extend(lock.timeout, replace_ttl=True)
            log.info("key migration: %d scanned, %d moved", done.scanned, done.moved)

        done = migrate_item_keys(dynamo, report)
        for p in held():
            done.repaired += bool(repair(p))
            lock.extend(lock.timeout, replace_ttl=True)
        log.warning(
            "key migration done: %d scanned, %d moved, %d superseded, %d partitions repaired",
            done.scanned,
            done.moved,
            done.superseded,
            done.repaired,
        )
        return done
