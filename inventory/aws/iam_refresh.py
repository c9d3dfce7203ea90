"""IAM roles, users, groups and customer managed policies after their CloudTrail events.

With a cached record, one event costs one call: a changed inline policy is one Get*Policy, an
attach or detach one ListAttached*Policies, a trust policy or tag change one Get*. A principal
we do not hold yet is read in full, into the shape GetAccountAuthorizationDetails gives.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.iam import (
    attached_policies,
    transform_group,
    transform_policy,
    transform_role,
    transform_user,
)
from inventory.aws.kind import (
    ATTACHED,
    CREATE,
    DELETE,
    GROUPS,
    INLINE,
    RESOURCE,
    EventRules,
    NotAChange,
    Refresh,
    Target,
)
from inventory.aws.listing import storable
from inventory.aws.records import policy_document
from inventory.cache.keys import GLOBAL

SOURCE = "iam.amazonaws.com"
#: What the targeted reads of the four IAM kinds call.
ACTIONS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:GetUser",
    "iam:GetUserPolicy",
    "iam:ListUserPolicies",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupsForUser",
    "iam:GetGroup",
    "iam:GetGroupPolicy",
    "iam:ListGroupPolicies",
    "iam:ListAttachedGroupPolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
)
NO_SUCH_ENTITY = "NoSuchEntity"
# Get* returns fields the sweep does not read: a refresh must not add them either (the next sweep
# would take them away again). Roles' Description and MaxSessionDuration the sweep reads with
# ListRoles, so GetRole's are kept.
SWEEP_ABSENT = ("PasswordLastUsed",)
# Lists a refresh of one field keeps from the cached record.
_LISTS = ("inline_policies", "attached_policies", "instance_profiles", "groups")


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        found.extend(page.get(key, ()))
    return found


@dataclass(frozen=True)
class Principal:
    """How to read one kind of principal back: its calls, and where its ARN names it."""

    noun: str  # Role, User, Group: the API's own word
    segment: str  # role, user, group: in the ARN, before the path and name
    transform: Any
    profiles: bool = False  # roles: ListInstanceProfilesForRole
    groups: bool = False  # users: ListGroupsForUser

    def call(self, client: Any, verb: str, **kwargs: Any) -> Any:
        """``get_role``, ``list_role_policies``... of this principal's kind."""
        return getattr(client, verb.replace("*", self.segment))(**kwargs)

    @property
    def param(self) -> str:
        return f"{self.noun}Name"

    def arn_for(self, name: str, account_id: str, region: str = GLOBAL) -> str:
        """The ARN of a principal named as events name it (no path: see by_name lookups)."""
        return f"arn:aws:iam::{account_id}:{self.segment}/{name}"


ROLE = Principal("Role", "role", transform_role, profiles=True)
USER = Principal("User", "user", transform_user, groups=True)
GROUP = Principal("Group", "group", transform_group)


