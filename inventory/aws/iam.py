"""IAM: one GetAccountAuthorizationDetails listing per account (roles' settings from ListRoles),
and its pure transforms."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from inventory.aws.kind import CollectContext
from inventory.aws.listing import Listing, storable
from inventory.aws.records import SkippedRecord, day, iso, policy_document, tags, transform_each
from inventory.cache.keys import IAM_GROUP, IAM_POLICY, IAM_ROLE, IAM_USER

FILTERS = ["Role", "User", "Group", "LocalManagedPolicy"]
ACTIONS = ("iam:GetAccountAuthorizationDetails", "iam:ListRoles")
#: Role fields GetAccountAuthorizationDetails leaves out and ListRoles returns.
ROLE_SETTINGS = ("Description", "MaxSessionDuration")


@dataclass
class AuthorizationDetails:
    """Raw lists from every page of GetAccountAuthorizationDetails."""

    roles: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


def get_authorization_details(client: Any) -> AuthorizationDetails:
    """GetAccountAuthorizationDetails (all pages): roles, users, groups, local managed policies.

    Any failed page raises, so a partial listing is never mistaken for a complete one.
    """
    details = AuthorizationDetails()
    paginator = client.get_paginator("get_account_authorization_details")
    for page in paginator.paginate(Filter=FILTERS, PaginationConfig={"PageSize": 1000}):
        details.pages += 1
        details.roles.extend(page.get("RoleDetailList", ()))
        details.users.extend(page.get("UserDetailList", ()))
        details.groups.extend(page.get("GroupDetailList", ()))
        details.policies.extend(page.get("Policies", ()))
    return details


def get_role_settings(client: Any) -> tuple[dict[str, dict[str, Any]], int]:
    """ListRoles (all pages, 1,000 a page): each role's description and maximum session
    duration by ARN, and the number of pages.

    GetAccountAuthorizationDetails does not return them
    (https://docs.aws.amazon.com/IAM/latest/APIReference/API_RoleDetail.html).
    """
    settings: dict[str, dict[str, Any]] = {}
    pages = 0
    paginator = client.get_paginator("list_roles")
    for page in paginator.paginate(PaginationConfig={"PageSize": 1000}):
        pages += 1
        for role in page.get("Roles", ()):
            settings[role["Arn"]] = {k: role[k] for k in ROLE_SETTINGS if k in role}
    return settings, pages


def with_role_settings(
    roles: list[dict[str, Any]], settings: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Roles as GetAccountAuthorizationDetails lists them, with ListRoles' settings added.

    A role created between the two listings has none until the next sweep.
    """
    return [{**raw, **settings.get(raw.get("Arn"), {})} for raw in roles]


def attached_policies(raw: list[dict[str, str]] | None) -> list[dict[str, str]]:
    policies = [{"name": p["PolicyName"], "arn": p["PolicyArn"]} for p in raw or ()]
    return sorted(policies, key=lambda p: p["arn"])


def _inline(raw: list[dict[str, Any]] | None, arn: str) -> dict[str, dict[str, Any]]:
    return {
        p["PolicyName"]: policy_document(p["PolicyDocument"], f"inline policy {p['PolicyName']}")
        for p in raw or ()
    }


def _boundary(raw: dict[str, str] | None) -> dict[str, str] | None:
    if not raw:
        return None
    return {
        "type": raw.get("PermissionsBoundaryType", "Policy"),
        "arn": raw["PermissionsBoundaryArn"],
    }


def transform_role(raw: dict[str, Any], account_id: str) -> dict[str, Any]:
    """A role with its trust policy, inline and attached policies, boundary, tags and last use."""
    arn = raw["Arn"]
    last_used = raw.get("RoleLastUsed") or {}
    return {
        "arn": arn,
        "kind": IAM_ROLE,
        "account_id": account_id,
        "name": raw["RoleName"],
        "id": raw.get("RoleId"),
        "path": raw.get("Path"),
        "created": iso(raw.get("CreateDate")),
        "description": raw.get("Description"),
        "max_session_duration": raw.get("MaxSessionDuration"),
        "trust_policy": policy_document(raw["AssumeRolePolicyDocument"], "trust policy"),
        "inline_policies": _inline(raw.get("RolePolicyList"), arn),
        "attached_policies": attached_policies(raw.get("AttachedManagedPolicies")),
        "permissions_boundary": _boundary(raw.get("PermissionsBoundary")),
        "tags": tags(raw.get("Tags")),
        "last_used": (
            {"date": day(last_used["LastUsedDate"]), "region": last_used.get("Region")}
            if last_used.get("LastUsedDate")
            else None
        ),
        "instance_profiles": sorted(p["Arn"] for p in raw.get("InstanceProfileList") or ()),
    }


def transform_user(raw: dict[str, Any], account_id: str) -> dict[str, Any]:
    """A user with inline and attached policies, groups, boundary and tags."""
    arn = raw["Arn"]
    return {
        "arn": arn,
        "kind": IAM_USER,
        "account_id": account_id,
        "name": raw["UserName"],
        "id": raw.get("UserId"),
        "path": raw.get("Path"),
        "created": iso(raw.get("CreateDate")),
        "inline_policies": _inline(raw.get("UserPolicyList"), arn),
        "attached_policies": attached_policies(raw.get("AttachedManagedPolicies")),
        "groups": sorted(raw.get("GroupList") or ()),
        "permissions_boundary": _boundary(raw.get("PermissionsBoundary")),
        "tags": tags(raw.get("Tags")),
    }


def transform_group(raw: dict[str, Any], account_id: str) -> dict[str, Any]:
    """A group with inline and attached policies."""
    arn = raw["Arn"]
    return {
        "arn": arn,
        "kind": IAM_GROUP,
        "account_id": account_id,
        "name": raw["GroupName"],
        "id": raw.get("GroupId"),
        "path": raw.get("Path"),
        "created": iso(raw.get("CreateDate")),
        "inline_policies": _inline(raw.get("GroupPolicyList"), arn),
        "attached_policies": attached_policies(raw.get("AttachedManagedPolicies")),
    }


def transform_policy(raw: dict[str, Any], account_id: str) -> dict[str, Any]:
    """A customer managed policy with its default version's document."""
    arn = raw["Arn"]
    default = next(
        (v for v in raw.get("PolicyVersionList") or () if v.get("IsDefaultVersion")), None
    )
    return {
        "arn": arn,
        "kind": IAM_POLICY,
        "account_id": account_id,
        # moto leaves PolicyName out of this API's Policies list; the ARN ends with it.
        "name": raw.get("PolicyName") or arn.rsplit("/", 1)[-1],
        "id": raw.get("PolicyId"),
        "path": raw.get("Path"),
        "description": raw.get("Description") or None,
        "default_version_id": raw.get("DefaultVersionId"),
        "document": (
            policy_document(default["Document"], "default policy version") if default else None
        ),
        "attachment_count": raw.get("AttachmentCount"),
        "permissions_boundary_usage_count": raw.get("PermissionsBoundaryUsageCount"),
        "is_attachable": raw.get("IsAttachable"),
        "created": iso(raw.get("CreateDate")),
        "updated": iso(raw.get("UpdateDate")),
    }


@dataclass
class IamRecords:
    """Our records by kind, and the raw records that had to be skipped."""

    by_kind: dict[str, list[dict[str, Any]]]
    skipped: list[SkippedRecord]


def transform_authorization_details(details: AuthorizationDetails, account_id: str) -> IamRecords:
    """Every IAM kind of one account; malformed records are skipped and listed."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    skipped: list[SkippedRecord] = []
    for kind, raws, transform, name_key in (
        (IAM_ROLE, details.roles, transform_role, "RoleName"),
        (IAM_USER, details.users, transform_user, "UserName"),
        (IAM_GROUP, details.groups, transform_group, "GroupName"),
        (IAM_POLICY, details.policies, transform_policy, "PolicyName"),
    ):
        records, bad = transform_each(
            raws,
            lambda raw, t=transform: storable(t(raw, account_id)),
            lambda raw, k=name_key, kd=kind: f"{kd} {raw.get('Arn') or raw.get(k)}",
        )
        by_kind[kind] = records
        skipped.extend(bad)
    return IamRecords(by_kind, skipped)


def collect_iam(ctx: CollectContext) -> dict[str, Listing]:
    """The four IAM kinds of one account from one GetAccountAuthorizationDetails listing, and
    the roles' settings from ListRoles (the two read at once).

    A record that cannot be transformed keeps its cached copy; one that cannot even be named
    could be any cached item, so then no kind's listing is complete.
    """
    listed_at = time.time()
    # The two listings are independent: read at once on the sync's pool (one after the
    # other when it has one thread), so ListRoles adds no time to the authorization details.
    details, (settings, pages) = ctx.reads.map(
        lambda listing: listing(ctx.client), (get_authorization_details, get_role_settings)
    )
    details.roles = with_role_settings(details.roles, settings)
    details.pages += pages
    records = transform_authorization_details(details, ctx.account_id)
    complete = all(bad.arn for bad in records.skipped)
    keep = {bad.arn for bad in records.skipped if bad.arn}
    listings = {}
    for kind, found in records.by_kind.items():
        skipped = [bad for bad in records.skipped if bad.identifier.startswith(f"{kind} ")]
        listing = Listing(found, skipped, complete, set(keep), calls=details.pages)
        listing.listed_at = listed_at
        listings[kind] = listing
    return listings
