"""What a fetcher hands to storage: records, the ones it had to skip, and whether it is complete."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import ACCESS_DENIED_CODES, error_code
from inventory.aws.records import BadRecord, SkippedRecord


@dataclass
class Listing:
    """One partition's worth of records.

    ``complete`` is False when anything that could hide a resource failed; then storage removes
    nothing. ``keep`` holds ARNs of resources that were listed but not readable (their cached
    copies stay).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    complete: bool = True
    keep: set[str] = field(default_factory=set)
    calls: int = 0

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
        listing.records.append(read())
    except ClientError as exc:
        code = error_code(exc)
        if code in gone:
            return
        if code not in ACCESS_DENIED_CODES:
            raise
        listing.skip(label, str(code), arn)
    except (BadRecord, KeyError, ValueError) as exc:
        listing.skip(label, str(exc), arn)
