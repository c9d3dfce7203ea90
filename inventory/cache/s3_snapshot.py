"""One gzipped snapshot per partition in S3: the `{last_updated, data}` envelope, or JSON Lines.

The ``jsonl`` layout writes one record per line under Hive-style keys
(``kind=<kind>/account=<id>/region=<region>/records.jsonl.gz``) so Athena and DuckDB read the
bucket as a table partitioned by kind, account and region; the write time is the object's
``last-updated`` metadata. Both layouts read back as the same envelope.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from inventory.cache.keys import Partition, s3_jsonl_key, s3_snapshot_key

ENVELOPE, JSONL = "envelope", "jsonl"


class S3Snapshots:
    """Put and get partition snapshots; the client is passed in (hub credentials)."""

    def __init__(self, client: Any, bucket: str, prefix: str, layout: str = ENVELOPE) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.layout = layout

    def key(self, p: Partition) -> str:
        if self.layout == JSONL:
            return s3_jsonl_key(self.prefix, p)
        return s3_snapshot_key(self.prefix, p)

    def put(self, p: Partition, documents: Mapping[str, str], now: float) -> None:
        """Write the partition's records (already canonical JSON) as one object."""
        if self.layout == JSONL:
            self._put_jsonl(p, documents, now)
            return
        body = (
            '{"last_updated":'
            + json.dumps(now)
            + ',"partition":'
            + json.dumps({"kind": p.kind, "account_id": p.account_id, "region": p.region})
            + ',"data":{'
            + ",".join(f"{json.dumps(arn)}:{doc}" for arn, doc in sorted(documents.items()))
            + "}}"
        )
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(p),
            Body=gzip.compress(body.encode(), compresslevel=6, mtime=0),
            ContentType="application/json",
            ContentEncoding="gzip",
        )

    def _put_jsonl(self, p: Partition, documents: Mapping[str, str], now: float) -> None:
        body = "".join(f"{doc}\n" for _, doc in sorted(documents.items()))
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(p),
            # Not Content-Encoding: readers (Athena, DuckDB) read the .gz object as it is.
            Body=gzip.compress(body.encode(), compresslevel=6, mtime=0),
            ContentType="application/x-ndjson",
            Metadata={"last-updated": repr(now)},
        )

    def get(self, p: Partition) -> dict[str, Any] | None:
        """The snapshot envelope, or None when there is none."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(p))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        body = gzip.decompress(response["Body"].read())
        if self.layout != JSONL:
            return json.loads(body)
        records = [json.loads(line) for line in body.decode().splitlines() if line]
        return {
            "last_updated": float(response["Metadata"]["last-updated"]),
            "partition": {"kind": p.kind, "account_id": p.account_id, "region": p.region},
            "data": {record["arn"]: record for record in records},
        }
