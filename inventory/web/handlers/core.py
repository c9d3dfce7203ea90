"""Health, readiness, metrics and the basic resource/partition/account API."""

from __future__ import annotations

import asyncio

import redis
import tornado.web

from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, Partition
from inventory.web import params
from inventory.web.base import AuthenticatedHandler, BaseHandler


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.write_json({"status": "ok"})

    def head(self) -> None:
        self.set_status(200)


class ReadyHandler(BaseHandler):
    def get(self) -> None:
        try:
            self.readers.cache.client.ping()
            partitions = len(self.readers.cache.partitions())
        except redis.RedisError:
            self.write_json({"status": "unavailable", "redis": False}, 503)
            return
        status = 200 if partitions else 503
        self.write_json(
            {"status": "ready" if partitions else "empty", "partitions": partitions}, status
        )


class ResourceHandler(AuthenticatedHandler):
    """``GET /api/v1/resource?arn=``: one cached record."""

    def get(self) -> None:
        record = self.readers.cache.get(params.arn(self))
        if record is None:
            raise tornado.web.HTTPError(404, "no cached resource with that ARN")
        self.write_json(record)


class PartitionsHandler(AuthenticatedHandler):
    """``GET /api/v1/partitions``: every cached partition with its freshness."""

    def get(self) -> None:
        rows = []
        for p in self.readers.cache.partitions():
            meta = self.readers.cache.meta(p)
            rows.append(
                {
                    "kind": p.kind,
                    "account_id": p.account_id,
                    "region": p.region,
                    "count": meta.count if meta else 0,
                    "refreshed_at": meta.refreshed_at if meta else None,
                    "complete": meta.complete if meta else None,
                }
            )
        self.write_json({"partitions": rows})


class AccountsHandler(AuthenticatedHandler):
    """``GET /api/v1/accounts``: the account mapping."""

    def get(self) -> None:
        items = self.readers.cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
        self.write_json({"accounts": sorted(items.values(), key=lambda a: a["id"])})


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
    (r"/metrics", MetricsHandler),
]
