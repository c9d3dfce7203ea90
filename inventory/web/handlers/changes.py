"""Change history: the recent feed (Redis stream) and one resource's history (DynamoDB)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import tornado.web

from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, Partition
from inventory.web.api import operation
from inventory.web.base import AuthenticatedHandler
from inventory.web.handlers.history import (
    HISTORY_KINDS,
    KIND_LABELS,
    PAGE_LIMIT,
    TEMPLATE_HELPERS,
    off_loop,
    read_feed,
    resource_changes,
)
from inventory.web.handlers.pages import PageHandler
from inventory.web.models.changes import (
    ChangeFeed,
    ChangesPageQuery,
    FeedQuery,
    HistoryQuery,
    ResourceChanges,
)


class ChangesHandler(AuthenticatedHandler):
    """``GET /api/v1/changes?account=&kind=&since=&until=&limit=&cursor=``: the recent feed."""

    @operation(ChangeFeed, query=FeedQuery)
    async def get(self) -> None:
        """Recent changes of every resource, newest first, filtered and paged by cursor."""
        query = self.query(FeedQuery)
        history = self.readers.history
        if history is None:
            raise tornado.web.HTTPError(503, "change history is not enabled")
        page = await off_loop(lambda: read_feed(history, query))
        self.write_model(ChangeFeed.model_validate(page.as_dict()))


class ResourceHistoryHandler(AuthenticatedHandler):
    """``GET /api/v1/resource/history?arn=&kind=&limit=``: one resource's changes, newest first.

    The kind is the cached resource's unless given (a deleted resource is no longer cached).
    """

    @operation(ResourceChanges, query=HistoryQuery, errors=(404,))
    async def get(self) -> None:
        """A resource's recorded changes (created, updated, deleted), newest first."""
        query = self.query(HistoryQuery)
        arn, kind, limit = query.arn, query.kind, query.limit
        if not kind:
            p = self.readers.cache.locate(arn)
            if p is None:
                raise tornado.web.HTTPError(
                    404, "no cached resource with that ARN (give 'kind' for a deleted one)"
                )
            kind = p.kind
        changes = await resource_changes(self, kind, arn, limit)
        self.write_model(
            ResourceChanges.model_validate(
                {
                    "arn": arn,
                    "kind": kind,
                    "changes": [c.as_dict() for c in changes],
                    "retention_days": self.inventory_settings.history.retention_days,
                }
            )
        )


class ChangesPage(PageHandler):
    """``GET /changes``: the recent feed as a table, filtered by a GET form, paged by cursor."""

    template, page = "changes.html", "changes"

    async def get(self) -> None:
        context = self._context()
        try:
            query = self.query(ChangesPageQuery)
        except tornado.web.HTTPError as exc:
            if exc.status_code != 400:
                raise
            self.set_status(400)
            context["error"] = exc.log_message
            self.render_page(**context, **TEMPLATE_HELPERS)
            return
        context["filters"] = query.args()
        if query.cursor is not None:
            context["newest_href"] = _changes_href(query.args())
        history = self.readers.history
        if history is not None:
            page = await off_loop(lambda: read_feed(history, query))
            context["changes"], context["span"] = page.changes, page.span
            context["older_href"] = _older_href(query, page.next_cursor)
        self.render_page(**context, **TEMPLATE_HELPERS)

    def _context(self) -> dict[str, Any]:
        """The page's values before the query is read: accounts and kinds for the form."""
        accounts = self.readers.cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
        names = {a["id"]: a.get("name") or "" for a in accounts.values() if "id" in a}
        return {
            "accounts": sorted(names.items(), key=lambda a: (a[1].lower(), a[0])),
            "account_names": names,
            "kinds": [(k, KIND_LABELS.get(k, k)) for k in HISTORY_KINDS],
            "error": None,
            "enabled": self.readers.history is not None,
            "changes": [],
            "span": None,
            "filters": {},
            "older_href": None,
            "newest_href": None,
        }


def _changes_href(args: dict[str, str]) -> str:
    return "/changes" + ("?" + urllib.parse.urlencode(args) if args else "")


def _older_href(query: ChangesPageQuery, cursor: str | None) -> str | None:
    """The next (older) page's link, with the same filters and page size."""
    if cursor is None:
        return None
    more = query.args() | {"cursor": cursor}
    if query.limit != PAGE_LIMIT:
        more["limit"] = str(query.limit)
    return "/changes?" + urllib.parse.urlencode(more)


ROUTES = [
    (r"/api/v1/changes", ChangesHandler),
    (r"/api/v1/resource/history", ResourceHistoryHandler),
    (r"/changes", ChangesPage),
]
