"""What a fetcher hands to storage: records, the ones it had to skip, and whether it is complete."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from inventory.aws.errors import ACCESS_DENIED_CODES, error_code
from inventory.aws.records import BadRecord, SkippedRecord

#: Largest record (as JSON) a fetcher hands to storage. AWS's own limits keep real records far
#: below it (a role's inline policies total 10,240 characters, a tag value 256); a bigger one
#: would not fit a DynamoDB item (400 KB) and would fail the write of its whole partition.
MAX_RECORD_BYTES = 300_000

_T = TypeVar("_T")


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


@dataclass(frozen=True)
class Detail:
    """One listed resource whose details are read: its name in reports, its ARN, the read."""

    label: str
    arn: str
    read: Callable[[], dict[str, Any]]


class DetailReads:
    """The per-resource detail reads of one account and region, at most ``workers`` at once.

    One pool for every fetcher a sync runs there; ``workers`` 1 reads one after another in the
    calling thread. botocore clients are thread-safe, and the adaptive retry mode's rate limiter
    belongs to the client, so throttling slows every read of the pool instead of failing one.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None

    def map(self, read: Callable[[Detail], _T], details: Iterable[Detail]) -> Iterator[_T]:
        """``read(detail)`` of every detail, in their order (read ahead by the pool)."""
        if self.workers == 1:
            return map(read, details)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="detail-read")
        return self._executor.map(read, details)

    def close(self) -> None:
        """Stop the threads; reads not started are cancelled (their listing failed)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> DetailReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Reads one after another in the calling thread: what a fetcher called on its own gets.
SERIAL = DetailReads(1)

#: A read that raised one of these skips its resource (a field AWS returned as null or of
#: another type raises TypeError/AttributeError), keeping its cached copy.
MALFORMED = (BadRecord, KeyError, ValueError, TypeError, AttributeError)


def _attempt(detail: Detail) -> tuple[Detail, dict[str, Any] | Exception]:
    """The detail's record, or what it raised (to be judged in the listing's own thread)."""
    try:
        return detail, storable(detail.read())
    except Exception as exc:  # noqa: BLE001 - judged and re-raised by add_details
        return detail, exc


def add_details(
    listing: Listing,
    details: Iterable[Detail],
    gone: Collection[str],
    reads: DetailReads = SERIAL,
) -> None:
    """Read every listed resource's details into the listing, in listing order.

    Deleted since the listing (a ``gone`` code): left out. Access denied or a malformed
    record: skipped and reported, and its cached copy kept. Anything else raises (the reads
    not started yet are cancelled), so the listing is not stored and nothing is removed.
    """
    for detail, outcome in reads.map(_attempt, details):
        if isinstance(outcome, Exception):
            _judge(listing, detail, outcome, gone)
        else:
            listing.records.append(outcome)


def _judge(listing: Listing, detail: Detail, exc: Exception, gone: Collection[str]) -> None:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in gone:
            return
        if code not in ACCESS_DENIED_CODES:
            raise exc
        listing.skip(detail.label, str(code), detail.arn)
    elif isinstance(exc, MALFORMED):
        listing.skip(detail.label, str(exc), detail.arn)
    else:
        raise exc
