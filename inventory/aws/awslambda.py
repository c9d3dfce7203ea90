"""Lambda functions of one region: ListFunctions, then each one's resource policy and tags.

The unqualified function's policy (GetPolicy without a qualifier): versions and aliases have
their own, not read here. Environment variables are never kept (their values are often secrets).
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
from inventory.aws.records import policy_document

KIND = "lambda_function"
# GetFunctionConfiguration and ListTags of a deleted function. GetPolicy says the same of a
# function without a policy, so a policy read alone never decides that a function is gone.
GONE = {"ResourceNotFoundException"}
ACTIONS = (
    "lambda:ListFunctions",
    "lambda:GetFunctionConfiguration",
    "lambda:GetPolicy",
    "lambda:ListTags",
)


def function_arn(name: str, account_id: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def get_functions(client: Any) -> list[dict[str, Any]]:
    """ListFunctions (all pages): every function's configuration ($LATEST) in the region."""
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 50}):
        found.extend(page.get("Functions", ()))
    return found


def get_function_policy(client: Any, name: str) -> str | None:
    """GetPolicy: the resource policy text (None when the function has none)."""
    try:
        return str(client.get_policy(FunctionName=name)["Policy"])
    except ClientError as exc:
        if error_code(exc) not in GONE:
            raise
        return None


def get_function_tags(client: Any, arn: str) -> dict[str, str]:
    return dict(client.list_tags(Resource=arn).get("Tags") or {})


def get_function(client: Any, configuration: dict[str, Any]) -> dict[str, Any]:
    """GetPolicy and ListTags of one listed function (ListTags fails when it is gone)."""
    return {
        "Configuration": configuration,
        "Policy": get_function_policy(client, configuration["FunctionName"]),
        "Tags": get_function_tags(client, configuration["FunctionArn"]),
    }


def _policy(text: str | None, name: str) -> dict[str, Any] | None:
    return None if text is None else policy_document(text, f"resource policy of {name}")


def transform_function(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One function record: policy, execution role, runtime and settings (no environment)."""
    config = raw["Configuration"]
    name = config["FunctionName"]
    return {
        "arn": config["FunctionArn"],
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "name": name,
        "policy": _policy(raw.get("Policy"), name),
        "role": config.get("Role"),
        "runtime": config.get("Runtime"),
        "handler": config.get("Handler"),
        "package_type": config.get("PackageType"),
        "architectures": list(config.get("Architectures") or []),
        "description": config.get("Description") or None,
        "timeout": config.get("Timeout"),
        "memory": config.get("MemorySize"),
        "kms_key": config.get("KMSKeyArn"),
        "layers": [layer["Arn"] for layer in config.get("Layers") or ()],
        "vpc_id": (config.get("VpcConfig") or {}).get("VpcId") or None,
        "code_sha256": config.get("CodeSha256"),
        "last_modified": config.get("LastModified"),
        "tags": dict(raw.get("Tags") or {}),
    }


def collect_functions(
    client: Any, account_id: str, region: str, reads: DetailReads = SERIAL
) -> Listing:
    """Every function of the region; one deleted meanwhile is left out, not an error."""
    listing = Listing()
    details = (
        Detail(
            f"function {configuration.get('FunctionName')}",
            configuration["FunctionArn"],
            lambda configuration=configuration: transform_function(
                get_function(client, configuration), account_id, region
            ),
        )
        for configuration in get_functions(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def _configuration(client: Any, name: str) -> dict[str, Any]:
    found = dict(client.get_function_configuration(FunctionName=name))
    found.pop("ResponseMetadata", None)
    return found


def _read_parts(
    client: Any, name: str, aspects: Collection[str], cached: dict[str, Any]
) -> dict[str, Any]:
    """The cached record with the parts the events changed read again."""
    record = dict(cached)
    if RESOURCE in aspects:
        raw = {"Configuration": _configuration(client, name)}
        fresh = transform_function(raw, cached["account_id"], cached["region"])
        record.update({k: v for k, v in fresh.items() if k not in ("policy", "tags")})
    if POLICY in aspects:
        record["policy"] = _policy(get_function_policy(client, name), name)
    if TAGS in aspects:
        record["tags"] = get_function_tags(client, record["arn"])
    return record


def refresh_function(
    client: Any,
    account_id: str,
    region: str,
    name: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A function after its events: one call per changed part; a create or delete reads all."""
    try:
        if cached is not None and not {CREATE, DELETE} & set(aspects):
            return storable(_read_parts(client, name, aspects, cached))
        raw = get_function(client, _configuration(client, name))
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_function(raw, account_id, region))


def function_of(value: Any, region: str) -> Target:
    """A function named as Lambda's calls take it: its name, ``<account>:function:<name>`` or
    its ARN, any of them with a version or alias after it (the function is the same)."""
    if not isinstance(value, str) or not value:
        raise NotAChange(f"not a function name: {value!r}")
    parts = value.split(":")
    if parts[0] == "arn":
        if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function" or not parts[6]:
            raise NotAChange(f"not a function ARN: {value!r}")
        return Target(parts[6], parts[3], parts[4])
    if len(parts) >= 3 and parts[1] == "function":
        return Target(parts[2], region, parts[0])
    return Target(parts[0], region)


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    named = params.get("functionName") or params.get("resource") or response.get("functionArn")
    return function_of(named, region)


# CloudTrail names Lambda's calls with their API version (UpdateFunctionConfiguration20150331v2).
EVENTS = EventRules(
    "lambda.amazonaws.com",
    {
        "CreateFunction20150331": CREATE,
        "DeleteFunction20150331": DELETE,
        "UpdateFunctionConfiguration20150331v2": RESOURCE,
        "UpdateFunctionCode20150331v2": RESOURCE,
        "AddPermission20150331v2": POLICY,
        "RemovePermission20150331v2": POLICY,
        "TagResource20170331v2": TAGS,
        "UntagResource20170331v2": TAGS,
    },
    _locate,
)
