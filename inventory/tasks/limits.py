"""IAM role quota per account: every account at once, one failure does not stop the others."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import shared_task

from inventory.aws.limits import get_account_summary, transform_role_limit
from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, IAM_ROLE_LIMIT
from inventory.metrics import FAILED, OK
from inventory.runtime import Runtime
from inventory.tasks.accounts import active_accounts
from inventory.tasks.base import AWS, InventoryTask, describe

log = logging.getLogger(__name__)
TASK = "get_iam_role_limit"
CONCURRENCY = 8


def role_limits(runtime: Runtime) -> dict[str, Any]:
    """GetAccountSummary in every active account concurrently; store what succeeded."""
    accounts = active_accounts(runtime)
    region = runtime.settings.deployment_region

    def one(account: dict[str, Any]) -> dict[str, Any]:
        client = runtime.account_client("iam", account, region)
        return transform_role_limit(get_account_summary(client), account["id"])

    records: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        futures = {a["id"]: pool.submit(one, a) for a in accounts}
    for account_id, future in futures.items():
        now = time.time()
        try:
            records.append(future.result())
            runtime.outcomes.record(TASK, account_id, OK, now)
        except Exception as exc:  # noqa: BLE001 - recorded per account, the others go on
            failed[account_id] = describe(exc)
            runtime.outcomes.record(TASK, account_id, FAILED, now, describe(exc))
            log.warning("role limit of %s failed: %s", account_id, exc)
    # A failed account keeps its previous figures: the listing is complete only without failures.
    runtime.store.replace_partition(
        IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL, records, complete=not failed
    )
    return {
        "accounts": {r["account_id"]: {"roles": r["roles"], "quota": r["quota"]} for r in records},
        "failed": failed,
    }


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.get_iam_role_limit",
    routing_queue=AWS,
    active_only=True,
    replicates=(IAM_ROLE_LIMIT,),
)
def get_iam_role_limit(self: InventoryTask) -> dict[str, Any]:
    """IAM GetAccountSummary per account -> roles used / roles quota, stored and exported."""
    return role_limits(self.runtime)
