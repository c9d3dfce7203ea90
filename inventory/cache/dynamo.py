"""The durable copy in DynamoDB, through PynamoDB models bound to tables from settings."""

from __future__ import annotations

import calendar
import json
import random
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pynamodb.connection.base
from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from inventory.cache.keys import GLOBAL, TABLE_RESOURCES, TABLES, Partition, table_for_kind

# DynamoDB's item limit is 400 KB; documents above this are stored zlib-compressed.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
INLINE_LIMIT = 300_000
# BatchWriteItem takes at most 25 requests.
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
BATCH_SIZE = 25
# Batches in flight at once (settings: dynamodb.write_concurrency): the calls are
# latency-bound, not CPU-bound, on our side.
WRITE_CONCURRENCY = 16
UNPROCESSED_ATTEMPTS = 8
BACKOFF_BASE, BACKOFF_CAP = 0.05, 5.0


class UnprocessedWrites(RuntimeError):
    """DynamoDB left items unprocessed after every retry (throttled): retry the task later."""

    retryable = True

    def __init__(self, table: str, count: int) -> None:
        super().__init__(
            f"{table}: {count} item(s) still unprocessed after {UNPROCESSED_ATTEMPTS} attempts"
        )


class PartitionIndex(GlobalSecondaryIndex["ResourceItem"]):
    """Every item of one partition, with its content hash, without reading the documents."""

    class Meta:
        index_name = "partition-index"
        projection = IncludeProjection(["contentHash", "updatedAt"])

    partition = UnicodeAttribute(hash_key=True)
    arn = UnicodeAttribute(range_key=True)


class ResourceItem(Model):
    """One cached resource: ConsoleMe's ``arn`` + ``accountId`` key, with a TTL."""

    class Meta:
        table_name = "unbound"

    arn = UnicodeAttribute(hash_key=True)
    accountId = UnicodeAttribute(range_key=True)
    partition = UnicodeAttribute()
    kind = UnicodeAttribute()
    region = UnicodeAttribute()
    contentHash = UnicodeAttribute()
    updatedAt = NumberAttribute()
    data = UnicodeAttribute(null=True)
    dataZ = BinaryAttribute(null=True, legacy_encoding=False)
    ttl = TTLAttribute(null=True)
    partition_index = PartitionIndex()

    def document(self) -> str:
        """The record's canonical JSON as stored."""
        return self.data if self.data is not None else zlib.decompress(self.dataZ or b"").decode()

    def record(self) -> dict[str, Any]:
        return json.loads(self.document())


def item_key(p: Partition, arn: str) -> str:
    """The item's hash key, unique to its partition (the range key is the account).

    Roles keep ConsoleMe's key, the ARN: their table holds one global kind. Every other item
    is ``<kind>|<region>|<arn>``: a bucket is also an AWS Config resource (another kind),
    and AWS Config lists the same global role in every region it records, so neither the ARN
    nor ``<kind>|<arn>`` is unique to a partition.
    """
    if table_for_kind(p.kind) == TABLE_RESOURCES:
        return f"{p.kind}|{p.region}|{arn}"
    if p.region != GLOBAL:
        raise ValueError(f"{p.kind} is global: no partition in {p.region} has a key of its own")
    return arn


def arn_of(key: str) -> str:
    """The ARN an item key stands for (ARNs never contain ``|``)."""
    return key.rpartition("|")[2]


_threads = threading.local()


def _thread_session() -> botocore.session.Session:
    """One botocore session per thread for every PynamoDB connection in the process.

    PynamoDB builds a botocore session per table connection (per thread, as creating clients
    from one session is not thread-safe); each loads its own copy of the DynamoDB model and
    endpoint rules, ~10 MB per table in every worker process. Sharing one per thread keeps
    PynamoDB's thread rule and loads them once.
    """
    session = getattr(_threads, "session", None)
    if session is None:
        session = _threads.session = botocore.session.get_session()
    return session


pynamodb.connection.base.get_session = _thread_session  # type: ignore[attr-defined]


