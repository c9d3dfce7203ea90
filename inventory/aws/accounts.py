"""Account sources: AWS Organizations ListAccounts, and the static list in settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inventory.aws.records import iso
from inventory.cache.keys import ACCOUNT

ACTIVE = "ACTIVE"


def account_arn(account_id: str) -> str:
    """The account's root principal ARN, the key an account record is cached under."""
    return f"arn:aws:iam::{account_id}:root"


def list_organization_accounts(client: Any) -> list[dict[str, Any]]:
    """Organizations ListAccounts (all pages) as raw account dicts."""
    accounts: list[dict[str, Any]] = []
    for page in client.get_paginator("list_accounts").paginate():
        accounts.extend(page["Accounts"])
    return accounts


def transform_organization_account(raw: dict[str, Any]) -> dict[str, Any]:
    """One Organizations account as our account record."""
    # ``State`` replaces ``Status`` from 2025; either may be present.
    status = raw.get("Status") or raw.get("State") or "UNKNOWN"
    return {
        "arn": account_arn(raw["Id"]),
        "kind": ACCOUNT,
        "id": raw["Id"],
        "name": raw.get("Name") or raw["Id"],
        "status": status,
        "email": raw.get("Email"),
        "joined": iso(raw.get("JoinedTimestamp")),
        "organizations_arn": raw.get("Arn"),
        "source": "organizations",
        "role_name": None,
    }


def static_account_record(
    account_id: str, name: str, status: str | None, email: str | None, role_name: str | None
) -> dict[str, Any]:
    """An account listed in settings as our account record."""
    return {
        "arn": account_arn(account_id),
        "kind": ACCOUNT,
        "id": account_id,
        "name": name,
        "status": status,
        "email": email,
        "joined": None,
        "organizations_arn": None,
        "source": "static",
        "role_name": role_name,
    }


def merge_sources(*sources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per account id; a later source fills in what an earlier one left empty.

    Static entries come last so that a name or role set in config wins over Organizations.
    """
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for record in source:
            current = merged.get(record["id"])
            if current is None:
                merged[record["id"]] = dict(record)
                continue
            for key, value in record.items():
                if value is not None:
                    current[key] = value
            current["source"] = "organizations+static"
    return sorted(merged.values(), key=lambda r: r["id"])
