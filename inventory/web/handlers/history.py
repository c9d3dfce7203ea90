"""Change history reads and display helpers shared by the /changes and resource pages and API."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import redis
import tornado.escape
import tornado.web
from pynamodb.exceptions import PynamoDBException
from tornado.log import app_log

from inventory.cache.history import Change, ChangeHistory
from inventory.cache.redis_cache import RedisCache
from inventory.registry import KINDS
from inventory.settings import Settings
from inventory.web.base import BaseHandler

if TYPE_CHECKING:
    from inventory.web.models.changes import FeedQuery

#: Every kind whose partitions are written durably, so whose changes are recorded.
HISTORY_KINDS: tuple[str, ...] = tuple(sorted(k.kind for k in KINDS if k.durable and k.history))
KIND_LABELS = {k.kind: k.label for k in KINDS}
FEED_MAX_LIMIT = 500
FEED_DEFAULT_LIMIT = 100
PAGE_LIMIT = 50
RESOURCE_MAX_LIMIT = 500
# DynamoDB refuses a partition key above 2048 bytes: no change can be stored under one.
MAX_KEY_BYTES = 2048
# A JSON value longer than this is shown indented on several lines.
INLINE_VALUE = 80

T = TypeVar("T")


def history_reader(settings: Settings, cache: RedisCache) -> ChangeHistory | None:
    """The history over the cache's Redis and the configured DynamoDB; None when disabled."""
    if not settings.history.enabled:
        return None
    d, h = settings.dynamodb, settings.history
    return ChangeHistory(
        d.table_prefix,
        d.region,
        settings.dynamodb_endpoint,
        cache.client,
        cache.keys,
        retention_days=h.retention_days,
        feed_max_entries=h.feed_max_entries,
    )


@dataclass(frozen=True)
class FeedPage:
    changes: list[Change]
    next_cursor: str | None
    span: tuple[float, float] | None

    def as_dict(self) -> dict[str, Any]:
        oldest, newest = self.span or (None, None)
        return {
            "changes": [c.as_dict() for c in self.changes],
            "next_cursor": self.next_cursor,
            "feed_span": {"oldest": oldest, "newest": newest},
        }


def read_feed(history: ChangeHistory, q: FeedQuery) -> FeedPage:
    kind = q.kind or None
    changes, cursor = history.feed(q.account, kind, q.since, q.until, q.limit, q.cursor)
    return FeedPage(changes, cursor, history.feed_span())


def read_resource(history: ChangeHistory, kind: str, arn: str, limit: int) -> list[Change]:
    if len(f"{kind}|{arn}".encode()) > MAX_KEY_BYTES:
        return []
    return history.for_resource(kind, arn, limit)


async def off_loop(fn: Callable[[], T]) -> T:
    """Run a blocking read (a feed scan, a DynamoDB query) off the IOLoop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


async def resource_changes(handler: BaseHandler, kind: str, arn: str, limit: int) -> list[Change]:
    history = handler.readers.history
    if history is None:
        raise tornado.web.HTTPError(503, "change history is not enabled")
    try:
        return await off_loop(lambda: read_resource(history, kind, arn, limit))
    except PynamoDBException as exc:
        app_log.warning("change history of %s|%s unreadable: %s", kind, arn, exc)
        raise tornado.web.HTTPError(503, "change history unavailable") from None


# --- display helpers for the templates ------------------------------------------------------


def utc(at: float | None) -> str:
    """``2024-05-01 12:00:00 UTC``."""
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def json_value(value: Any) -> str:
    """Compact JSON on one line, or indented when that line would be long."""
    line = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    if len(line) <= INLINE_VALUE or not isinstance(value, dict | list):
        return line
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)


def diff_summary(diff: list[dict[str, Any]], shown: int = 3) -> str:
    """The changed paths, e.g. ``/tags/env, /policy and 2 more``."""
    paths = [op["path"] for op in diff]
    head = ", ".join(paths[:shown])
    return head + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def breakable(text: str | None) -> str:
    """Escaped HTML of an ARN in unwrappable parts, a ``<wbr>`` after each ':' and '/' (as
    ``Inventory.breakable`` in common.js)."""
    parts = re.split(r"(?<=[:/])", text or "")
    spans = (f'<span class="part">{tornado.escape.xhtml_escape(part)}</span>' for part in parts)
    return "<wbr>".join(spans)


def resource_href(arn: str, kind: str | None = None) -> str:
    href = "/resource/" + urllib.parse.quote(arn, safe="")
    return href + ("?" + urllib.parse.urlencode({"kind": kind}) if kind else "")


TEMPLATE_HELPERS = {
    "utc": utc,
    "iso": iso,
    "json_value": json_value,
    "inline_value": INLINE_VALUE,
    "diff_summary": diff_summary,
    "resource_href": resource_href,
    "breakable": breakable,
    "kind_label": lambda kind: KIND_LABELS.get(kind, kind),
}


@dataclass(frozen=True)
class ResourceHistory:
    """What the resource page's History section shows: changes, or why there are none."""

    kind: str | None
    changes: list[Change]
    problem: str | None
    retention_days: int


async def resource_history(
    handler: BaseHandler, arn: str, kind: str | None, limit: int = 100
) -> ResourceHistory:
    """The resource's changes for its page; a failed read is a message there, not an error."""
    retention = handler.inventory_settings.history.retention_days
    if handler.readers.history is None:
        return ResourceHistory(kind, [], "Change history is not enabled.", retention)
    try:
        if kind is None:
            p = handler.readers.cache.locate(arn)
            kind = None if p is None else p.kind
        if kind is None:
            return ResourceHistory(None, [], "This resource is not in the cache.", retention)
        changes = await resource_changes(handler, kind, arn, limit)
    except (redis.RedisError, tornado.web.HTTPError):
        return ResourceHistory(kind, [], "The change history could not be read.", retention)
    return ResourceHistory(kind, changes, None, retention)
