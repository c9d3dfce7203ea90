"""Secrets Manager secrets of one region: ListSecrets, then each one's resource policy.

Never the secret's value: no call here reads it (GetSecretValue is not in ACTIONS, so the spoke
role's generated policy does not allow it), and a record holds only transform_secret's fields.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import (
    CREATE,
    DELETE,
    POLICY,
    RESOURCE,
    TAGS,
    EventRules,
    NotAChange,
    Target,
)
from inventory.aws.listing import SERIAL, Detail, DetailReads, Listing, add_details, storable
from inventory.aws.records import iso, policy_document, tags

KIND = "secretsmanager_secret"
GONE = {"ResourceNotFoundException"}
ACTIONS = (
    "secretsmanager:ListSecrets",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
)
#: Moves on every rotation, which the secret's own settings schedule: recorded, not a change.
UNVERSIONED = frozenset({"last_rotated"})


def secret_arn(name: str, account_id: str = "", region: str = "") -> str:
    """Secrets are named by their ARN (its random suffix cannot be derived from the name)."""
    return name


def get_secrets(client: Any) -> list[dict[str, Any]]:
    """ListSecrets (all pages): every secret of the region not scheduled for deletion."""
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 100}):
        found.extend(page.get("SecretList", ()))
    return found


def get_secret_policy(client: Any, arn: str) -> str | None:
    """GetResourcePolicy: the policy text (None when the secret has none)."""
    return client.get_resource_policy(SecretId=arn).get("ResourcePolicy") or None


def get_secret(client: Any, secret: dict[str, Any]) -> dict[str, Any]:
    """GetResourcePolicy of one listed (or described) secret."""
    return {"secret": secret, "policy": get_secret_policy(client, secret["ARN"])}


def _policy(text: str | None, arn: str) -> dict[str, Any] | None:
    return policy_document(text, f"resource policy of {arn}") if text else None


def transform_secret(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One secret record: policy, rotation, KMS key, tags. Nothing of its value or versions."""
    secret = raw["secret"]
    arn = secret["ARN"]
    rules = secret.get("RotationRules") or {}
    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "name": secret["Name"],
        "description": secret.get("Description") or None,
        "policy": _policy(raw.get("policy"), arn),
        "kms_key": secret.get("KmsKeyId"),
        "rotation_enabled": bool(secret.get("RotationEnabled")),
        "rotation_lambda": secret.get("RotationLambdaARN"),
        "rotation_days": rules.get("AutomaticallyAfterDays"),
        "rotation_schedule": rules.get("ScheduleExpression"),
        "last_rotated": iso(secret.get("LastRotatedDate")),
        "primary_region": secret.get("PrimaryRegion"),
        "owning_service": secret.get("OwningService"),
        "created": iso(secret.get("CreatedDate")),
        "tags": tags(secret.get("Tags")),
    }


def collect_secrets(
    client: Any, account_id: str, region: str, reads: DetailReads = SERIAL
) -> Listing:
    """Every secret of the region; one deleted meanwhile is left out, not an error."""
    listing = Listing()
    details = (
        Detail(
            f"secret {secret.get('Name')}",
            secret["ARN"],
            lambda secret=secret: transform_secret(get_secret(client, secret), account_id, region),
        )
        for secret in get_secrets(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def _describe(client: Any, arn: str) -> dict[str, Any] | None:
    """DescribeSecret; None when it is scheduled for deletion (ListSecrets leaves it out)."""
    found = client.describe_secret(SecretId=arn)
    found.pop("ResponseMetadata", None)
    return None if found.get("DeletedDate") else found


def refresh_secret(
    client: Any,
    account_id: str,
    region: str,
    arn: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A secret after its events: GetResourcePolicy alone for a policy change, else both."""
    try:
        if cached is not None and set(aspects) == {POLICY}:
            return storable({**cached, "policy": _policy(get_secret_policy(client, arn), arn)})
        secret = _describe(client, arn)
        if secret is None:
            return None
        if cached is not None and POLICY not in aspects and CREATE not in aspects:
            record = transform_secret({"secret": secret}, account_id, region)
            return storable({**record, "policy": cached["policy"]})
        raw = get_secret(client, secret)
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_secret(raw, account_id, region))


def secret_owner(arn: str) -> tuple[str, str]:
    """(account, region) of arn:aws:secretsmanager:<region>:<account>:secret:<name>-<suffix>."""
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret" or not parts[6]:
        raise NotAChange(f"not a secret ARN: {arn!r}")
    return parts[4], parts[3]


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    """Events name a secret by ARN or name (``secretId``); the answer of most carries its ARN.

    A secret is cached under its ARN, so an event naming it by its name alone (TagResource by
    name) is not followed: the next sweep reads it.
    """
    arn = response.get("arn") or response.get("aRN") or params.get("secretId")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise NotAChange(f"{name} names its secret by name, not ARN: {arn!r}")
    owner, where = secret_owner(arn)
    return Target(arn, where, owner)


EVENTS = EventRules(
    "secretsmanager.amazonaws.com",
    {
        "CreateSecret": CREATE,
        "DeleteSecret": DELETE,
        "RestoreSecret": CREATE,
        "UpdateSecret": RESOURCE,
        "RotateSecret": RESOURCE,
        "CancelRotateSecret": RESOURCE,
        "PutResourcePolicy": POLICY,
        "DeleteResourcePolicy": POLICY,
        "TagResource": TAGS,
        "UntagResource": TAGS,
    },
    _locate,
)
