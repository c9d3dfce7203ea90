"""Models of the change feed and one resource's history (``handlers/changes.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ValidationInfo, field_validator

from inventory.web.api import Item, QueryModel, ResponseModel
from inventory.web.handlers.history import (
    FEED_DEFAULT_LIMIT,
    FEED_MAX_LIMIT,
    HISTORY_KINDS,
    PAGE_LIMIT,
    RESOURCE_MAX_LIMIT,
)
from inventory.web.params import (
    ArnParam,
    Choice,
    Integer,
    OptionalAccount,
    OptionalTime,
    StreamCursor,
    not_after,
)

HistoryKind = Annotated[str, Choice(HISTORY_KINDS)]


class FeedQuery(QueryModel):
    since: OptionalTime = None
    """Changes at or after this time: unix seconds or ISO-8601 (UTC unless it has an offset)"""
    until: OptionalTime = None
    """Changes at or before this time; not before 'since'"""
    kind: HistoryKind = ""
    """Only changes of this kind"""
    account: OptionalAccount = None
    """Only this account's changes"""
    limit: Annotated[int, Integer(1, FEED_MAX_LIMIT)] = FEED_DEFAULT_LIMIT
    """Page size"""
    cursor: Annotated[str | None, StreamCursor()] = None
    """The next_cursor of the previous page: the page of older changes"""

    @field_validator("until")
    @classmethod
    def in_order(cls, until: float | None, info: ValidationInfo) -> float | None:
        not_after(info.data.get("since"), until, "since", "until")
        return until

    def args(self) -> dict[str, str]:
        """The filters as query arguments (without the cursor and limit)."""
        found = {
            "account": self.account,
            "kind": self.kind,
            "since": form_time(self.since),
            "until": form_time(self.until),
        }
        return {k: v for k, v in found.items() if v}


class ChangesPageQuery(FeedQuery):
    """The feed's filters as the ``/changes`` page takes them (a shorter page)."""

    limit: Annotated[int, Integer(1, FEED_MAX_LIMIT)] = PAGE_LIMIT
    """Page size"""


def form_time(at: float | None) -> str | None:
    """A time as a ``datetime-local`` input shows it (UTC)."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class DiffOp(Item):
    op: Literal["add", "remove", "replace"]
    path: str
    old: Any = None
    new: Any = None


class Change(Item):
    id: str
    arn: str
    kind: str
    account_id: str
    region: str
    at: float
    change: Literal["created", "updated", "deleted"]
    diff: list[DiffOp]
    actor: str | None = None
    event_name: str | None = None
    event_time: float | None = None
    event_id: str | None = None


class FeedSpan(ResponseModel):
    oldest: float | None
    newest: float | None


class ChangeFeed(ResponseModel):
    """One page of the feed"""

    changes: list[Change]
    next_cursor: str | None
    feed_span: FeedSpan


class HistoryQuery(QueryModel):
    arn: ArnParam
    """The resource's ARN"""
    kind: HistoryKind = ""
    """The resource's kind; needed only when it is no longer cached"""
    limit: Annotated[int, Integer(1, RESOURCE_MAX_LIMIT)] = 100
    """How many changes"""


class ResourceChanges(ResponseModel):
    """The changes with their diffs"""

    arn: str
    kind: str
    changes: list[Change]
    retention_days: int


class ResourcePageQuery(QueryModel):
    kind: HistoryKind = ""
    """Finds the history of a resource no longer cached (links from /changes)"""
