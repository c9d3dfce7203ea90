"""One gzipped JSON snapshot per partition in S3, in the `{last_updated, data}` envelope."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from inventory.cache.keys import Partition, s3_snapshot_key


class S3Snapshots:
    """Put and get partition snapshots; the client is passed in (hub credentials)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, p: Partition) -> str:
        return s3_snapshot_key(self.prefix, p)

    def put(self, p: Partition, documents: Mapping[str, str], now: float) -> None:
        """Write the partition's records (already canonical JSON) as one object."""
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

    def get(self, p: Partition) -> dict[str, Any] | None:
        """The snapshot envelope, or None when there is none."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(p))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(gzip.decompress(response["Body"].read()))
