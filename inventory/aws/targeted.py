"""Read back one changed resource, calling only for the parts its events changed.

Each function takes the cached record (None when we hold none) and the set of aspects the
events named, and returns the new record, or None when AWS confirms the resource is gone
(NoSuchEntity, NoSuchBucket, ...). With a cached record, one event costs one call: a changed
inline policy is one GetRolePolicy, an attach or detach one ListAttachedRolePolicies, a trust
policy or tag change one GetRole. A resource we do not hold yet is read in full.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws import s3, sns, sqs
from inventory.aws.errors import error_code
from inventory.aws.events import ATTACHED, CREATE, DELETE, GROUPS, INLINE, POLICY, RESOURCE, TAGS
from inventory.aws.iam import (
    _attached,
    transform_group,
    transform_policy,
    transform_role,
    transform_user,
)
from inventory.aws.listing import storable
from inventory.aws.records import iso, policy_document, tags
from inventory.cache.keys import IAM_GROUP, IAM_ROLE, IAM_USER

NO_SUCH_ENTITY = "NoSuchEntity"
# Get* returns fields GetAccountAuthorizationDetails does not: the sweep never sees them, so a
# refresh must not add them either (the next sweep would take them away again).
SWEEP_ABSENT = ("Description", "MaxSessionDuration", "PasswordLastUsed")
# Lists a refresh of one field keeps from the cached record.
_LISTS = ("inline_policies", "attached_policies", "instance_profiles", "groups")


def _gone(exc: ClientError, codes: Collection[str]) -> bool:
    return error_code(exc) in codes


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        found.extend(page.get(key, ()))
    return found


@dataclass(frozen=True)
class _Principal:
    get: str
    key: str
    param: str
    get_policy: str
    list_policies: str
    list_attached: str
    policy_list: str
    transform: Any


PRINCIPALS = {
    IAM_ROLE: _Principal(
        "get_role",
        "Role",
        "RoleName",
        "get_role_policy",
        "list_role_policies",
        "list_attached_role_policies",
        "RolePolicyList",
        transform_role,
    ),
    IAM_USER: _Principal(
        "get_user",
        "User",
        "UserName",
        "get_user_policy",
        "list_user_policies",
        "list_attached_user_policies",
        "UserPolicyList",
        transform_user,
    ),
    IAM_GROUP: _Principal(
        "get_group",
        "Group",
        "GroupName",
        "get_group_policy",
        "list_group_policies",
        "list_attached_group_policies",
        "GroupPolicyList",
        transform_group,
    ),
}


def refresh_principal(
    client: Any,
    kind: str,
    account_id: str,
    name: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A role, user or group after its events; None when IAM says it no longer exists."""
    spec = PRINCIPALS[kind]
    who = {spec.param: name}
    full = cached is None or CREATE in aspects
    try:
        raw = None
        if full or RESOURCE in aspects or DELETE in aspects:
            response = getattr(client, spec.get)(**who)[spec.key]
            raw = {k: v for k, v in response.items() if k not in SWEEP_ABSENT}
        if full:
            assert raw is not None
            return storable(spec.transform(_complete(client, kind, spec, raw, who), account_id))
        assert cached is not None
        record = dict(cached)
        if raw is not None:
            fresh = spec.transform(raw, account_id)
            record.update({k: v for k, v in fresh.items() if k not in _LISTS})
        for aspect in sorted(aspects):
            if aspect.startswith(INLINE):
                record["inline_policies"] = _inline(client, spec, who, aspect, record)
            elif aspect == ATTACHED:
                attached = _pages(client, spec.list_attached, "AttachedPolicies", **who)
                record["attached_policies"] = _attached(attached)
            elif aspect == GROUPS:
                groups = _pages(client, "list_groups_for_user", "Groups", **who)
                record["groups"] = sorted(g["GroupName"] for g in groups)
        return storable(record)
    except ClientError as exc:
        if _gone(exc, {NO_SUCH_ENTITY}):  # the principal itself (inline reads handle their own)
            return None
        raise


def _inline(
    client: Any, spec: _Principal, who: dict[str, str], aspect: str, record: dict[str, Any]
) -> dict[str, Any]:
    policy = aspect.removeprefix(INLINE)
    policies = {k: v for k, v in (record.get("inline_policies") or {}).items() if k != policy}
    try:
        response = getattr(client, spec.get_policy)(**who, PolicyName=policy)
    except ClientError as exc:
        if _gone(exc, {NO_SUCH_ENTITY}):
            return policies  # deleted (or the principal is gone: its own event says so)
        raise
    policies[policy] = policy_document(response["PolicyDocument"], f"inline policy {policy}")
    return dict(sorted(policies.items()))


