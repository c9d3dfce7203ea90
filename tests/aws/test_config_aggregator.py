"""AWS Config through an aggregator: one paginated query, each result in its (account, region).

moto implements neither SelectAggregateResourceConfig nor
DescribeConfigurationAggregatorSourcesStatus, so both are served by botocore's Stubber: the
exact calls (NextToken pages) and our exact records per partition.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.stub import Stubber

from inventory.aws.config import query_expression
from inventory.aws.config_aggregator import AGGREGATE_FIELDS, collect_aggregated
from inventory.aws.listing import Listing
from inventory.aws.records import SkippedRecord
from tests.aws.stubbed import client as stubbed_client

AGGREGATOR = "org-aggregator"
HOME = "us-east-1"
DEV, PROD, UNKNOWN = "111111111111", "222222222222", "333333333333"
SELECT = {
    "Expression": f"SELECT {AGGREGATE_FIELDS}",
    "ConfigurationAggregatorName": AGGREGATOR,
    "Limit": 100,
}
STATUS = {"ConfigurationAggregatorName": AGGREGATOR}


def bucket(account: str, name: str, region: str) -> dict[str, Any]:
    return {
        "accountId": account,
        "resourceType": "AWS::S3::Bucket",
        "resourceId": name,
        "resourceName": name,
        "arn": f"arn:aws:s3:::{name}",
        "awsRegion": region,
        "tags": [{"key": "team", "value": "data"}],
        "configuration": {"name": name},
        "configurationItemCaptureTime": "2026-11-30T10:00:00.000Z",
    }


def role(account: str, name: str) -> dict[str, Any]:
    return {
        "accountId": account,
        "resourceType": "AWS::IAM::Role",
        "resourceId": f"AROA{name.upper()}",
        "resourceName": name,
        "arn": f"arn:aws:iam::{account}:role/{name}",
        "awsRegion": "global",
        "tags": [],
        "configuration": {"roleName": name},
        "configurationItemCaptureTime": "2026-11-30T11:00:00.000Z",
    }


def record(raw: dict[str, Any], region: str) -> dict[str, Any]:
    """Our record of a raw result, written out field by field."""
    return {
        "arn": raw["arn"],
        "kind": "config_resource",
        "account_id": raw["accountId"],
        "region": region,
        "resource_type": raw["resourceType"],
        "resource_id": raw["resourceId"],
        "name": raw["resourceName"],
        "tags": {"team": "data"} if raw["tags"] else {},
        "configuration": raw["configuration"],
        # One timestamp format (UTC ISO-8601 ending in Z, no zero fraction).
        "captured": raw["configurationItemCaptureTime"].replace(".000Z", "Z"),
    }


def listed(*records: dict[str, Any], complete: bool = True) -> dict[str, Listing]:
    return {"config_resource": Listing(records=list(records), complete=complete)}


def source(account: str, region: str, status: str) -> dict[str, Any]:
    return {
        "SourceId": account,
        "SourceType": "ACCOUNT",
        "AwsRegion": region,
        "LastUpdateStatus": status,
    }


def page(results: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"Results": [json.dumps(r) for r in results]}
    if token:
        answer["NextToken"] = token
    return answer


def test_one_paginated_query_fills_every_account_and_region() -> None:
    dev_east, dev_west = bucket(DEV, "dev-east", HOME), bucket(DEV, "dev-west", "us-west-2")
    dev_role, prod_east = role(DEV, "dev-app"), bucket(PROD, "prod-east", HOME)
    other = bucket(UNKNOWN, "not-ours", HOME)
    client = stubbed_client("config")
    with Stubber(client) as stubber:
        op = "describe_configuration_aggregator_sources_status"
        stubber.add_response(
            op,
            {
                "AggregatedSourceStatusList": [
                    source(DEV, HOME, "SUCCEEDED"),
                    source(DEV, "us-west-2", "SUCCEEDED"),
                ],
                "NextToken": "s1",
            },
            STATUS,
        )
        stubber.add_response(
            op,
            {
                "AggregatedSourceStatusList": [
                    source(PROD, HOME, "SUCCEEDED"),
                    source(PROD, "us-west-2", "SUCCEEDED"),  # nothing recorded there: emptied
                    source(PROD, "eu-west-1", "SUCCEEDED"),  # a region we do not sync
                    {"SourceId": "o-org", "SourceType": "ORGANIZATION", "AwsRegion": HOME,
                     "LastUpdateStatus": "SUCCEEDED"},
                ]
            },
            {**STATUS, "NextToken": "s1"},
        )  # fmt: skip
        op = "select_aggregate_resource_config"
        stubber.add_response(op, page([dev_east, other], "q1"), SELECT)
        stubber.add_response(op, page([dev_west, dev_role], "q2"), {**SELECT, "NextToken": "q1"})
        stubber.add_response(op, page([prod_east]), {**SELECT, "NextToken": "q2"})

        found = collect_aggregated(client, AGGREGATOR, HOME, {DEV, PROD}, [HOME, "us-west-2"])

        stubber.assert_no_pending_responses()

    assert found == {
        # A global resource (IAM) lands in the aggregator's region, as one partition holds it.
        (DEV, HOME): listed(record(dev_east, HOME), record(dev_role, HOME)),
        (DEV, "us-west-2"): listed(record(dev_west, "us-west-2")),
        (PROD, HOME): listed(record(prod_east, HOME)),
        (PROD, "us-west-2"): listed(),
    }


def test_a_source_that_failed_keeps_its_cached_resources() -> None:
    dev_east, prod_east = bucket(DEV, "dev-east", HOME), bucket(PROD, "prod-east", HOME)
    late = bucket(PROD, "prod-west", "us-west-2")  # a region the aggregator does not report
    client = stubbed_client("config")
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_configuration_aggregator_sources_status",
            {
                "AggregatedSourceStatusList": [
                    source(DEV, HOME, "FAILED"),
                    source(PROD, HOME, "OUTDATED"),
                ]
            },
            STATUS,
        )
        expression = query_expression(["AWS::S3::Bucket"], AGGREGATE_FIELDS)
        stubber.add_response(
            "select_aggregate_resource_config",
            page([dev_east, prod_east, late]),
            {**SELECT, "Expression": expression},
        )

        found = collect_aggregated(
            client, AGGREGATOR, HOME, {DEV, PROD}, resource_types=["AWS::S3::Bucket"]
        )

        stubber.assert_no_pending_responses()

    # Incomplete: what was read is written, nothing cached is removed.
    assert found == {
        (DEV, HOME): listed(record(dev_east, HOME), complete=False),
        (PROD, HOME): listed(record(prod_east, HOME), complete=False),
        (PROD, "us-west-2"): listed(record(late, "us-west-2"), complete=False),
    }


def test_a_result_without_arn_is_skipped_and_its_partition_incomplete() -> None:
    nameless = {k: v for k, v in bucket(DEV, "nameless", HOME).items() if k != "arn"}
    client = stubbed_client("config")
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_configuration_aggregator_sources_status",
            {"AggregatedSourceStatusList": [source(DEV, HOME, "SUCCEEDED")]},
            STATUS,
        )
        stubber.add_response("select_aggregate_resource_config", page([nameless]), SELECT)

        found = collect_aggregated(client, AGGREGATOR, HOME, {DEV})

    listing = found[(DEV, HOME)]["config_resource"]
    assert listing.records == [] and listing.complete is False
    assert listing.skipped == [
        SkippedRecord("AWS::S3::Bucket nameless", "missing field 'arn'", None)
    ]
