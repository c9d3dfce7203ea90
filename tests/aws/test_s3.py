"""S3 buckets: transform on raw S3 answers, refresh_bucket's calls (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inventory.aws import s3
from inventory.aws.events import ResourceEvent
from inventory.aws.kind import CREATE, DELETE, POLICY, RESOURCE, TAGS, NotAChange
from inventory.aws.listing import Listing
from inventory.aws.records import BadRecord, SkippedRecord
from inventory.cache.keys import GLOBAL
from inventory.registry import parse_event
from tests.aws.stubbed import (
    ACCOUNT,
    ALICE,
    Call,
    api_call,
    client,
    error,
    event_id,
    event_time,
    on_the_wire,
    run,
)

# --- raw S3 answers (as boto3 returns them) -----------------------------------------------------

CREATED = datetime(2023, 4, 2, 8, 15, 30, tzinfo=UTC)
# ListBuckets' Buckets; AWS names each bucket's region (BucketRegion) since 2024, so no
# GetBucketLocation is needed for them. moto (5.2) leaves it out: the fallback is tested there.
LISTED_APP_LOGS = {"Name": "app-logs", "CreationDate": CREATED, "BucketRegion": "eu-west-1"}
LISTED_STATIC_SITE = {
    "Name": "static-site",
    "CreationDate": datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC),
    "BucketRegion": "us-east-1",
}
LIST_BUCKETS = {
    "Buckets": [LISTED_APP_LOGS, LISTED_STATIC_SITE],
    "Owner": {"DisplayName": "ops", "ID": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5"},
    "Prefix": "",
}
DENY_INSECURE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::app-logs", "arn:aws:s3:::app-logs/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}
ALLOW_LOG_DELIVERY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AWSLogDeliveryWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::app-logs/AWSLogs/123456789012/*",
        }
    ],
}
# GetBucketPolicy's Policy is the document as text, exactly as it was put.
GET_POLICY = {"Policy": json.dumps(DENY_INSECURE, separators=(",", ":"))}
GET_NEW_POLICY = {"Policy": json.dumps(ALLOW_LOG_DELIVERY, indent=4)}
GET_TAGGING = {"TagSet": [{"Key": "team", "Value": "data"}, {"Key": "cost-center", "Value": ""}]}
GET_NEW_TAGGING = {"TagSet": [{"Key": "team", "Value": "platform"}]}
# A bucket made before regions had names answers "EU" (eu-west-1); us-east-1 answers nothing.
LOCATION_EU = {"LocationConstraint": "EU"}
LOCATION_US_EAST_1: dict[str, Any] = {}

# What get_bucket_details hands to transform_bucket.
DETAILS_APP_LOGS = {
    "Location": "EU",
    "TagSet": GET_TAGGING["TagSet"],
    "Policy": GET_POLICY["Policy"],
}
DETAILS_STATIC_SITE = {"Location": None, "TagSet": [], "Policy": None}

EXPECTED_APP_LOGS = {
    "arn": "arn:aws:s3:::app-logs",
    "kind": "s3_bucket",
    "account_id": ACCOUNT,
    "name": "app-logs",
    "region": "eu-west-1",
    "created": "2023-04-02T08:15:30Z",
    "tags": {"team": "data", "cost-center": ""},
    "policy": DENY_INSECURE,
}
EXPECTED_STATIC_SITE = {
    "arn": "arn:aws:s3:::static-site",
    "kind": "s3_bucket",
    "account_id": ACCOUNT,
    "name": "static-site",
    "region": "us-east-1",
    "created": "2019-12-31T23:59:59Z",
    "tags": {},
    "policy": None,
}


def cached_app_logs() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED_APP_LOGS)


# --- transform -----------------------------------------------------------------------------------


def test_transform_bucket_maps_every_field_of_a_bucket_with_tags_and_policy() -> None:
    assert s3.transform_bucket(LISTED_APP_LOGS, DETAILS_APP_LOGS, ACCOUNT) == EXPECTED_APP_LOGS


def test_transform_bucket_without_tags_or_policy_has_empty_tags_and_no_policy() -> None:
    record = s3.transform_bucket(LISTED_STATIC_SITE, DETAILS_STATIC_SITE, ACCOUNT)

    assert record == EXPECTED_STATIC_SITE


@pytest.mark.parametrize(
    ("location", "region"),
    [
        (None, "us-east-1"),  # us-east-1 buckets have no LocationConstraint
        ("EU", "eu-west-1"),  # the legacy name of eu-west-1
        ("eu-west-1", "eu-west-1"),
        ("ap-southeast-2", "ap-southeast-2"),
        ("us-west-1", "us-west-1"),
    ],
)
def test_bucket_region_follows_get_bucket_location_quirks(
    location: str | None, region: str
) -> None:
    details = {**DETAILS_STATIC_SITE, "Location": location}

    assert s3.transform_bucket(LISTED_STATIC_SITE, details, ACCOUNT)["region"] == region


def test_bucket_policy_that_is_not_json_is_a_bad_record() -> None:
    details = {**DETAILS_APP_LOGS, "Policy": "Allow s3:* to everyone"}

    with pytest.raises(BadRecord, match="bucket policy of app-logs"):
        s3.transform_bucket(LISTED_APP_LOGS, details, ACCOUNT)


def test_bucket_policy_that_is_a_json_list_is_a_bad_record() -> None:
    details = {**DETAILS_APP_LOGS, "Policy": json.dumps(DENY_INSECURE["Statement"])}

    with pytest.raises(BadRecord, match="bucket policy of app-logs"):
        s3.transform_bucket(LISTED_APP_LOGS, details, ACCOUNT)


def test_bucket_without_a_name_raises_instead_of_inventing_one() -> None:
    with pytest.raises(KeyError, match="Name"):
        s3.transform_bucket({"CreationDate": CREATED}, DETAILS_APP_LOGS, ACCOUNT)


def test_bucket_without_creation_date_or_tag_set_has_none_and_empty_tags() -> None:
    details = {"Location": "EU", "TagSet": None, "Policy": None}

    record = s3.transform_bucket({"Name": "app-logs"}, details, ACCOUNT)

    assert (record["created"], record["tags"], record["policy"]) == (None, {}, None)


# --- reading one bucket's details -----------------------------------------------------------------

NO_LOCATION_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
)
EU_LOCATION_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">EU</LocationConstraint>'
)


def s3_error_xml(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<BucketName>static-site</BucketName><RequestId>4442587FB7D0A2F9</RequestId>"
        "<HostId>Vhsu6SHbHG0pxBCS8MeXsNbmsFt+Y2Wm3yPJvGSXoQ=</HostId></Error>"
    )


def test_details_of_a_us_east_1_bucket_without_tags_or_policy_read_from_s3_xml() -> None:
    s3_client = client("s3")
    sent = on_the_wire(
        s3_client,
        [
            ("GetBucketLocation", 200, NO_LOCATION_XML),
            ("GetBucketTagging", 404, s3_error_xml("NoSuchTagSet", "The TagSet does not exist")),
            (
                "GetBucketPolicy",
                404,
                s3_error_xml("NoSuchBucketPolicy", "The bucket policy does not exist"),
            ),
        ],
    )

    details = s3.get_bucket_details(s3_client, "static-site")

    assert details == {"Location": None, "TagSet": [], "Policy": None}
    assert sent == ["GetBucketLocation", "GetBucketTagging", "GetBucketPolicy"]
    assert s3.transform_bucket(LISTED_STATIC_SITE, details, ACCOUNT) == EXPECTED_STATIC_SITE


def test_legacy_eu_location_read_from_s3_xml_is_eu_west_1() -> None:
    s3_client = client("s3")
    on_the_wire(s3_client, [("GetBucketLocation", 200, EU_LOCATION_XML)])

    location = s3_client.get_bucket_location(Bucket="app-logs")["LocationConstraint"]

    assert location == "EU"
    assert s3.transform_bucket(LISTED_APP_LOGS, {"Location": location}, ACCOUNT)["region"] == (
        "eu-west-1"
    )


def test_access_denied_on_the_bucket_policy_is_not_taken_for_no_policy() -> None:
    s3_client = client("s3")
    calls = [
        Call("get_bucket_location", {"Bucket": "app-logs"}, LOCATION_EU),
        Call("get_bucket_tagging", {"Bucket": "app-logs"}, GET_TAGGING),
        error("get_bucket_policy", {"Bucket": "app-logs"}, "AccessDenied", 403),
    ]

    with pytest.raises(ClientError, match="AccessDenied"):
        run(s3_client, calls, lambda: s3.get_bucket_details(s3_client, "app-logs"))


# --- the listing ----------------------------------------------------------------------------------


def details_calls(
    name: str, location: dict[str, Any] | None, tagging: Any, policy: Any
) -> list[Call]:
    """GetBucketLocation (unless ``location`` is None: ListBuckets named the region),
    GetBucketTagging, GetBucketPolicy answered (an error code for a str)."""
    bucket = {"Bucket": name}

    def answer(operation: str, value: Any) -> Call:
        if isinstance(value, str):
            return error(operation, bucket, value, 404)
        return Call(operation, bucket, value)

    located = [] if location is None else [Call("get_bucket_location", bucket, location)]
    return [
        *located,
        answer("get_bucket_tagging", tagging),
        answer("get_bucket_policy", policy),
    ]


def test_collect_buckets_reads_each_listed_bucket_and_skips_one_denied_keeping_its_copy() -> None:
    s3_client = client("s3")
    denied = {"Name": "audit-trail", "CreationDate": CREATED, "BucketRegion": "us-east-1"}
    gone = {"Name": "tmp-upload", "CreationDate": CREATED, "BucketRegion": "us-east-1"}
    # Listed without BucketRegion (as moto and older endpoints answer): GetBucketLocation.
    unlocated = {k: v for k, v in LISTED_STATIC_SITE.items() if k != "BucketRegion"}
    calls = [
        Call(
            "list_buckets",
            {},
            {**LIST_BUCKETS, "Buckets": [LISTED_APP_LOGS, denied, gone, unlocated]},
        ),
        *details_calls("app-logs", None, GET_TAGGING, GET_POLICY),
        error("get_bucket_tagging", {"Bucket": "audit-trail"}, "AccessDenied", 403),
        # Deleted between ListBuckets and its details: left out, not an error.
        error("get_bucket_tagging", {"Bucket": "tmp-upload"}, "NoSuchBucket", 404),
        *details_calls("static-site", LOCATION_US_EAST_1, "NoSuchTagSet", "NoSuchBucketPolicy"),
    ]

    listing = run(s3_client, calls, lambda: s3.collect_buckets(s3_client, ACCOUNT, GLOBAL))

    assert listing == Listing(
        records=[EXPECTED_APP_LOGS, EXPECTED_STATIC_SITE],
        skipped=[SkippedRecord("bucket audit-trail", "AccessDenied", "arn:aws:s3:::audit-trail")],
        keep={"arn:aws:s3:::audit-trail"},
    )


# --- the targeted read after events ---------------------------------------------------------------


def refresh(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    s3_client = client("s3")
    return run(
        s3_client,
        calls,
        lambda: s3.refresh_bucket(s3_client, ACCOUNT, GLOBAL, "app-logs", aspects, cached),
    )


APP_LOGS = {"Bucket": "app-logs"}


def test_policy_change_of_a_cached_bucket_is_one_get_bucket_policy() -> None:
    record = refresh(
        {POLICY}, cached_app_logs(), [Call("get_bucket_policy", APP_LOGS, GET_NEW_POLICY)]
    )

    assert record == {**EXPECTED_APP_LOGS, "policy": ALLOW_LOG_DELIVERY}


def test_deleted_bucket_policy_leaves_the_cached_bucket_without_policy() -> None:
    calls = [error("get_bucket_policy", APP_LOGS, "NoSuchBucketPolicy", 404)]

    record = refresh({POLICY}, cached_app_logs(), calls)

    assert record == {**EXPECTED_APP_LOGS, "policy": None}


def test_tag_change_of_a_cached_bucket_is_one_get_bucket_tagging() -> None:
    calls = [Call("get_bucket_tagging", APP_LOGS, GET_NEW_TAGGING)]

    record = refresh({TAGS}, cached_app_logs(), calls)

    assert record == {**EXPECTED_APP_LOGS, "tags": {"team": "platform"}}


def test_deleted_tag_set_leaves_the_cached_bucket_without_tags() -> None:
    calls = [error("get_bucket_tagging", APP_LOGS, "NoSuchTagSet", 404)]

    record = refresh({TAGS}, cached_app_logs(), calls)

    assert record == {**EXPECTED_APP_LOGS, "tags": {}}


def test_policy_and_tag_changes_read_the_policy_then_the_tags_and_nothing_else() -> None:
    calls = [
        Call("get_bucket_policy", APP_LOGS, GET_NEW_POLICY),
        Call("get_bucket_tagging", APP_LOGS, GET_NEW_TAGGING),
    ]

    record = refresh({POLICY, TAGS}, cached_app_logs(), calls)

    assert record == {
        **EXPECTED_APP_LOGS,
        "policy": ALLOW_LOG_DELIVERY,
        "tags": {"team": "platform"},
    }


def test_bucket_not_cached_is_listed_for_its_creation_date_and_region_then_read() -> None:
    calls = [
        Call("list_buckets", {}, LIST_BUCKETS),
        *details_calls("app-logs", None, GET_TAGGING, GET_POLICY),
    ]

    assert refresh({POLICY}, None, calls) == EXPECTED_APP_LOGS


def test_bucket_not_cached_and_not_listed_is_gone_after_one_list_buckets() -> None:
    calls = [Call("list_buckets", {}, {**LIST_BUCKETS, "Buckets": [LISTED_STATIC_SITE]})]

    assert refresh({CREATE}, None, calls) is None


def test_deleted_cached_bucket_is_gone_after_one_read_its_region_being_known() -> None:
    calls = [error("get_bucket_tagging", APP_LOGS, "NoSuchBucket", 404)]

    assert refresh({DELETE}, cached_app_logs(), calls) is None


@pytest.mark.parametrize(
    ("aspect", "operation"), [(POLICY, "get_bucket_policy"), (TAGS, "get_bucket_tagging")]
)
def test_bucket_deleted_before_its_policy_or_tags_are_read_is_gone(
    aspect: str, operation: str
) -> None:
    calls = [error(operation, APP_LOGS, "NoSuchBucket", 404)]

    assert refresh({aspect}, cached_app_logs(), calls) is None


def test_recreated_cached_bucket_takes_its_new_creation_date() -> None:
    recreated = {
        **LISTED_APP_LOGS,
        "CreationDate": datetime(2024, 5, 14, 10, 21, 9, tzinfo=UTC),
        "BucketRegion": "us-east-1",
    }
    calls = [
        Call("list_buckets", {}, {**LIST_BUCKETS, "Buckets": [recreated]}),
        *details_calls("app-logs", None, "NoSuchTagSet", "NoSuchBucketPolicy"),
    ]

    record = refresh({DELETE, CREATE}, cached_app_logs(), calls)

    assert record == {
        **EXPECTED_APP_LOGS,
        "region": "us-east-1",
        "created": "2024-05-14T10:21:09Z",
        "tags": {},
        "policy": None,
    }


def test_recreated_cached_bucket_not_listed_yet_keeps_its_cached_creation_date() -> None:
    calls = [
        Call("list_buckets", {}, {**LIST_BUCKETS, "Buckets": [LISTED_STATIC_SITE]}),
        *details_calls("app-logs", LOCATION_EU, GET_NEW_TAGGING, GET_NEW_POLICY),
    ]

    record = refresh({DELETE, CREATE}, cached_app_logs(), calls)

    assert record == {
        **EXPECTED_APP_LOGS,
        "tags": {"team": "platform"},
        "policy": ALLOW_LOG_DELIVERY,
    }


def test_cached_bucket_whose_policy_event_needs_a_full_read_keeps_its_known_region() -> None:
    cached = {**cached_app_logs(), "region": "ap-southeast-2"}
    calls = details_calls("app-logs", None, GET_NEW_TAGGING, GET_NEW_POLICY)

    record = refresh({POLICY, RESOURCE}, cached, calls)

    assert record == {
        **cached,
        "tags": {"team": "platform"},
        "policy": ALLOW_LOG_DELIVERY,
    }


def test_access_denied_on_a_targeted_read_raises_instead_of_dropping_the_bucket() -> None:
    calls = [error("get_bucket_tagging", APP_LOGS, "AccessDenied", 403)]

    with pytest.raises(ClientError, match="AccessDenied"):
        refresh({TAGS}, cached_app_logs(), calls)


# --- CloudTrail events ----------------------------------------------------------------------------

HOST = "app-logs.s3.eu-west-1.amazonaws.com"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
# requestParameters of each followed event as CloudTrail records them, and the aspect it changes.
EVENTS: dict[str, tuple[dict[str, Any], str]] = {
    "CreateBucket": (
        {
            "bucketName": "app-logs",
            "Host": HOST,
            "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1", "xmlns": XMLNS},
        },
        CREATE,
    ),
    "DeleteBucket": ({"bucketName": "app-logs", "Host": HOST}, DELETE),
    "PutBucketPolicy": (
        {"bucketPolicy": ALLOW_LOG_DELIVERY, "bucketName": "app-logs", "Host": HOST, "policy": ""},
        POLICY,
    ),
    "DeleteBucketPolicy": ({"bucketName": "app-logs", "Host": HOST, "policy": ""}, POLICY),
    "PutBucketTagging": (
        {
            "bucketName": "app-logs",
            "Host": HOST,
            "tagging": "",
            "Tagging": {"xmlns": XMLNS, "TagSet": {"Tag": {"Key": "team", "Value": "data"}}},
        },
        TAGS,
    ),
    "DeleteBucketTagging": ({"bucketName": "app-logs", "Host": HOST, "tagging": ""}, TAGS),
}


def test_every_followed_s3_event_has_a_case_here() -> None:
    assert set(EVENTS) == set(s3.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_s3_event_names_the_bucket_in_the_global_partition(name: str) -> None:
    params, aspect = EVENTS[name]

    events = parse_event(api_call("s3.amazonaws.com", name, params, region="eu-west-1"))

    assert events == [
        ResourceEvent(
            kind="s3_bucket",
            account_id=ACCOUNT,
            region=GLOBAL,
            name="app-logs",
            aspect=aspect,
            event_name=name,
            event_time=event_time(),
            event_id=event_id(name),
            actor=ALICE,
        )
    ]


def test_failed_s3_call_is_not_a_change() -> None:
    params, _ = EVENTS["PutBucketPolicy"]
    body = api_call(
        "s3.amazonaws.com",
        "PutBucketPolicy",
        params,
        failure=("AccessDenied", "Access Denied"),
    )

    with pytest.raises(NotAChange, match=r"PutBucketPolicy failed \(AccessDenied\)"):
        parse_event(body)


def test_s3_event_without_a_bucket_name_is_not_a_change() -> None:
    body = api_call("s3.amazonaws.com", "PutBucketTagging", {"Host": HOST, "tagging": ""})

    with pytest.raises(NotAChange, match="PutBucketTagging does not name its resource"):
        parse_event(body)


def test_s3_read_event_is_not_one_we_follow() -> None:
    body = api_call("s3.amazonaws.com", "GetBucketPolicy", {"bucketName": "app-logs"})

    with pytest.raises(NotAChange, match="s3.amazonaws.com GetBucketPolicy is not an event we"):
        parse_event(body)
