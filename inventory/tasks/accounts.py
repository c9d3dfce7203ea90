"""The account mapping: which accounts exist and which are synced."""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import shared_task

from inventory.aws.accounts import (
    ACTIVE,
    account_arn,
    list_organization_accounts,
    merge_sources,
    static_account_record,
    transform_organization_account,
)
from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, Partition
from inventory.runtime import Runtime
from inventory.tasks.base import MAINTENANCE, InventoryTask

log = logging.getLogger(__name__)
ACCOUNTS = Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)


def fetch_account_mapping(runtime: Runtime) -> list[dict[str, Any]]:
    """Static accounts from settings merged over Organizations ListAccounts (if enabled)."""
    settings = runtime.settings
    org_records: list[dict[str, Any]] = []
    org = settings.accounts.organizations
    if org.enabled:
        assert org.management_account_id is not None
        client = runtime.aws.client(
            "organizations", org.management_account_id, settings.deployment_region, org.role_name
        )
        org_records = [
            transform_organization_account(a) for a in list_organization_accounts(client)
        ]
    static_records = [
        static_account_record(
            a.id,
            a.name,
            # an unset status must not override what Organizations says
            a.status if "status" in a.model_fields_set or not org.enabled else None,
            a.email,
            a.role_name,
        )
        for a in settings.accounts.static
    ]
    records = merge_sources(org_records, static_records)
    for record in records:
        record["status"] = record["status"] or ACTIVE
    return records


def store_account_mapping(runtime: Runtime) -> dict[str, Any]:
    records = fetch_account_mapping(runtime)
    result = runtime.store.replace_partition(
        ACCOUNTS.kind, ACCOUNTS.account_id, ACCOUNTS.region, records, complete=True
    )
    return {
        "accounts": len(records),
        "active": sum(1 for r in records if r["status"] == ACTIVE),
        "created": result.created,
        "updated": result.updated,
        "removed": result.removed,
    }


def account_mapping(runtime: Runtime) -> list[dict[str, Any]]:
    """The cached mapping, built now if it has never been cached."""
    if runtime.redis_cache.meta(ACCOUNTS) is None:
        store_account_mapping(runtime)
    items = runtime.redis_cache.items(ACCOUNTS)
    return sorted(items.values(), key=lambda r: r["id"])


def active_accounts(runtime: Runtime) -> list[dict[str, Any]]:
    """Accounts to sync: only ACTIVE ones."""
    return [a for a in account_mapping(runtime) if a["status"] == ACTIVE]


class AccountNotSynced(Exception):
    """The account id is not in the account mapping, or not ACTIVE there: AWS is not called."""

    #: Waiting does not change the mapping; its next refresh (or the next sweep) will.
    retryable = False


def account_record(runtime: Runtime, account_id: str) -> dict[str, Any]:
    """One mapped account's record; an id that is not in the mapping raises AccountNotSynced."""
    if runtime.redis_cache.meta(ACCOUNTS) is None:
        store_account_mapping(runtime)
    found = runtime.redis_cache.get_items(ACCOUNTS, [account_arn(account_id)])
    if not found:
        # Never a stand-in record: an id from an event or a message is not a reason to
        # assume a role in an account the configured sources do not list.
        raise AccountNotSynced(f"account {account_id} is not in the account mapping")
    return dict(json.loads(next(iter(found.values()))))


def account_to_sync(runtime: Runtime, account_id: str) -> dict[str, Any]:
    """The record of an account whose resources may be fetched: mapped and ACTIVE."""
    record = account_record(runtime, account_id)
    if record.get("status") != ACTIVE:
        raise AccountNotSynced(f"account {account_id} is {record.get('status')}, not {ACTIVE}")
    return record


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.cache_cloud_account_mapping",
    routing_queue=MAINTENANCE,
    active_only=True,
    replicates=(ACCOUNT,),
)
def cache_cloud_account_mapping(self: InventoryTask) -> dict[str, Any]:
    """Organizations ListAccounts + static accounts -> the account mapping in Redis and DynamoDB."""
    return store_account_mapping(self.runtime)
