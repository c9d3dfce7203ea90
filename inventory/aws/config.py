"""AWS Config resources of one region: SelectResourceConfig, else list + batch-get fallback.

The query asks for every type the region's recorder records (ConsoleMe's default query is
``select * where accountId = ...``), or the configured ``aws_config.resource_types``. The
fallback has to name types: the configured ones, else the recorder's list, else
FALLBACK_RESOURCE_TYPES when it records all supported types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import CollectContext
from inventory.aws.listing import Listing
from inventory.aws.records import BadRecord, iso, transform_each
from inventory.cache.keys import CONFIG_RESOURCE

KIND = CONFIG_RESOURCE
ACTIONS = (
    "config:DescribeConfigurationRecorders",
    "config:SelectResourceConfig",
    "config:ListDiscoveredResources",
    "config:BatchGetResourceConfig",
)
#: Config keeps a capture time per item that moves without the resource changing (moto even
#: moves it per call): left out of the content hash, so it is refreshed only with a change.
VOLATILE = frozenset({"captured"})
#: What the listing fallback asks for when the recorder records every supported type
#: (ListDiscoveredResources takes one type per call, and there are hundreds of types).
FALLBACK_RESOURCE_TYPES: tuple[str, ...] = (
    "AWS::S3::Bucket",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::Instance",
    "AWS::Lambda::Function",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::KMS::Key",
    "AWS::DynamoDB::Table",
)
#: Types other kinds list directly (with their policies): their rows come from those kinds, as
#: ConsoleMe's policies table skipped them among its Config resources.
DIRECT_TYPES = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::User",
        "AWS::IAM::Group",
        "AWS::IAM::Policy",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
    }
)
SELECT_FIELDS = (
    "resourceType, resourceId, resourceName, arn, awsRegion, tags, configuration, "
    "configurationItemCaptureTime"
)
NO_RECORDER = "NoAvailableConfigurationRecorderException"
# The advanced query is unusable here, but the listing APIs may still work.
QUERY_UNAVAILABLE = frozenset(
    {
        "InvalidExpressionException",
        NO_RECORDER,
        "ValidationException",
        "UnsupportedOperation",
        "UnsupportedOperationException",
        "NotImplemented",
    }
)
#: Config records a global resource (IAM: awsRegion "global") in every region whose recorder
#: includes global types: the same item once per region. It is kept in this region only, the
#: one AWS records newer global types in, so it is cached (and its changes recorded) once.
GLOBAL_HOME = "us-east-1"
BATCH_SIZE = 100  # BatchGetResourceConfig's limit
BATCH_ATTEMPTS = 3  # rounds for unprocessedResourceKeys before giving up on them


class UnprocessedResources(Exception):
    """BatchGetResourceConfig left keys unprocessed after every attempt; ``items`` were read."""

    def __init__(self, items: list[dict[str, Any]], keys: list[dict[str, str]]) -> None:
        super().__init__(f"{len(keys)} resource keys left unprocessed by BatchGetResourceConfig")
        self.items = items
        self.keys = keys


def get_recorders(client: Any) -> list[dict[str, Any]]:
    """DescribeConfigurationRecorders: the region's recorders (none: Config is not set up)."""
    return list(client.describe_configuration_recorders().get("ConfigurationRecorders", ()))