def _bind(
    table_name: str,
    region: str,
    host: str | None,
    read_capacity: int,
    write_capacity: int,
    max_pool_connections: int = 10,
) -> type[ResourceItem]:
    """A ResourceItem subclass bound to one physical table."""
    meta_attrs: dict[str, Any] = {
        "table_name": table_name,
        "region": region,
        "host": host,
        "max_pool_connections": max_pool_connections,
        "max_retry_attempts": 5,
        "connect_timeout_seconds": 5,
        "read_timeout_seconds": 30,
    }
    index_meta: dict[str, Any] = {
        "index_name": "partition-index",
        "projection": IncludeProjection(["contentHash", "updatedAt"]),
    }
    if read_capacity and write_capacity:
        meta_attrs.update(read_capacity_units=read_capacity, write_capacity_units=write_capacity)
        index_meta.update(read_capacity_units=read_capacity, write_capacity_units=write_capacity)
    else:
        meta_attrs["billing_mode"] = "PAY_PER_REQUEST"
    index = type(
        f"PartitionIndex_{table_name}",
        (PartitionIndex,),
        {"Meta": type("Meta", (), index_meta)},
    )
    return type(
        f"ResourceItem_{table_name}",
        (ResourceItem,),
        {"Meta": type("Meta", (), meta_attrs), "partition_index": index()},
    )


