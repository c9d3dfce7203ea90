"""Health, readiness, metrics and the basic resource/partition/account API."""

from __future__ import annotations

import asyncio

import redis
import tornado.web

from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, Partition
from inventory.registry import public_kinds
from inventory.web.api import operation
from inventory.web.base import AuthenticatedHandler, BaseHandler
from inventory.web.models.core import Accounts, ByArn, Kinds, PartitionRow, Partitions, Record


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.write_json({"status": "ok"})

    def head(self) -> None:
        self.set_status(200)


class ReadyHandler(BaseHandler):
    """Ready: Redis answers, holds partitions, and the search index (if any) is current."""

    def get(self) -> None:
        try:
            self.readers.cache.client.ping()
            partitions = len(self.readers.cache.partitions())
        except redis.RedisError:
            self.write_json({"status": "unavailable", "redis": False}, 503)
            return
        body: dict[str, object] = {"status": "ready" if partitions else "empty"}
        body["partitions"] = partitions
        search = self.readers.search
        if search is not None:
            body["search"] = status = search.status()
            if partitions and status["status"] != "ready":
                body["status"] = "indexing"
        self.write_json(body, 200 if body["status"] == "ready" else 503)


class ResourceHandler(AuthenticatedHandler):
    """``GET /api/v1/resource?arn=``: one cached record."""

    @operation(Record, query=ByArn, errors=(404,))
    def get(self) -> None:
        """One cached record by ARN."""
        record = self.readers.cache.get(self.query(ByArn).arn)
        if record is None:
            raise tornado.web.HTTPError(404, "no cached resource with that ARN")
        self.write_model(Record.model_validate(record))


class PartitionsHandler(AuthenticatedHandler):
    """``GET /api/v1/partitions``: every cached partition with its freshness."""

    @operation(Partitions)
    def get(self) -> None:
        """Every cached partition with its item count and freshness."""
        rows = []
        for p in self.readers.cache.partitions():
            meta = self.readers.cache.meta(p)
            rows.append(
                PartitionRow(
                    kind=p.kind,
                    account_id=p.account_id,
                    region=p.region,
                    count=meta.count if meta else 0,
                    refreshed_at=meta.refreshed_at if meta else None,
                    complete=meta.complete if meta else None,
                )
            )
        self.write_model(Partitions(partitions=rows))


class AccountsHandler(AuthenticatedHandler):
    """``GET /api/v1/accounts``: the account mapping."""

    @operation(Accounts)
    def get(self) -> None:
        """The account mapping, sorted by id."""
        items = self.readers.cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
        accounts = sorted(items.values(), key=lambda a: a["id"])
        self.write_model(Accounts.model_validate({"accounts": accounts}))


class KindsHandler(AuthenticatedHandler):
    """``GET /api/v1/kinds``: every resource kind and its label (the registry, for clients)."""

    @operation(Kinds)
    def get(self) -> None:
        """Every resource kind with its label, as the registry declares them."""
        self.write_model(Kinds.model_validate({"kinds": public_kinds()}))


class MetricsHandler(AuthenticatedHandler):
    """``GET /metrics``: the Prometheus exposition, read from Redis on every scrape."""

    async def get(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        collector = self.readers.metrics
        if collector is None:
            raise tornado.web.HTTPError(404, "metrics are not enabled")
        # Redis reads block: off the IOLoop. A Redis failure is inventory_exporter_up 0, not 503.
        body = await asyncio.get_running_loop().run_in_executor(
            None, generate_latest, collector.registry
        )
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


ROUTES = [
    (r"/healthz", HealthHandler),
    (r"/readyz", ReadyHandler),
    (r"/api/v1/resource", ResourceHandler),
    (r"/api/v1/partitions", PartitionsHandler),
    (r"/api/v1/accounts", AccountsHandler),
    (r"/api/v1/kinds", KindsHandler),
    (r"/metrics", MetricsHandler),
]
