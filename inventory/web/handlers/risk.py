"""Findings and "who can do this?": ``/api/v1/findings``, ``/api/v1/access`` and friends.

Findings are read from the cached ``finding`` partitions; access questions are answered by the
in-memory :class:`~inventory.analysis.access.AccessIndex`. Both run in an executor: a request
never holds the event loop for the time it takes to read or evaluate.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.web

from inventory.analysis.access import AccessIndex
from inventory.analysis.catalogue import catalogue
from inventory.analysis.findings import CATEGORIES, SEVERITIES, SEVERITY_RANK
from inventory.cache.keys import FINDING, GLOBAL, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.web import params
from inventory.web.base import AuthenticatedHandler

FINDINGS_MAX_LIMIT = 1000
ACCESS_MAX_LIMIT = 1000
ACTION = re.compile(r"^[a-zA-Z0-9-]{1,64}:[a-zA-Z0-9]{1,128}$", re.ASCII)
SERVICE = re.compile(r"^[a-z0-9-]{1,64}$", re.ASCII)
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
    if account is not None:
        partitions = [Partition(FINDING, account, GLOBAL)]
    else:
        partitions = cache.partitions(FINDING)
    rows: list[dict[str, Any]] = []
    for p in partitions:
        if arn is not None:
            values = [json.loads(v) for v in cache.get_items(p, [arn]).values()]
        else:
            values = list(cache.items(p).values())
        for record in values:
            for row in flatten(record):
                if severity is not None and row["severity"] != severity:
                    continue
                if category is not None and row["category"] != category:
                    continue
                rows.append(row)
    rows.sort(
        key=lambda r: (
            SEVERITY_RANK.get(r["severity"], 9),
            r["account_id"] or "",
            r["arn"],
            r["id"],
        )
    )
    return rows


class FindingsHandler(AuthenticatedHandler):
    """``GET /api/v1/findings?account=&severity=&kind=&arn=``: risk findings, worst first."""

    async def get(self) -> None:
        account = params.account(self)
        severity = params.choice(self, "severity", SEVERITIES, "") or None
        category = params.choice(self, "kind", tuple(CATEGORIES), "") or None
        arn = params.text(self, "arn", 2048)
        if arn is not None and not arn.startswith("arn:"):
            raise params.bad("arn", "must be an ARN")
        limit = params.integer(self, "limit", 200, 1, FINDINGS_MAX_LIMIT)
        offset = params.integer(self, "offset", 0, 0, 10_000_000)
        rows = await off_loop(read_findings, self.readers.cache, account, arn, severity, category)
        counts = {s: 0 for s in SEVERITIES}
        for row in rows:
            counts[row["severity"]] = counts.get(row["severity"], 0) + 1
        self.write_json(
            {
                "findings": rows[offset : offset + limit],
                "total": len(rows),
                "counts": counts,
                "offset": offset,
                "limit": limit,
            }
        )


class AccessBase(AuthenticatedHandler):
    @property
    def index(self) -> AccessIndex:
        reader = self.readers.access
        index = reader.current() if reader is not None else None
        if index is None:
            raise tornado.web.HTTPError(503, "access index unavailable (still loading?)")
        return index

    def action_argument(self) -> str:
        raw = params.text(self, "action", 200, required=True)
        assert raw is not None
        found = catalogue().get(raw) if ACTION.match(raw) else None
        if found is None:
            raise params.bad("action", "must be an IAM action AWS defines, e.g. s3:GetObject")
        return found.name


class AccessHandler(AccessBase):
    """``GET /api/v1/access?action=&resource=``: every principal allowed the action on it."""

    async def get(self) -> None:
        action = self.action_argument()
        resource = params.arn(self, "resource")
        limit = params.integer(self, "limit", 200, 1, ACCESS_MAX_LIMIT)
        index = self.index
        answer = await off_loop(index.who_can, action, resource, limit)
        self.write_json(answer.as_dict() | {"principals_indexed": index.size})


class PrincipalAccessHandler(AccessBase):
    """``GET /api/v1/access/principal?arn=&service=``: what a principal may do on a service."""

    async def get(self) -> None:
        arn = params.arn(self)
        service = params.text(self, "service", 64, required=True)
        assert service is not None
        if not SERVICE.match(service) or not catalogue().service_actions(service):
            raise params.bad("service", "must be an AWS service prefix, e.g. s3")
        index = self.index
        actions = await off_loop(index.what_can, arn, service)
        if actions is None:
            raise tornado.web.HTTPError(404, "no cached role or user with that ARN")
        self.write_json({"arn": arn, "service": service, "actions": actions})


class ActionsHandler(AuthenticatedHandler):
    """``GET /api/v1/access/actions?service=``: the catalogue's actions of one service."""

    def get(self) -> None:
        service = params.text(self, "service", 64, required=True)
        assert service is not None
        actions = catalogue().service_actions(service) if SERVICE.match(service) else ()
        if not actions:
            raise params.bad("service", "must be an AWS service prefix, e.g. s3")
        self.write_json({"service": service, "actions": list(actions)})


ROUTES = [
    (r"/api/v1/findings", FindingsHandler),
    (r"/api/v1/access", AccessHandler),
    (r"/api/v1/access/principal", PrincipalAccessHandler),
    (r"/api/v1/access/actions", ActionsHandler),
]
