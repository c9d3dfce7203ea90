"""What a fetcher hands to storage: records, the ones it had to skip, and whether it is complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inventory.aws.records import SkippedRecord


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
