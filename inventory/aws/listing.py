"""What a fetcher hands to storage: records, the ones it had to skip, and whether it is complete."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import ACCESS_DENIED_CODES, error_code
from inventory.aws.records import BadRecord, SkippedRecord

#: Largest record (as JSON) a fetcher hands to storage. AWS's own limits keep real records far
#: below it (a role's inline policies total 10,240 characters, a tag value 256); a bigger one
#: would not fit a DynamoDB item (400 KB) and would fail the write of its whole partition.
MAX_RECORD_BYTES = 300_000


def storable(record: dict[str, Any]) -> dict[str, Any]:
    """The record, or BadRecord when storage could not key or hold it.

    Its ARN must be text starting with ``arn:`` (the key of every store), and its JSON at
    most MAX_RECORD_BYTES.
    """
    arn = record.get("arn")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise BadRecord(f"ARN {arn!r:.80} is not an ARN")
    size = len(json.dumps(record, default=str, ensure_ascii=False).encode())
    if size > MAX_RECORD_BYTES:
        raise BadRecord(f"record is {size} bytes, more than {MAX_RECORD_BYTES} a record may have")
    return record


@dataclass
class Listing:
    """One partition's worth of records.

    ``complete`` is False when anything that could hide a resource failed; then storage removes
    nothing. ``keep`` holds ARNs of resources that were listed but not readable (their cached
    copies stay). ``enabled`` is False when the service is not set up where it was asked (AWS
    Config without a recorder): nothing could be listed, and nothing is stale for it.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    complete: bool = True
    keep: set[str] = field(default_factory=set)
    enabled: bool = True
    calls: int = 0
    #: When the listing began: storage keeps items an event refresh read after this.
    listed_at: float = field(default_factory=time.time, compare=False, repr=False)

    def skip(self, identifier: str, reason: str, arn: str | None) -> None:
        self.skipped.append(SkippedRecord(identifier, reason, arn))
        if arn:
            self.keep.add(arn)
        else:
            self.complete = False


def add_detailed(
    listing: Listing,
    label: str,
    arn: str,
    read: Callable[[], dict[str, Any]],
    gone: Collection[str],
) -> None:
    """Read one listed resource's details into the listing.

    Deleted since the listing (a ``gone`` code): left out. Access denied or a malformed
    record: skipped and reported, and its cached copy kept. Anything else raises.
    """
    try:
        listing.records.append(storable(read()))
    except ClientError as exc:
        code = error_code(exc)
        if code in gone:
            return
        if code not in ACCESS_DENIED_CODES:
            raise
        listing.skip(label, str(code), arn)
    except (BadRecord, KeyError, ValueError, TypeError, AttributeError) as exc:
        # TypeError/AttributeError: a field AWS returned as null or of another type.
        listing.skip(label, str(exc), arn)
