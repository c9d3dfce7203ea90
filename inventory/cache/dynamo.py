"""The durable copy in DynamoDB, through PynamoDB models bound to tables from settings."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from inventory.cache.keys import TABLES, Partition, table_for_kind

# DynamoDB's item limit is 400 KB; documents above this are stored zlib-compressed.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
INLINE_LIMIT = 300_000


class PartitionIndex(GlobalSecondaryIndex["ResourceItem"]):
    """Every item of one partition, with its content hash, without reading the documents."""

    class Meta:
        index_name = "partition-index"
        projection = IncludeProjection(["contentHash"])

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

    def record(self) -> dict[str, Any]:
        raw = self.data if self.data is not None else zlib.decompress(self.dataZ or b"").decode()
        return json.loads(raw)


def _bind(
    table_name: str,
    region: str,
    host: str | None,
    read_capacity: int,
    write_capacity: int,
) -> type[ResourceItem]:
    """A ResourceItem subclass bound to one physical table."""
    meta_attrs: dict[str, Any] = {
        "table_name": table_name,
        "region": region,
        "host": host,
        "max_retry_attempts": 5,
        "connect_timeout_seconds": 5,
        "read_timeout_seconds": 30,
    }
    index_meta: dict[str, Any] = {
        "index_name": "partition-index",
        "projection": IncludeProjection(["contentHash"]),
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
    ) -> None:
        self.ttl = timedelta(days=ttl_days)
        self.models = {
            logical: _bind(table_prefix + logical, region, host, read_capacity, write_capacity)
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

    def load_hashes(self, p: Partition) -> dict[str, str]:
        """ARN -> content hash for every item of a partition (index query, no documents)."""
        model = self.model(p.kind)
        return {
            item.arn: item.contentHash
            for item in model.partition_index.query(p.id)
            if item.accountId == p.account_id
        }

    def write(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: Iterable[str],
        now: float,
    ) -> int:
        """Put changed items, delete removed ones, 25 per BatchWriteItem; returns item writes."""
        model = self.model(p.kind)
        expires = datetime.fromtimestamp(now, UTC) + self.ttl
        count = 0
        with model.batch_write() as batch:
            for arn, (document, content_hash) in upserts.items():
                item = model(
                    arn,
                    p.account_id,
                    partition=p.id,
                    kind=p.kind,
                    region=p.region,
                    contentHash=content_hash,
                    updatedAt=now,
                    ttl=expires,
                )
                if len(document) > INLINE_LIMIT:
                    item.dataZ = zlib.compress(document.encode(), 6)
                else:
                    item.data = document
                batch.save(item)
                count += 1
            for arn in removed:
                batch.delete(model(arn, p.account_id))
                count += 1
        return count

    def items(self, p: Partition) -> dict[str, dict[str, Any]]:
        """Every record of a partition, by ARN (index query then batch get)."""
        model = self.model(p.kind)
        keys = [(arn, p.account_id) for arn in self.load_hashes(p)]
        return {item.arn: item.record() for item in model.batch_get(keys)}
