"""Policy requests: DynamoDB (the source of truth) -> the Redis read model for ``/requests``."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, POLICY_REQUEST
from inventory.runtime import Runtime
from inventory.tasks.base import MAINTENANCE, InventoryTask


def refresh_request_cache(runtime: Runtime) -> dict[str, Any]:
    """Make the Redis read model equal the requests table (Redis only: DynamoDB is the truth)."""
    records = runtime.requests.all()
    result = runtime.store.replace_partition(
        POLICY_REQUEST, ALL_ACCOUNTS, GLOBAL, records, complete=True, durable=False
    )
    return {"requests": len(records), "changed": result.created + result.updated + result.removed}


@shared_task(
    bind=True, base=InventoryTask, name="inventory.cache_policy_requests", routing_queue=MAINTENANCE
)
def cache_policy_requests(self: InventoryTask) -> dict[str, Any]:
    """Scan the policy requests table into the Redis read model, newest first."""
    return refresh_request_cache(self.runtime)