def recorded_types(recorders: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The types the recorders name; () when one records every supported type (or all but
    some: the exclusion strategy), as the query then needs no type filter."""
    types: list[str] = []
    for recorder in recorders:
        group = recorder.get("recordingGroup") or {"allSupported": True}
        strategy = (group.get("recordingStrategy") or {}).get("useOnly")
        if group.get("allSupported") or strategy == "EXCLUSION_BY_RESOURCE_TYPES":
            return ()
        types.extend(t for t in group.get("resourceTypes", ()) if t not in types)
    return tuple(types)


def query_expression(resource_types: Iterable[str], fields: str = SELECT_FIELDS) -> str:
    """The advanced-query SELECT of the given resource types; no types: every recorded one."""
    types = list(resource_types)
    if any("'" in t or not t for t in types):
        raise ValueError(f"bad resource types for an AWS Config query: {types!r}")
    if not types:
        return f"SELECT {fields}"
    quoted = ", ".join(f"'{t}'" for t in types)
    return f"SELECT {fields} WHERE resourceType IN ({quoted})"


def get_by_advanced_query(client: Any, resource_types: Sequence[str]) -> list[dict[str, Any]]:
    """SelectResourceConfig (all pages): each result's JSON string parsed to a dict."""
    results: list[dict[str, Any]] = []
    pages = client.get_paginator("select_resource_config").paginate(
        Expression=query_expression(resource_types), PaginationConfig={"PageSize": 100}
    )
    for page in pages:
        results.extend(json.loads(result) for result in page.get("Results", ()))
    return results


def get_by_listing(client: Any, resource_types: Sequence[str]) -> list[dict[str, Any]]:
    """ListDiscoveredResources per type, then BatchGetResourceConfig: baseConfigurationItems."""
    keys: list[dict[str, str]] = []
    paginator = client.get_paginator("list_discovered_resources")
    for resource_type in resource_types:
        pages = paginator.paginate(resourceType=resource_type, PaginationConfig={"PageSize": 100})
        for page in pages:
            keys.extend(
                {"resourceType": r["resourceType"], "resourceId": r["resourceId"]}
                for r in page.get("resourceIdentifiers", ())
            )
    items: list[dict[str, Any]] = []
    left: list[dict[str, str]] = []
    for start in range(0, len(keys), BATCH_SIZE):
        pending = keys[start : start + BATCH_SIZE]
        for _ in range(BATCH_ATTEMPTS):
            response = client.batch_get_resource_config(resourceKeys=pending)
            items.extend(response.get("baseConfigurationItems", ()))
            pending = response.get("unprocessedResourceKeys") or []
            if not pending:
                break
        left.extend(pending)
    if left:
        raise UnprocessedResources(items, left)
    return items


def config_tags(value: Any) -> dict[str, str]:
    """Config's tag formats as one dict: {k: v}, [{key, value}] or [{Key, Value}]."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        result: dict[str, str] = {}
        for tag in value:
            key = tag["key"] if "key" in tag else tag["Key"]
            result[key] = tag.get("value", tag.get("Value")) or ""
        return result
    raise BadRecord(f"tags are neither a list nor a dict: {type(value).__name__}")


def configuration(value: Any) -> dict[str, Any] | None:
    """The configuration as a dict; BatchGetResourceConfig sends it as a JSON string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise BadRecord("configuration is not JSON") from exc
    if value is None or isinstance(value, dict):
        return value
    raise BadRecord("configuration is not a JSON object")


def transform_resource(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One Config resource record, from an advanced-query result or a baseConfigurationItem."""
    arn = raw["arn"]
    if not arn:
        raise BadRecord("empty arn")
    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "resource_type": raw["resourceType"],
        "resource_id": raw["resourceId"],
        "name": raw.get("resourceName"),
        "tags": config_tags(raw.get("tags")),
        "configuration": configuration(raw.get("configuration")),
        "captured": iso(raw.get("configurationItemCaptureTime")),
    }


def kept_in(region: str, raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items cached in this region: a global one only in ``GLOBAL_HOME``."""
    if region == GLOBAL_HOME:
        return raws
    return [raw for raw in raws if raw.get("awsRegion") != "global"]


def table_row(record: Mapping[str, Any]) -> bool:
    """Whether the record is a row of the policies table (not a type listed directly)."""
    return record.get("resource_type") not in DIRECT_TYPES


def history_url(record: Mapping[str, Any]) -> str | None:
    """The resource's timeline in the AWS Config console (ConsoleMe linked the same page);
    None for a record that lacks what the link needs."""
    region, resource_id = record.get("region"), record.get("resource_id")
    resource_type = record.get("resource_type")
    if not (region and resource_id and resource_type):
        return None
    return (
        f"https://{region}.console.aws.amazon.com/config/home?region={region}"
        f"#/resources/timeline?resourceId={quote(str(resource_id), safe='')}"
        f"&resourceType={quote(str(resource_type), safe='')}"
    )


def _identify(raw: dict[str, Any]) -> str:
    return f"{raw.get('resourceType')} {raw.get('resourceId')}"


def _query(client: Any, resource_types: Sequence[str]) -> list[dict[str, Any]]:
    """The advanced query's results; [] where it is unusable (the listing may still work)."""
    try:
        return get_by_advanced_query(client, resource_types)
    except ClientError as exc:
        if error_code(exc) not in QUERY_UNAVAILABLE:
            raise
        return []


def _list(client: Any, resource_types: Sequence[str], listing: Listing) -> list[dict[str, Any]]:
    """The listing fallback's items; keys left unprocessed are skipped on ``listing``."""
    try:
        return get_by_listing(client, resource_types)
    except UnprocessedResources as exc:
        for key in exc.keys:
            listing.skip(_identify(key), "unprocessed by BatchGetResourceConfig", None)
        return exc.items


def collect_config_resources(
    client: Any, account_id: str, region: str, resource_types: Sequence[str] = ()
) -> Listing:
    """Config resources of the region: the given types, else every type the recorder records.

    Without a Config recorder: not enabled, and incomplete (nothing cached is removed).
    """
    recorders = get_recorders(client)
    if not recorders:
        return Listing(complete=False, enabled=False)
    listing = Listing()
    raws = _query(client, resource_types)
    if not raws:
        fallback = resource_types or recorded_types(recorders) or FALLBACK_RESOURCE_TYPES
        try:
            raws = _list(client, fallback, listing)
        except ClientError as exc:
            if error_code(exc) != NO_RECORDER:
                raise
            # The recorder went away meanwhile: that hides resources, it does not remove them.
            return Listing(complete=False, enabled=False)
    records, skipped = transform_each(
        kept_in(region, raws),
        lambda raw: transform_resource(raw, account_id, region),
        _identify,
        lambda raw: raw.get("arn"),
    )
    listing.records.extend(records)
    for record in skipped:
        listing.skip(record.identifier, record.reason, record.arn)
    return listing


def collect(ctx: CollectContext) -> dict[str, Listing]:
    """The sync's collect: ``aws_config.resource_types`` from the context's options."""
    types = tuple(ctx.options.get("resource_types") or ())
    return {KIND: collect_config_resources(ctx.client, ctx.account_id, ctx.region, types)}
