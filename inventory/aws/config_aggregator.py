"""AWS Config through an organisation aggregator: one query for every account and region.

SelectAggregateResourceConfig (all pages) in the account and region holding the aggregator
replaces the per-account, per-region queries (no assume-role into each account). Each result
lands in the partition the per-account path would write: (account, region), where a global
resource (IAM, ``awsRegion`` "global") goes to the aggregator's own region.
DescribeConfigurationAggregatorSourcesStatus says which sources are current: a source whose
last update did not succeed keeps its cached resources (its listing is incomplete).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any

from inventory.aws.config import KIND, SELECT_FIELDS, query_expression, transform_resource
from inventory.aws.listing import Listing
from inventory.aws.records import transform_each

ACTIONS = (
    "config:SelectAggregateResourceConfig",
    "config:DescribeConfigurationAggregatorSourcesStatus",
)
AGGREGATE_FIELDS = f"accountId, {SELECT_FIELDS}"
GLOBAL_REGION = "global"  # Config's awsRegion for IAM and other global resources
SUCCEEDED = "SUCCEEDED"

#: (account id, region) -> that partition's listing.
Source = tuple[str, str]


def get_source_status(client: Any, aggregator: str) -> dict[Source, str]:
    """DescribeConfigurationAggregatorSourcesStatus (all pages): LastUpdateStatus by source."""
    found: dict[Source, str] = {}
    pages = client.get_paginator("describe_configuration_aggregator_sources_status").paginate(
        ConfigurationAggregatorName=aggregator
    )
    for page in pages:
        for source in page.get("AggregatedSourceStatusList", ()):
            if source.get("SourceType") == "ACCOUNT":
                found[(source["SourceId"], source["AwsRegion"])] = source["LastUpdateStatus"]
    return found


def get_by_aggregate_query(
    client: Any, aggregator: str, resource_types: Sequence[str]
) -> list[dict[str, Any]]:
    """SelectAggregateResourceConfig (all pages): each result's JSON string parsed to a dict."""
    pages = client.get_paginator("select_aggregate_resource_config").paginate(
        Expression=query_expression(resource_types, AGGREGATE_FIELDS),
        ConfigurationAggregatorName=aggregator,
        PaginationConfig={"PageSize": 100},
    )
    return [json.loads(result) for page in pages for result in page.get("Results", ())]


def _source_of(raw: dict[str, Any], home_region: str) -> Source:
    region = raw.get("awsRegion") or GLOBAL_REGION
    return str(raw.get("accountId")), home_region if region == GLOBAL_REGION else region


def _listing(raws: list[dict[str, Any]], source: Source, succeeded: bool) -> Listing:
    account_id, region = source
    records, skipped = transform_each(
        raws,
        lambda raw: transform_resource(raw, account_id, region),
        lambda raw: f"{raw.get('resourceType')} {raw.get('resourceId')}",
        lambda raw: raw.get("arn"),
    )
    listing = Listing(records=records, complete=succeeded)
    for record in skipped:
        listing.skip(record.identifier, record.reason, record.arn)
    return listing


def collect_aggregated(
    client: Any,
    aggregator: str,
    home_region: str,
    accounts: Collection[str],
    regions: Collection[str] = (),
    resource_types: Sequence[str] = (),
) -> dict[Source, dict[str, Listing]]:
    """Every source's Config resources, by (account, region), for the given accounts (and
    regions, when given: those the per-account path would sync) only.

    A source whose last update succeeded is complete; any other status, or results from a
    region the aggregator does not report on, is incomplete (its cached copies stay).
    """
    status = get_source_status(client, aggregator)
    grouped: dict[Source, list[dict[str, Any]]] = defaultdict(list)
    for raw in get_by_aggregate_query(client, aggregator, resource_types):
        grouped[_source_of(raw, home_region)].append(raw)
    sources = {
        (account, region)
        for account, region in status.keys() | grouped.keys()
        if account in accounts and (not regions or region in regions)
    }
    return {
        source: {KIND: _listing(grouped.get(source, []), source, status.get(source) == SUCCEEDED)}
        for source in sorted(sources)
    }
