"""The replication log: what a secondary region needs to follow the active one incrementally.

The active region writes one *manifest* per partition whenever the partition's contents change
(its digest, item count and completeness) and, from the metrics task, one *outcomes* item per
account (the last success and failure of every AWS-calling task). Both live in one small table
(``<prefix>replication``) with a global secondary index on ``(stream, updatedAt)``, so a
secondary region reads only what changed since its cursor instead of scanning the inventory.

With DynamoDB global tables the table replicates like the others; a steady-state sweep that
changes nothing writes nothing here either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from inventory.cache.keys import TABLE_REPLICATION, Partition
from inventory.cache.tables import bind, ensure_table

#: The stream holding per-account task outcomes; manifests use their kind as the stream.
OUTCOMES_STREAM = "_outcomes"


class UpdatedIndex(GlobalSecondaryIndex["ReplicationItem"]):
    """Items of one stream (a kind, or the outcomes) in the order they were written."""

    class Meta:
        index_name = "updated-index"
        projection = AllProjection()

    stream = UnicodeAttribute(hash_key=True)
    updatedAt = NumberAttribute(range_key=True)


class ReplicationItem(Model):
    class Meta:
        table_name = "unbound"

    key = UnicodeAttribute(hash_key=True)
    stream = UnicodeAttribute()
    updatedAt = NumberAttribute()
    digest = UnicodeAttribute(null=True)
    count = NumberAttribute(null=True)
    complete = BooleanAttribute(null=True)
    outcomes = UnicodeAttribute(null=True)
    updated_index = UpdatedIndex()


@dataclass(frozen=True)
class Manifest:
    """One partition as the active region last wrote it."""

    partition: Partition
    digest: str
    count: int
    complete: bool
    updated_at: float


class ReplicationLog:
    """Write manifests and outcomes (active region); read them by cursor (secondary regions)."""

    def __init__(self, table_prefix: str, region: str, host: str | None) -> None:
        index_meta = {"index_name": "updated-index", "projection": AllProjection()}
        self.model = bind(
            ReplicationItem,
            table_prefix + TABLE_REPLICATION,
            region,
            host,
            indexes={"updated_index": (UpdatedIndex, index_meta)},
        )

    def ensure_table(self) -> bool:
        return ensure_table(self.model)

    def put_manifest(
        self, p: Partition, digest: str, count: int, complete: bool, now: float
    ) -> None:
        self.model(
            f"p|{p.id}",
            stream=p.kind,
            updatedAt=now,
            digest=digest,
            count=count,
            complete=complete,
        ).save()

    def claim_first_write(self, p: Partition, now: float) -> bool:
        """Put a manifest marked "writing" (empty digest) unless the partition has one: True
        when it had none.

        Every item write follows such a manifest, so a partition without one has no items: a
        writer whose Redis is empty learns with this one conditional PutItem both that it need
        not query the partition index and that the marker is in place before its first items
        (a crash before the real manifest leaves the marker, and the next writer queries).
        """
        try:
            self.model(f"p|{p.id}", stream=p.kind, updatedAt=now, digest="").save(
                condition=self.model.key.does_not_exist()
            )
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def manifests(self, kind: str, since: float | None = None) -> Iterator[Manifest]:
        """Manifests of one kind written after ``since`` (every one when None), oldest first."""
        condition = None if since is None else self.model.updatedAt > since
        for item in self.model.updated_index.query(kind, range_key_condition=condition):
            yield Manifest(
                partition=Partition.parse(item.key.removeprefix("p|")),
                digest=item.digest or "",
                count=int(item.count or 0),
                complete=bool(item.complete),
                updated_at=float(item.updatedAt),
            )

    def manifest(self, p: Partition) -> Manifest | None:
        """One partition's manifest (GetItem), or None."""
        try:
            item = self.model.get(f"p|{p.id}")
        except self.model.DoesNotExist:
            return None
        return Manifest(
            partition=p,
            digest=item.digest or "",
            count=int(item.count or 0),
            complete=bool(item.complete),
            updated_at=float(item.updatedAt),
        )

    def put_outcomes(self, by_account: Mapping[str, Mapping[str, Any]], now: float) -> int:
        """One item per account: ``{task: [last_success, last_failure, last_error]}``."""
        with self.model.batch_write() as batch:
            for account_id, tasks in by_account.items():
                batch.save(
                    self.model(
                        f"o|{account_id}",
                        stream=OUTCOMES_STREAM,
                        updatedAt=now,
                        outcomes=json.dumps(tasks, sort_keys=True, separators=(",", ":")),
                    )
                )
        return len(by_account)

    def outcomes(self, since: float | None = None) -> Iterable[tuple[str, dict[str, Any], float]]:
        """``(account, {task: [success, failure, error]}, written at)`` after ``since``."""
        condition = None if since is None else self.model.updatedAt > since
        for item in self.model.updated_index.query(OUTCOMES_STREAM, range_key_condition=condition):
            yield item.key.removeprefix("o|"), json.loads(item.outcomes or "{}"), item.updatedAt