def refresh_principal(
    spec: Principal,
    client: Any,
    account_id: str,
    region: str,
    name: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A role, user or group after its events; None when IAM says it no longer exists."""
    who = {spec.param: name}
    try:
        if cached is None or CREATE in aspects:
            raw = _complete(client, spec, _get(client, spec, who), who)
            return storable(spec.transform(raw, account_id))
        return storable(_updated(client, spec, who, aspects, cached, account_id))
    except ClientError as exc:
        if error_code(exc) == NO_SUCH_ENTITY:  # the principal (inline reads handle their own)
            return None
        raise


def _get(client: Any, spec: Principal, who: dict[str, str]) -> dict[str, Any]:
    """Get* of the principal, less the fields the sweep never sees."""
    response = spec.call(client, "get_*", **who)[spec.noun]
    return {k: v for k, v in response.items() if k not in SWEEP_ABSENT}


def _updated(
    client: Any,
    spec: Principal,
    who: dict[str, str],
    aspects: Collection[str],
    cached: dict[str, Any],
    account_id: str,
) -> dict[str, Any]:
    """The cached record with the parts the events changed read again (a delete: Get* says
    whether it is gone)."""
    record = dict(cached)
    if RESOURCE in aspects or DELETE in aspects:
        fresh = spec.transform(_get(client, spec, who), account_id)
        record.update({k: v for k, v in fresh.items() if k not in _LISTS})
    for aspect in sorted(aspects):
        _read_aspect(client, spec, who, aspect, record)
    return record


def _read_aspect(
    client: Any, spec: Principal, who: dict[str, str], aspect: str, record: dict[str, Any]
) -> None:
    if aspect.startswith(INLINE):
        record["inline_policies"] = _inline(client, spec, who, aspect, record)
    elif aspect == ATTACHED:
        attached = _pages(
            client, f"list_attached_{spec.segment}_policies", "AttachedPolicies", **who
        )
        record["attached_policies"] = attached_policies(attached)
    elif aspect == GROUPS:
        groups = _pages(client, "list_groups_for_user", "Groups", **who)
        record["groups"] = sorted(g["GroupName"] for g in groups)


def _inline(
    client: Any, spec: Principal, who: dict[str, str], aspect: str, record: dict[str, Any]
) -> dict[str, Any]:
    policy = aspect.removeprefix(INLINE)
    policies = {k: v for k, v in (record.get("inline_policies") or {}).items() if k != policy}
    try:
        response = spec.call(client, "get_*_policy", **who, PolicyName=policy)
    except ClientError as exc:
        if error_code(exc) == NO_SUCH_ENTITY:
            return policies  # deleted (or the principal is gone: its own event says so)
        raise
    policies[policy] = policy_document(response["PolicyDocument"], f"inline policy {policy}")
    return dict(sorted(policies.items()))


def _complete(
    client: Any, spec: Principal, raw: dict[str, Any], who: dict[str, str]
) -> dict[str, Any]:
    """A Get* response completed into the shape GetAccountAuthorizationDetails returns."""
    raw = dict(raw)
    names = _pages(client, f"list_{spec.segment}_policies", "PolicyNames", **who)
    raw[f"{spec.noun}PolicyList"] = _inline_documents(client, spec, who, names)
    raw["AttachedManagedPolicies"] = _pages(
        client, f"list_attached_{spec.segment}_policies", "AttachedPolicies", **who
    )
    if spec.profiles:
        profiles = _pages(client, "list_instance_profiles_for_role", "InstanceProfiles", **who)
        raw["InstanceProfileList"] = profiles
    if spec.groups:
        groups = _pages(client, "list_groups_for_user", "Groups", **who)
        raw["GroupList"] = [g["GroupName"] for g in groups]
    return raw


def _inline_documents(
    client: Any, spec: Principal, who: dict[str, str], names: list[str]
) -> list[dict[str, Any]]:
    """Get*Policy of each listed inline policy, as GetAccountAuthorizationDetails lists them."""
    documents = []
    for name in names:
        try:
            response = spec.call(client, "get_*_policy", **who, PolicyName=name)
        except ClientError as exc:
            if error_code(exc) != NO_SUCH_ENTITY:
                raise
            # The policy was deleted since the listing, not the principal (were it gone too,
            # the calls after this one would say so).
            continue
        documents.append({"PolicyName": name, "PolicyDocument": response["PolicyDocument"]})
    return documents


def refresh_policy(
    client: Any,
    account_id: str,
    region: str,
    arn: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A customer managed policy: GetPolicy, plus GetPolicyVersion if the default moved."""
    try:
        raw = dict(client.get_policy(PolicyArn=arn)["Policy"])
        version = raw["DefaultVersionId"]
        if cached and cached.get("default_version_id") == version and cached.get("document"):
            document = cached["document"]
        else:
            response = client.get_policy_version(PolicyArn=arn, VersionId=version)
            document = response["PolicyVersion"]["Document"]
    except ClientError as exc:
        if error_code(exc) == NO_SUCH_ENTITY:
            return None
        raise
    raw["PolicyVersionList"] = [{"Document": document, "IsDefaultVersion": True}]
    return storable(transform_policy(raw, account_id))


def refresher(spec: Principal) -> Refresh:
    return partial(refresh_principal, spec)


# --- which events change which kind ------------------------------------------------------------


def _named(param: str, new_name: str | None = None) -> Any:
    """The principal ``params[param]`` names; renamed to ``params[new_name]`` when given."""

    def locate(
        name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, acct: str
    ) -> Target:
        renamed = params.get(new_name) if new_name else None
        return Target(params[param], GLOBAL, renamed_to=renamed)

    return locate


def _own_policy(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    """A customer managed policy of this account (not an AWS managed nor a foreign one)."""
    arn = params.get("policyArn") or (response.get("policy") or {}).get("arn")
    if not isinstance(arn, str) or arn.split(":")[4:5] != [account]:
        raise NotAChange(f"{name} names no customer managed policy of {account}: {arn!r}")
    return Target(arn, GLOBAL)


def _lifecycle(noun: str) -> dict[str, str]:
    return {f"Create{noun}": CREATE, f"Delete{noun}": DELETE, f"Update{noun}": RESOURCE}


def _policies(noun: str) -> dict[str, str]:
    return {
        f"Put{noun}Policy": INLINE,
        f"Delete{noun}Policy": INLINE,
        f"Attach{noun}Policy": ATTACHED,
        f"Detach{noun}Policy": ATTACHED,
    }


def _tagging(noun: str) -> dict[str, str]:
    return {
        f"Put{noun}PermissionsBoundary": RESOURCE,
        f"Delete{noun}PermissionsBoundary": RESOURCE,
        f"Tag{noun}": RESOURCE,
        f"Untag{noun}": RESOURCE,
    }


ROLE_EVENTS = EventRules(
    SOURCE,
    {
        **_lifecycle("Role"),
        **_tagging("Role"),
        **_policies("Role"),
        "UpdateRoleDescription": RESOURCE,
        "UpdateAssumeRolePolicy": RESOURCE,
    },
    _named("roleName"),
)
USER_EVENTS = EventRules(
    SOURCE,
    {
        **_lifecycle("User"),
        **_tagging("User"),
        **_policies("User"),
        # Group membership is on the user's record (groups hold no member list).
        "AddUserToGroup": GROUPS,
        "RemoveUserFromGroup": GROUPS,
    },
    _named("userName", "newUserName"),
)
GROUP_EVENTS = EventRules(
    SOURCE, {**_lifecycle("Group"), **_policies("Group")}, _named("groupName", "newGroupName")
)
POLICY_EVENTS = EventRules(
    SOURCE,
    {
        "CreatePolicy": CREATE,
        "DeletePolicy": DELETE,
        "CreatePolicyVersion": RESOURCE,
        "DeletePolicyVersion": RESOURCE,
        "SetDefaultPolicyVersion": RESOURCE,
        # Attaching changes the customer managed policy's attachment count too.
        **{
            f"{verb}{noun}Policy": RESOURCE
            for verb in ("Attach", "Detach")
            for noun in ("Role", "User", "Group")
        },
    },
    _own_policy,
)
