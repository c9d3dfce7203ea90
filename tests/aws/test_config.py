"""AWS Config: both result shapes, Stubber tests of the query and its fallback, and moto.

moto answers SelectResourceConfig only with results set up beforehand through its own API (it
evaluates no SQL), so the query is tested with botocore's Stubber; moto serves the recorder
(DescribeConfigurationRecorders, its recording group) and the listing fallback.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from inventory.aws.config import (
    FALLBACK_RESOURCE_TYPES,
    collect_config_resources,
    history_url,
    query_expression,
    recorded_types,
    table_row,
    transform_resource,
)
from inventory.aws.listing import Listing
from inventory.aws.records import BadRecord, SkippedRecord
from tests.servers import MotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
TYPES = ("AWS::S3::Bucket", "AWS::IAM::Role")
EXPRESSION = (
    "SELECT resourceType, resourceId, resourceName, arn, awsRegion, tags, configuration, "
    "configurationItemCaptureTime WHERE resourceType IN ('AWS::S3::Bucket', 'AWS::IAM::Role')"
)
QUERY_PARAMS = {"Expression": EXPRESSION, "Limit": 100}

# --- raw SelectResourceConfig results (each one a JSON string on the wire) -------------------

QUERY_BUCKET = {
    "resourceType": "AWS::S3::Bucket",
    "resourceId": "app-logs",
    "resourceName": "app-logs",
    "arn": "arn:aws:s3:::app-logs",
    "awsRegion": "us-east-1",
    "tags": [{"key": "team", "value": "platform"}, {"key": "cost-centre", "value": "42"}],
    "configuration": {"name": "app-logs", "creationDate": "2023-01-02T03:04:05.000Z"},
    "configurationItemCaptureTime": "2024-05-01T10:00:00.000Z",
}
QUERY_ROLE = {
    "resourceType": "AWS::IAM::Role",
    "resourceId": "AROAEXAMPLEAPPROLE01",
    "resourceName": "app-role",
    "arn": "arn:aws:iam::123456789012:role/service-role/app-role",
    "awsRegion": "global",
    "tags": [],
    "configuration": {"path": "/service-role/", "roleName": "app-role"},
    "configurationItemCaptureTime": "2024-05-01T11:00:00.000Z",
}
QUERY_QUEUE = {
    "resourceType": "AWS::SQS::Queue",
    "resourceId": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    "resourceName": "jobs",
    "arn": "arn:aws:sqs:us-east-1:123456789012:jobs",
    "awsRegion": "us-east-1",
    "tags": [{"key": "owner", "value": "Zoë"}],
}
QUERY_WITHOUT_ARN = {
    "resourceType": "AWS::S3::Bucket",
    "resourceId": "nameless",
    "resourceName": "nameless",
    "awsRegion": "us-east-1",
    "tags": [],
    "configuration": {},
    "configurationItemCaptureTime": "2024-05-01T12:00:00.000Z",
}

# --- raw BatchGetResourceConfig baseConfigurationItems (as boto3 returns them) ---------------


def base_bucket(name: str, minute: int) -> dict[str, Any]:
    return {
        "version": "1.3",
        "accountId": ACCOUNT,
        "configurationItemCaptureTime": datetime(2024, 6, 1, 8, minute, tzinfo=UTC),
        "configurationItemStatus": "OK",
        "configurationStateId": "1717228800000",
        "arn": f"arn:aws:s3:::{name}",
        "resourceType": "AWS::S3::Bucket",
        "resourceId": name,
        "resourceName": name,
        "awsRegion": "us-east-1",
        "availabilityZone": "Regional",
        "configuration": json.dumps({"name": name, "owner": {"id": "abc"}}),
        "supplementaryConfiguration": {"IsRequesterPaysEnabled": "false"},
    }


def expected_bucket(name: str, minute: int) -> dict[str, Any]:
    return {
        "arn": f"arn:aws:s3:::{name}",
        "kind": "config_resource",
        "account_id": ACCOUNT,
        "region": REGION,
        "resource_type": "AWS::S3::Bucket",
        "resource_id": name,
        "name": name,
        "tags": {},
        "configuration": {"name": name, "owner": {"id": "abc"}},
        "captured": f"2024-06-01T08:{minute:02d}:00Z",
    }


def key(name: str) -> dict[str, str]:
    return {"resourceType": "AWS::S3::Bucket", "resourceId": name}


def identifier(name: str) -> dict[str, str]:
    return {**key(name), "resourceName": name}


# --- our records ----------------------------------------------------------------------------

EXPECTED_BUCKET = {
    "arn": "arn:aws:s3:::app-logs",
    "kind": "config_resource",
    "account_id": ACCOUNT,
    "region": REGION,
    "resource_type": "AWS::S3::Bucket",
    "resource_id": "app-logs",
    "name": "app-logs",
    "tags": {"team": "platform", "cost-centre": "42"},
    "configuration": {"name": "app-logs", "creationDate": "2023-01-02T03:04:05.000Z"},
    "captured": "2024-05-01T10:00:00Z",  # one format, whichever API answered
}
EXPECTED_ROLE = {
    "arn": "arn:aws:iam::123456789012:role/service-role/app-role",
    "kind": "config_resource",
    "account_id": ACCOUNT,
    "region": REGION,
    "resource_type": "AWS::IAM::Role",
    "resource_id": "AROAEXAMPLEAPPROLE01",
    "name": "app-role",
    "tags": {},
    "configuration": {"path": "/service-role/", "roleName": "app-role"},
    "captured": "2024-05-01T11:00:00Z",
}
EXPECTED_QUEUE = {
    "arn": "arn:aws:sqs:us-east-1:123456789012:jobs",
    "kind": "config_resource",
    "account_id": ACCOUNT,
    "region": REGION,
    "resource_type": "AWS::SQS::Queue",
    "resource_id": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    "name": "jobs",
    "tags": {"owner": "Zoë"},
    "configuration": None,
    "captured": None,
}


# --- transform ------------------------------------------------------------------------------


def test_transform_advanced_query_result_turns_tag_list_into_dict() -> None:
    assert transform_resource(copy.deepcopy(QUERY_BUCKET), ACCOUNT, REGION) == EXPECTED_BUCKET


def test_transform_base_item_parses_configuration_json_and_has_no_tags() -> None:
    raw = base_bucket("data", 5)

    assert transform_resource(raw, ACCOUNT, REGION) == expected_bucket("data", 5)


def test_transform_without_configuration_or_capture_time_gives_none() -> None:
    assert transform_resource(copy.deepcopy(QUERY_QUEUE), ACCOUNT, REGION) == EXPECTED_QUEUE


@pytest.mark.parametrize(
    "raw_tags",
    [
        [{"key": "team", "value": "platform"}, {"key": "empty", "value": ""}],
        [{"Key": "team", "Value": "platform"}, {"Key": "empty"}],
        {"team": "platform", "empty": ""},
    ],
    ids=["lower-camel-list", "key-value-list", "dict"],
)
def test_every_config_tag_format_becomes_the_same_dict(raw_tags: Any) -> None:
    raw = {**QUERY_QUEUE, "tags": raw_tags}

    assert transform_resource(raw, ACCOUNT, REGION)["tags"] == {"team": "platform", "empty": ""}


def test_transform_without_arn_raises_instead_of_inventing_one() -> None:
    with pytest.raises(KeyError, match="'arn'"):
        transform_resource(copy.deepcopy(QUERY_WITHOUT_ARN), ACCOUNT, REGION)


def test_transform_with_non_json_configuration_is_a_bad_record() -> None:
    raw = {**base_bucket("data", 5), "configuration": "{not json"}

    with pytest.raises(BadRecord, match="configuration is not JSON"):
        transform_resource(raw, ACCOUNT, REGION)


def test_query_expression_selects_the_record_fields_for_the_given_types() -> None:
    assert query_expression(TYPES) == EXPRESSION


def test_query_expression_rejects_a_quote_in_a_resource_type() -> None:
    with pytest.raises(ValueError, match="bad resource types"):
        query_expression(["AWS::S3::Bucket') OR ('1"])


def test_fallback_resource_types_are_distinct_config_types() -> None:
    assert len(set(FALLBACK_RESOURCE_TYPES)) == len(FALLBACK_RESOURCE_TYPES) == 10
    assert all(t.startswith("AWS::") and t.count("::") == 2 for t in FALLBACK_RESOURCE_TYPES)


def test_query_expression_without_types_selects_every_recorded_type() -> None:
    assert query_expression(()) == (
        "SELECT resourceType, resourceId, resourceName, arn, awsRegion, tags, configuration, "
        "configurationItemCaptureTime"
    )


@pytest.mark.parametrize(
    ("groups", "types"),
    [
        ([{"allSupported": True}], ()),
        ([{}], ()),  # no recording group: AWS's default records every supported type
        (
            [
                {
                    "allSupported": False,
                    "exclusionByResourceTypes": {"resourceTypes": ["AWS::EC2::Volume"]},
                    "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
                }
            ],
            (),
        ),
        (
            [
                {"allSupported": False, "resourceTypes": ["AWS::S3::Bucket", "AWS::SNS::Topic"]},
                {"allSupported": False, "resourceTypes": ["AWS::SNS::Topic", "AWS::KMS::Key"]},
            ],
            ("AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::KMS::Key"),
        ),
    ],
)
def test_recorded_types_name_a_filter_only_for_a_recorder_listing_types(groups, types) -> None:
    recorders = [{"name": f"r{i}", "recordingGroup": g} for i, g in enumerate(groups)]
    assert recorded_types(recorders) == types


# --- collect with a stubbed client ----------------------------------------------------------


def config_client() -> Any:
    return boto3.client(
        "config", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


def query_page(results: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Results": [json.dumps(r) for r in results],
        "QueryInfo": {"SelectFields": [{"Name": "resourceType"}]},
    }
    if token:
        page["NextToken"] = token
    return page


RECORDER = {
    "name": "default",
    "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
    "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
}


def stub_recorder(stubber: Stubber, recorders: list[dict[str, Any]] | None = None) -> None:
    stubber.add_response(
        "describe_configuration_recorders",
        {"ConfigurationRecorders": [RECORDER] if recorders is None else recorders},
        {},
    )


def stub_empty_query(stubber: Stubber) -> None:
    stubber.add_response("select_resource_config", query_page([]), QUERY_PARAMS)


def stub_listing(stubber: Stubber, role_ids: list[dict[str, str]] | None = None) -> None:
    """Two pages of buckets, one (possibly empty) page of roles."""
    op = "list_discovered_resources"
    bucket_params = {"resourceType": "AWS::S3::Bucket", "limit": 100}
    stubber.add_response(
        op,
        {"resourceIdentifiers": [identifier("alpha"), identifier("bravo")], "nextToken": "n1"},
        bucket_params,
    )
    stubber.add_response(
        op, {"resourceIdentifiers": [identifier("charlie")]}, {**bucket_params, "nextToken": "n1"}
    )
    stubber.add_response(
        op,
        {"resourceIdentifiers": role_ids or []},
        {"resourceType": "AWS::IAM::Role", "limit": 100},
    )


def test_advanced_query_reads_every_page() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        op = "select_resource_config"
        stubber.add_response(op, query_page([QUERY_BUCKET], "t1"), QUERY_PARAMS)
        stubber.add_response(op, query_page([QUERY_ROLE]), {**QUERY_PARAMS, "NextToken": "t1"})

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert listing == Listing(records=[EXPECTED_BUCKET, EXPECTED_ROLE])


def test_empty_advanced_query_falls_back_to_listing_and_batch_get() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stub_empty_query(stubber)
        stub_listing(stubber)
        stubber.add_response(
            "batch_get_resource_config",
            {
                "baseConfigurationItems": [base_bucket("alpha", 1), base_bucket("charlie", 3)],
                "unprocessedResourceKeys": [key("bravo")],
            },
            {"resourceKeys": [key("alpha"), key("bravo"), key("charlie")]},
        )
        # Unprocessed keys are asked for again.
        stubber.add_response(
            "batch_get_resource_config",
            {"baseConfigurationItems": [base_bucket("bravo", 2)]},
            {"resourceKeys": [key("bravo")]},
        )

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert listing == Listing(
        records=[
            expected_bucket("alpha", 1),
            expected_bucket("charlie", 3),
            expected_bucket("bravo", 2),
        ]
    )


def test_batch_get_asks_for_at_most_100_keys_at_a_time() -> None:
    names = [f"bucket-{i:03d}" for i in range(150)]
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stub_empty_query(stubber)
        stubber.add_response(
            "list_discovered_resources",
            {"resourceIdentifiers": [identifier(n) for n in names]},
            {"resourceType": "AWS::S3::Bucket", "limit": 100},
        )
        stubber.add_response(
            "list_discovered_resources",
            {"resourceIdentifiers": []},
            {"resourceType": "AWS::IAM::Role", "limit": 100},
        )
        for batch in (names[:100], names[100:]):
            stubber.add_response(
                "batch_get_resource_config",
                {"baseConfigurationItems": [base_bucket(n, 0) for n in batch]},
                {"resourceKeys": [key(n) for n in batch]},
            )

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert [r["name"] for r in listing.records] == names
    assert listing.complete is True


def test_keys_still_unprocessed_after_three_attempts_make_the_listing_incomplete() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stub_empty_query(stubber)
        stub_listing(stubber)
        stubber.add_response(
            "batch_get_resource_config",
            {
                "baseConfigurationItems": [base_bucket("alpha", 1)],
                "unprocessedResourceKeys": [key("bravo"), key("charlie")],
            },
            {"resourceKeys": [key("alpha"), key("bravo"), key("charlie")]},
        )
        stubber.add_response(
            "batch_get_resource_config",
            {
                "baseConfigurationItems": [base_bucket("charlie", 3)],
                "unprocessedResourceKeys": [key("bravo")],
            },
            {"resourceKeys": [key("bravo"), key("charlie")]},
        )
        stubber.add_response(
            "batch_get_resource_config",
            {"baseConfigurationItems": [], "unprocessedResourceKeys": [key("bravo")]},
            {"resourceKeys": [key("bravo")]},
        )

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert listing.records == [expected_bucket("alpha", 1), expected_bucket("charlie", 3)]
    assert listing.skipped == [
        SkippedRecord("AWS::S3::Bucket bravo", "unprocessed by BatchGetResourceConfig", None)
    ]
    assert listing.complete is False


def test_invalid_expression_falls_back_to_listing() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stubber.add_client_error(
            "select_resource_config",
            service_error_code="InvalidExpressionException",
            service_message="The expression is not valid",
            expected_params=QUERY_PARAMS,
        )
        stub_listing(stubber, role_ids=[])
        stubber.add_response(
            "batch_get_resource_config",
            {
                "baseConfigurationItems": [
                    base_bucket("alpha", 1),
                    base_bucket("bravo", 2),
                    base_bucket("charlie", 3),
                ]
            },
            {"resourceKeys": [key("alpha"), key("bravo"), key("charlie")]},
        )

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert listing == Listing(
        records=[
            expected_bucket("alpha", 1),
            expected_bucket("bravo", 2),
            expected_bucket("charlie", 3),
        ]
    )


def test_access_denied_on_the_advanced_query_propagates() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stubber.add_client_error(
            "select_resource_config",
            service_error_code="AccessDeniedException",
            service_message="not authorized to perform: config:SelectResourceConfig",
            http_status_code=400,
            expected_params=QUERY_PARAMS,
        )

        with pytest.raises(ClientError) as exc:
            collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"


def test_region_without_config_recorder_is_not_enabled_and_lists_nothing() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber, [])

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    # Incomplete (nothing cached is removed) and not enabled (nothing is stale).
    assert listing == Listing(complete=False, enabled=False)


def test_recorder_gone_before_the_listing_is_not_enabled_either() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stub_empty_query(stubber)
        stubber.add_client_error(
            "list_discovered_resources",
            service_error_code="NoAvailableConfigurationRecorderException",
            service_message="There are no configuration recorders available",
            expected_params={"resourceType": "AWS::S3::Bucket", "limit": 100},
        )

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert listing == Listing(complete=False, enabled=False)


def test_record_without_arn_is_skipped_and_reported_while_others_are_kept() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        stubber.add_response(
            "select_resource_config",
            query_page([QUERY_BUCKET, QUERY_WITHOUT_ARN, QUERY_ROLE]),
            QUERY_PARAMS,
        )

        listing = collect_config_resources(client, ACCOUNT, REGION, TYPES)

        stubber.assert_no_pending_responses()

    assert listing.records == [EXPECTED_BUCKET, EXPECTED_ROLE]
    assert listing.skipped == [
        SkippedRecord("AWS::S3::Bucket nameless", "missing field 'arn'", None)
    ]
    # Without an ARN we cannot tell which cached copy to keep, so nothing may be removed.
    assert listing.complete is False


# --- against the moto server ----------------------------------------------------------------


def test_moto_falls_back_to_listing_and_returns_only_the_requested_type(
    moto_server: MotoServer, clean: None
) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_server.url)
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server.url)
    config = boto3.client("config", region_name=REGION, endpoint_url=moto_server.url)
    s3.create_bucket(Bucket="config-alpha")
    s3.create_bucket(Bucket="config-bravo")
    iam.create_role(RoleName="not-a-bucket", AssumeRolePolicyDocument=json.dumps({}))
    config.put_configuration_recorder(ConfigurationRecorder=RECORDER)

    listing = collect_config_resources(config, ACCOUNT, REGION, ("AWS::S3::Bucket",))

    assert listing.complete is True
    assert listing.skipped == []
    assert {
        (r["arn"], r["name"], r["resource_type"], r["resource_id"], r["kind"], r["account_id"])
        for r in listing.records
    } == {
        (f"arn:aws:s3:::{n}", n, "AWS::S3::Bucket", n, "config_resource", ACCOUNT)
        for n in ("config-alpha", "config-bravo")
    }
    assert {r["configuration"]["name"] for r in listing.records} == {"config-alpha", "config-bravo"}


def test_a_global_resource_is_kept_in_the_home_region_only(
    moto_server: MotoServer, clean: None
) -> None:
    """Config lists an IAM role (awsRegion "global") in every region: it is cached once."""
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server.url)
    iam.create_role(RoleName="global-once", AssumeRolePolicyDocument=json.dumps({}))
    boto3.client("s3", region_name="us-west-2", endpoint_url=moto_server.url).create_bucket(
        Bucket="west-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    types = ("AWS::IAM::Role", "AWS::S3::Bucket")
    found = {}
    for region in (REGION, "us-west-2"):
        config = boto3.client("config", region_name=region, endpoint_url=moto_server.url)
        config.put_configuration_recorder(ConfigurationRecorder=RECORDER)
        raw = config.list_discovered_resources(resourceType="AWS::IAM::Role")
        # moto answers as AWS does: the global role in each region asked.
        assert [r["resourceName"] for r in raw["resourceIdentifiers"]] == ["global-once"]
        listing = collect_config_resources(config, ACCOUNT, region, types)
        found[region] = {(r["resource_type"], r["name"]) for r in listing.records}

    assert found == {
        REGION: {("AWS::IAM::Role", "global-once")},
        "us-west-2": {("AWS::S3::Bucket", "west-bucket")},
    }


def test_moto_region_without_recorder_is_not_enabled(moto_server: MotoServer, clean: None) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_server.url)
    config = boto3.client("config", region_name=REGION, endpoint_url=moto_server.url)
    s3.create_bucket(Bucket="unrecorded")

    listing = collect_config_resources(config, ACCOUNT, REGION, ("AWS::S3::Bucket",))

    assert listing == Listing(complete=False, enabled=False)


ALL_TYPES_PARAMS = {"Expression": query_expression(()), "Limit": 100}


def test_without_configured_types_the_query_asks_for_every_recorded_type_on_every_page() -> None:
    client = config_client()
    with Stubber(client) as stubber:
        stub_recorder(stubber)
        op = "select_resource_config"
        stubber.add_response(op, query_page([QUERY_BUCKET], "t1"), ALL_TYPES_PARAMS)
        stubber.add_response(
            op, query_page([QUERY_QUEUE], "t2"), {**ALL_TYPES_PARAMS, "NextToken": "t1"}
        )
        stubber.add_response(op, query_page([QUERY_ROLE]), {**ALL_TYPES_PARAMS, "NextToken": "t2"})

        listing = collect_config_resources(client, ACCOUNT, REGION)

        stubber.assert_no_pending_responses()

    assert listing == Listing(records=[EXPECTED_BUCKET, EXPECTED_QUEUE, EXPECTED_ROLE])


def moto_clients(moto_server: MotoServer) -> tuple[Any, Any, Any, Any]:
    return tuple(  # type: ignore[return-value]
        boto3.client(service, region_name=REGION, endpoint_url=moto_server.url)
        for service in ("s3", "iam", "sns", "config")
    )


def test_moto_recorder_of_every_type_falls_back_to_the_fallback_types(
    moto_server: MotoServer, clean: None
) -> None:
    s3, iam, sns, config = moto_clients(moto_server)
    s3.create_bucket(Bucket="recorded-bucket")
    iam.create_role(RoleName="recorded-role", AssumeRolePolicyDocument=json.dumps({}))
    topic = sns.create_topic(Name="recorded-topic")["TopicArn"]
    config.put_configuration_recorder(ConfigurationRecorder=RECORDER)

    listing = collect_config_resources(config, ACCOUNT, REGION)

    assert listing.complete is True and listing.enabled is True
    assert {(r["resource_type"], r["arn"]) for r in listing.records} == {
        ("AWS::S3::Bucket", "arn:aws:s3:::recorded-bucket"),
        ("AWS::IAM::Role", f"arn:aws:iam::{ACCOUNT}:role/recorded-role"),
        ("AWS::SNS::Topic", topic),
    }


def test_moto_recorder_of_listed_types_is_listed_by_those_types_only(
    moto_server: MotoServer, clean: None
) -> None:
    s3, iam, sns, config = moto_clients(moto_server)
    s3.create_bucket(Bucket="unrecorded-bucket")
    iam.create_role(RoleName="unrecorded-role", AssumeRolePolicyDocument=json.dumps({}))
    topic = sns.create_topic(Name="recorded-topic")["TopicArn"]
    config.put_configuration_recorder(
        ConfigurationRecorder={
            **RECORDER,
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::SNS::Topic"]},
        }
    )

    listing = collect_config_resources(config, ACCOUNT, REGION)

    assert [(r["resource_type"], r["arn"]) for r in listing.records] == [("AWS::SNS::Topic", topic)]
    # A configured list wins over the recorder's.
    configured = collect_config_resources(config, ACCOUNT, REGION, ("AWS::S3::Bucket",))
    assert [r["arn"] for r in configured.records] == ["arn:aws:s3:::unrecorded-bucket"]


def test_history_url_links_the_config_timeline_and_needs_region_id_and_type() -> None:
    assert history_url(EXPECTED_QUEUE) == (
        "https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1"
        "#/resources/timeline?resourceId=https%3A%2F%2Fsqs.us-east-1.amazonaws.com"
        "%2F123456789012%2Fjobs&resourceType=AWS%3A%3ASQS%3A%3AQueue"
    )
    assert history_url({**EXPECTED_QUEUE, "resource_id": None}) is None
    assert table_row(EXPECTED_QUEUE) is False  # queues have their own rows
    assert table_row({**EXPECTED_QUEUE, "resource_type": "AWS::EC2::VPC"}) is True