class DynamoStore:
    """Batch writes and partition reads over the inventory tables."""

    def __init__(
        self,
        table_prefix: str,
        region: str,
        host: str | None = None,
        ttl_days: int = 30,
        read_capacity: int = 0,
        write_capacity: int = 0,
        write_concurrency: int = WRITE_CONCURRENCY,
    ) -> None:
        self.ttl = timedelta(days=ttl_days)
        self.write_concurrency = max(1, write_concurrency)
        self._executor: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.models = {
            logical: _bind(
                table_prefix + logical,
                region,
                host,
                read_capacity,
                write_capacity,
                # Every batch in flight holds a connection (botocore's pool is 10 by default).
                max_pool_connections=max(10, self.write_concurrency),
            )
            for logical in TABLES
        }

    def model(self, kind: str) -> type[ResourceItem]:
        return self.models[table_for_kind(kind)]

    def ensure_tables(self) -> list[str]:
        """Create missing tables (with TTL on ``ttl``); returns the names created."""
        created = []
        for model in self.models.values():
            if not model.exists():
                model.create_table(
                    wait=True, billing_mode=getattr(model.Meta, "billing_mode", None)
                )
                model._get_connection().update_time_to_live("ttl")
                created.append(model.Meta.table_name)
        return created

    def load_index(self, p: Partition) -> dict[str, tuple[str, float]]:
        """ARN -> (content hash, updatedAt) for every item of a partition (index query only)."""
        model = self.model(p.kind)
        return {
            arn_of(item.arn): (item.contentHash, float(item.updatedAt or 0))
            for item in model.partition_index.query(p.id)
            if item.accountId == p.account_id
        }

    def load_hashes(self, p: Partition) -> dict[str, str]:
        """ARN -> content hash for every item of a partition (index query, no documents)."""
        return {arn: entry[0] for arn, entry in self.load_index(p).items()}

    def write(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: Iterable[str],
        now: float,
    ) -> int:
        """Put changed items, delete removed ones, 25 per BatchWriteItem; returns item writes."""
        return self.write_many([(p, upserts, removed)], now)[0]

    def write_many(
        self,
        writes: Sequence[tuple[Partition, Mapping[str, tuple[str, str]], Iterable[str]]],
        now: float,
    ) -> list[int]:
        """Several partitions' puts and deletes, sharing batches of 25 per table.

        Items are built as DynamoDB attribute maps directly (the same ones PynamoDB's models
        serialise to, without a model object per item), and the batches are sent a few at a
        time. Unprocessed items are resent with backoff; any failure raises. Returns the item
        writes of each partition.
        """
        by_table: dict[str, list[dict[str, Any]]] = {}
        counts = []
        for p, upserts, removed in writes:
            requests = self._requests(p, upserts, removed, now)
            by_table.setdefault(table_for_kind(p.kind), []).extend(requests)
            counts.append(len(requests))
        jobs = []
        for table, requests in by_table.items():
            connection = self.models[table]._get_connection()
            for i in range(0, len(requests), BATCH_SIZE):
                jobs.append((connection, requests[i : i + BATCH_SIZE]))
        if len(jobs) <= 1 or self.write_concurrency == 1:
            for connection, batch in jobs:
                self._write_batch(connection, batch)
        else:
            self.build_clients()
            futures = [self._pool().submit(self._write_batch, c, b) for c, b in jobs]
            wait(futures)  # every batch has finished (or failed) before anything raises
            for future in futures:
                future.result()
        return counts

    def build_clients(self) -> None:
        """Build every table's botocore client here, once: pool threads racing to build one
        can fail (botocore's client creation is not thread-safe)."""
        for model in self.models.values():
            _ = model._get_connection().connection.client

    def _requests(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: Iterable[str],
        now: float,
    ) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = []
        # As PynamoDB's TTLAttribute and NumberAttribute serialise them.
        expires = json.dumps(
            calendar.timegm((datetime.fromtimestamp(now, UTC) + self.ttl).timetuple())
        )
        # Attribute values every item of the partition shares: one object each, read-only.
        shared = {
            "accountId": {"S": p.account_id},
            "partition": {"S": p.id},
            "kind": {"S": p.kind},
            "region": {"S": p.region},
        }
        updated, ttl = {"N": json.dumps(now)}, {"N": expires}
        for arn, (document, content_hash) in upserts.items():
            item: dict[str, Any] = {
                "arn": {"S": item_key(p, arn)},
                **shared,
                "contentHash": {"S": content_hash},
                "updatedAt": updated,
                "ttl": ttl,
            }
            # The document goes last: moto re-measures the whole item on every attribute it
            # sets, so a large attribute early is measured again for each one after it.
            if len(document) > INLINE_LIMIT:
                item["dataZ"] = {"B": zlib.compress(document.encode(), 6)}
            else:
                item["data"] = {"S": document}
            requests.append({"PutRequest": {"Item": item}})
        for arn in removed:
            key = {"arn": {"S": item_key(p, arn)}, "accountId": {"S": p.account_id}}
            requests.append({"DeleteRequest": {"Key": key}})
        return requests

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.write_concurrency, thread_name_prefix="dynamo-write"
                )
            return self._executor

    def _write_batch(self, connection: Any, batch: list[dict[str, Any]]) -> None:
        """One BatchWriteItem; unprocessed items are resent with exponential backoff and jitter.

        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
        """
        for attempt in range(UNPROCESSED_ATTEMPTS):
            puts = [r["PutRequest"]["Item"] for r in batch if "PutRequest" in r]
            deletes = [r["DeleteRequest"]["Key"] for r in batch if "DeleteRequest" in r]
            data = connection.batch_write_item(put_items=puts, delete_items=deletes) or {}
            batch = data.get("UnprocessedItems", {}).get(connection.table_name) or []
            if not batch:
                return
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
        raise UnprocessedWrites(connection.table_name, len(batch))

    def documents(self, p: Partition, arns: Iterable[str]) -> dict[str, tuple[str, str]]:
        """ARN -> (document as stored, content hash) for the given items (BatchGetItem)."""
        model = self.model(p.kind)
        keys = [(item_key(p, arn), p.account_id) for arn in arns]
        return {
            arn_of(item.arn): (item.document(), item.contentHash) for item in model.batch_get(keys)
        }

    def items(self, p: Partition) -> dict[str, dict[str, Any]]:
        """Every record of a partition, by ARN (index query then batch get)."""
        return {
            arn: json.loads(doc) for arn, (doc, _) in self.documents(p, self.load_hashes(p)).items()
        }
