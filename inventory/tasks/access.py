"""Which groups and users may use which IAM roles: role tags plus a static mapping."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from celery import shared_task

from inventory.cache.keys import (
    ALL_ACCOUNTS,
    GLOBAL,
    IAM_ROLE,
    PRINCIPAL_ACCESS,
    ROLE_ACCESS,
    Partition,
    principal_key,
)
from inventory.runtime import Runtime
from inventory.tasks.base import MAINTENANCE, InventoryTask

_SPLIT = re.compile(r"[:,\s]+")


def principals_from_tags(tags: Mapping[str, str], tag_keys: Iterable[str]) -> set[str]:
    """Groups/emails named in a role's tags (values separated by ':', ',' or spaces), lowercased."""
    found: set[str] = set()
    for key in tag_keys:
        found.update(p.lower() for p in _SPLIT.split(tags.get(key, "")) if p)
    return found


def build_mapping(
    roles: Iterable[Mapping[str, Any]],
    tag_keys: Iterable[str],
    static: Mapping[str, Iterable[str]],
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(role ARN -> principals, principal -> role ARNs); pure."""
    keys = list(tag_keys)
    by_role: dict[str, set[str]] = defaultdict(set)
    for role in roles:
        tagged = principals_from_tags(role.get("tags") or {}, keys)
        if tagged:
            by_role[role["arn"]].update(tagged)
    for arn, listed in static.items():
        # Groups and emails compare case-insensitively: one principal, one record.
        by_role[arn].update(p.lower() for p in listed)
    by_principal: dict[str, set[str]] = defaultdict(set)
    for arn, principals in by_role.items():
        for principal in principals:
            by_principal[principal].add(arn)
    return dict(by_role), dict(by_principal)


def store_credential_mapping(runtime: Runtime) -> dict[str, int]:
    cache = runtime.redis_cache
    roles = [r for p in cache.partitions(IAM_ROLE) for r in cache.items(p).values()]
    settings = runtime.settings.credential_mapping
    by_role, by_principal = build_mapping(roles, settings.role_tag_keys, settings.static)
    role_records = [
        {"arn": arn, "kind": ROLE_ACCESS, "principals": sorted(p)} for arn, p in by_role.items()
    ]
    principal_records = [
        {"arn": principal_key(p), "kind": PRINCIPAL_ACCESS, "principal": p, "roles": sorted(r)}
        for p, r in by_principal.items()
    ]
    store = runtime.store
    for kind, records in ((ROLE_ACCESS, role_records), (PRINCIPAL_ACCESS, principal_records)):
        store.replace_partition(kind, ALL_ACCOUNTS, GLOBAL, records, complete=True, durable=False)
    return {"roles": len(role_records), "principals": len(principal_records)}


def eligible_roles(runtime: Runtime, principal: str) -> list[str]:
    """Role ARNs a group or user may use."""
    found = runtime.redis_cache.get_items(
        Partition(PRINCIPAL_ACCESS, ALL_ACCOUNTS, GLOBAL), [principal_key(principal)]
    )
    return json.loads(next(iter(found.values())))["roles"] if found else []


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.cache_credential_authorization_mapping",
    routing_queue=MAINTENANCE,
)
def cache_credential_authorization_mapping(self: InventoryTask) -> dict[str, int]:
    """Role tags + static mapping -> who may use which role, in both directions."""
    return store_credential_mapping(self.runtime)