def _complete(
    client: Any, kind: str, spec: _Principal, raw: dict[str, Any], who: dict[str, str]
) -> dict[str, Any]:
    """A Get* response completed into the shape GetAccountAuthorizationDetails returns."""
    raw = dict(raw)
    names = _pages(client, spec.list_policies, "PolicyNames", **who)
    raw[spec.policy_list] = [
        {
            "PolicyName": n,
            "PolicyDocument": getattr(client, spec.get_policy)(**who, PolicyName=n)[
                "PolicyDocument"
            ],
        }
        for n in names
    ]
    raw["AttachedManagedPolicies"] = _pages(client, spec.list_attached, "AttachedPolicies", **who)
    if kind == IAM_ROLE:
        profiles = _pages(client, "list_instance_profiles_for_role", "InstanceProfiles", **who)
        raw["InstanceProfileList"] = profiles
    elif kind == IAM_USER:
        groups = _pages(client, "list_groups_for_user", "Groups", **who)
        raw["GroupList"] = [g["GroupName"] for g in groups]
    return raw


def refresh_policy(
    client: Any, account_id: str, arn: str, cached: dict[str, Any] | None
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
        if _gone(exc, {NO_SUCH_ENTITY}):
            return None
        raise
    raw["PolicyVersionList"] = [{"Document": document, "IsDefaultVersion": True}]
    return storable(transform_policy(raw, account_id))


def refresh_bucket(
    client: Any,
    account_id: str,
    name: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A bucket: only its policy or tags when only those changed; in full otherwise."""
    try:
        if cached is not None and set(aspects) <= {POLICY, TAGS}:
            record = dict(cached)
            if POLICY in aspects:
                record["policy"] = _bucket_policy(client, name)
            if TAGS in aspects:
                record["tags"] = tags(_bucket_tags(client, name))
            return storable(record)
        created = cached.get("created") if cached else None
        if created is None:
            listed = {b["Name"]: b for b in s3.get_buckets(client)}
            if name not in listed:
                return None
            created = iso(listed[name].get("CreationDate"))
        details = s3.get_bucket_details(client, name)
    except ClientError as exc:
        if _gone(exc, s3.GONE):
            return None
        raise
    return storable(
        s3.transform_bucket({"Name": name, "CreationDate": created}, details, account_id)
    )


def _bucket_policy(client: Any, name: str) -> dict[str, Any] | None:
    try:
        policy = client.get_bucket_policy(Bucket=name)["Policy"]
    except ClientError as exc:
        if error_code(exc) in s3.NO_POLICY:
            return None
        raise
    return policy_document(policy, f"bucket policy of {name}")


def _bucket_tags(client: Any, name: str) -> list[dict[str, str]]:
    try:
        return client.get_bucket_tagging(Bucket=name).get("TagSet", [])
    except ClientError as exc:
        if error_code(exc) in s3.NO_TAGS:
            return []
        raise


def refresh_queue(
    client: Any,
    account_id: str,
    region: str,
    url: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A queue: ListQueueTags alone for tag changes, GetQueueAttributes (+ tags) otherwise.

    Read at the URL the sweep stores (ListQueues' form): an event's URL may be another form of
    the same queue (https://queue.amazonaws.com/..., https://<region>.queue.amazonaws.com/...),
    and storing that would flip the record's ``url`` at every event and sweep.
    """
    try:
        if cached is not None and cached.get("url"):
            url = cached["url"]
        else:
            name = url.rstrip("/").rsplit("/", 1)[-1]
            found = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account_id)
            url = found["QueueUrl"]
        if cached is not None and set(aspects) == {TAGS}:
            record = dict(cached)
            record["tags"] = dict(client.list_queue_tags(QueueUrl=url).get("Tags") or {})
            return storable(record)
        if cached is not None and TAGS not in aspects and CREATE not in aspects:
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            raw = {"QueueUrl": url, "Attributes": attributes["Attributes"], "Tags": cached["tags"]}
        else:
            raw = sqs.get_queue(client, url)
    except ClientError as exc:
        if _gone(exc, sqs.GONE):
            return None
        raise
    return storable(sqs.transform_queue(raw, account_id, region))


def refresh_topic(
    client: Any,
    account_id: str,
    region: str,
    arn: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A topic: ListTagsForResource alone for tag changes, GetTopicAttributes otherwise."""
    try:
        if cached is not None and set(aspects) == {TAGS}:
            record = dict(cached)
            record["tags"] = tags(client.list_tags_for_resource(ResourceArn=arn).get("Tags"))
            return storable(record)
        if cached is not None and TAGS not in aspects and CREATE not in aspects:
            attributes = client.get_topic_attributes(TopicArn=arn)["Attributes"]
            tag_list = [{"Key": k, "Value": v} for k, v in (cached.get("tags") or {}).items()]
            raw = {"TopicArn": arn, "Attributes": attributes, "Tags": tag_list}
        else:
            raw = sns.get_topic(client, arn)
    except ClientError as exc:
        if _gone(exc, sns.GONE):
            return None
        raise
    return storable(sns.transform_topic(raw, account_id, region))
