"""KMS keys of one region: ListKeys and ListAliases, then each key's policy, rotation and tags.

Every key ListKeys shows, AWS managed ones included (``manager: "AWS"``): their key policies say
which services may use them on the account's behalf. AWS managed keys carry no tags, so their
ListResourceTags is not called.
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
from inventory.aws.records import iso, policy_document

KIND = "kms_key"
GONE = {"NotFoundException"}
#: GetKeyRotationStatus of an asymmetric, HMAC, imported or custom-store key, or of one
#: pending deletion or import: rotation does not apply (None).
NO_ROTATION = {"UnsupportedOperationException", "KMSInvalidStateException"}
ACTIONS = (
    "kms:ListKeys",
    "kms:ListAliases",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
)
# Aspects of a key besides its policy, tags and metadata (RESOURCE).
ROTATION, ALIASES = "rotation", "aliases"


def key_arn(key_id: str, account_id: str, region: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def get_key_ids(client: Any) -> list[str]:
    """ListKeys (all pages): every key ID in the region."""
    ids: list[str] = []
    for page in client.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1000}):
        ids.extend(k["KeyId"] for k in page.get("Keys", ()))
    return ids


def get_aliases(client: Any, key_id: str | None = None) -> list[dict[str, Any]]:
    """ListAliases (all pages): the region's aliases, or one key's."""
    params = {"KeyId": key_id} if key_id else {}
    found: list[dict[str, Any]] = []
    pages = client.get_paginator("list_aliases").paginate(
        **params, PaginationConfig={"PageSize": 100}
    )
    for page in pages:
        found.extend(page.get("Aliases", ()))
    return found


def get_key_policy(client: Any, key_id: str) -> str:
    return str(client.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def get_rotation(client: Any, key_id: str) -> bool | None:
    """GetKeyRotationStatus; None where rotation does not apply to the key."""
    try:
        return bool(client.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])
    except ClientError as exc:
        if error_code(exc) not in NO_ROTATION:
            raise
        return None


def get_key_tags(client: Any, metadata: dict[str, Any]) -> list[dict[str, str]]:
    """ListResourceTags (all pages) of a customer managed key; AWS managed keys have none."""
    if metadata.get("KeyManager") == "AWS":
        return []
    found: list[dict[str, str]] = []
    for page in client.get_paginator("list_resource_tags").paginate(KeyId=metadata["KeyId"]):
        found.extend(page.get("Tags", ()))
    return found


def get_key(client: Any, key_id: str, aliases: list[dict[str, Any]]) -> dict[str, Any]:
    """DescribeKey, GetKeyPolicy, GetKeyRotationStatus and ListResourceTags of one key."""
    metadata = client.describe_key(KeyId=key_id)["KeyMetadata"]
    return {
        "KeyMetadata": metadata,
        "Policy": get_key_policy(client, key_id),
        "KeyRotationEnabled": get_rotation(client, key_id),
        "Tags": get_key_tags(client, metadata),
        "Aliases": aliases,
    }


def key_tags(raw: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["TagKey"]: t.get("TagValue", "") for t in raw or ()}


def _settings(metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields of a record DescribeKey gives (RESOURCE events change some of them)."""
    return {
        "description": metadata.get("Description") or None,
        "manager": metadata.get("KeyManager"),
        "state": metadata.get("KeyState"),
        "spec": metadata.get("KeySpec"),
        "usage": metadata.get("KeyUsage"),
        "origin": metadata.get("Origin"),
        "multi_region": metadata.get("MultiRegion"),
        "deletion_date": iso(metadata.get("DeletionDate")),
    }


def transform_key(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One key record: key policy, aliases, rotation, state, tags."""
    metadata = raw["KeyMetadata"]
    arn = metadata["Arn"]
    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "name": metadata["KeyId"],
        "aliases": sorted(a["AliasName"] for a in raw.get("Aliases") or ()),
        **_settings(metadata),
        "rotation_enabled": raw.get("KeyRotationEnabled"),
        "policy": policy_document(raw["Policy"], f"key policy of {arn}"),
        "created": iso(metadata.get("CreationDate")),
        "tags": key_tags(raw.get("Tags")),
    }


def collect_keys(client: Any, account_id: str, region: str, reads: DetailReads = SERIAL) -> Listing:
    """Every key of the region; one deleted meanwhile is left out, not an error."""
    listing = Listing()
    by_key: dict[str, list[dict[str, Any]]] = {}
    for alias in get_aliases(client):
        if alias.get("TargetKeyId"):
            by_key.setdefault(alias["TargetKeyId"], []).append(alias)
    details = (
        Detail(
            f"key {key_id}",
            key_arn(key_id, account_id, region),
            lambda key_id=key_id: transform_key(
                get_key(client, key_id, by_key.get(key_id, [])), account_id, region
            ),
        )
        for key_id in get_key_ids(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def _read_parts(client: Any, aspects: Collection[str], cached: dict[str, Any]) -> dict[str, Any]:
    """The cached record with the parts the events changed read again."""
    key_id = cached["name"]
    record = dict(cached)
    if RESOURCE in aspects:
        record.update(_settings(client.describe_key(KeyId=key_id)["KeyMetadata"]))
    if POLICY in aspects:
        record["policy"] = policy_document(get_key_policy(client, key_id), cached["arn"])
    if ROTATION in aspects:
        record["rotation_enabled"] = get_rotation(client, key_id)
    if ALIASES in aspects:
        record["aliases"] = sorted(a["AliasName"] for a in get_aliases(client, key_id))
    if TAGS in aspects:
        record["tags"] = key_tags(
            get_key_tags(client, {"KeyId": key_id, "KeyManager": cached.get("manager")})
        )
    return record


def refresh_key(
    client: Any,
    account_id: str,
    region: str,
    key_id: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A key after its events: one call per changed part; a create or delete reads all."""
    try:
        if cached is not None and not {CREATE, DELETE} & set(aspects):
            return storable(_read_parts(client, aspects, cached))
        raw = get_key(client, key_id, get_aliases(client, key_id))
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_key(raw, account_id, region))


def _key_id(value: Any, region: str) -> Target:
    """A key named by ID or by ARN arn:aws:kms:<region>:<account>:key/<id> (never an alias:
    the calls followed take none)."""
    if not isinstance(value, str) or not value or value.startswith("alias/"):
        raise NotAChange(f"not a key ID or ARN: {value!r}")
    if not value.startswith("arn:"):
        return Target(value, region)
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[2] != "kms" or not parts[5].startswith("key/"):
        raise NotAChange(f"not a key ARN: {value!r}")
    return Target(parts[5].removeprefix("key/"), parts[3], parts[4])


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    if name == "CreateKey":
        return _key_id((response.get("keyMetadata") or {}).get("keyId"), region)
    if name in ("CreateAlias", "UpdateAlias"):
        return _key_id(params.get("targetKeyId"), region)
    return _key_id(params.get("keyId"), region)


EVENTS = EventRules(
    "kms.amazonaws.com",
    {
        "CreateKey": CREATE,
        "ScheduleKeyDeletion": RESOURCE,
        "CancelKeyDeletion": RESOURCE,
        "EnableKey": RESOURCE,
        "DisableKey": RESOURCE,
        "UpdateKeyDescription": RESOURCE,
        "PutKeyPolicy": POLICY,
        "EnableKeyRotation": ROTATION,
        "DisableKeyRotation": ROTATION,
        # DeleteAlias names only the alias: the key loses it at the next sweep.
        "CreateAlias": ALIASES,
        "UpdateAlias": ALIASES,
        "TagResource": TAGS,
        "UntagResource": TAGS,
    },
    _locate,
)
