"""S3 buckets: ListBuckets, then location, tags and policy of each bucket."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.listing import Listing, add_detailed
from inventory.aws.records import iso, policy_document, tags

KIND = "s3_bucket"
NO_POLICY = {"NoSuchBucketPolicy"}
NO_TAGS = {"NoSuchTagSet", "NoSuchTagSetError"}
GONE = {"NoSuchBucket"}


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def get_buckets(client: Any) -> list[dict[str, Any]]:
    """ListBuckets (all pages): name and creation date of every bucket in the account."""
    buckets: list[dict[str, Any]] = []
    for page in client.get_paginator("list_buckets").paginate():
        buckets.extend(page.get("Buckets", ()))
    return buckets


def get_bucket_details(client: Any, name: str) -> dict[str, Any]:
    """GetBucketLocation, GetBucketTagging and GetBucketPolicy of one bucket (absent = None)."""
    location = client.get_bucket_location(Bucket=name).get("LocationConstraint")
    try:
        tag_set = client.get_bucket_tagging(Bucket=name).get("TagSet", [])
    except ClientError as exc:
        if error_code(exc) not in NO_TAGS:
            raise
        tag_set = []
    try:
        policy = client.get_bucket_policy(Bucket=name)["Policy"]
    except ClientError as exc:
        if error_code(exc) not in NO_POLICY:
            raise
        policy = None
    return {"Location": location, "TagSet": tag_set, "Policy": policy}


def transform_bucket(
    raw: dict[str, Any], details: dict[str, Any], account_id: str
) -> dict[str, Any]:
    """One bucket record; ``us-east-1`` buckets report no LocationConstraint."""
    name = raw["Name"]
    location = details.get("Location")
    return {
        "arn": bucket_arn(name),
        "kind": KIND,
        "account_id": account_id,
        "name": name,
        "region": "eu-west-1" if location == "EU" else (location or "us-east-1"),
        "created": iso(raw.get("CreationDate")),
        "tags": tags(details.get("TagSet")),
        "policy": (
            None
            if details.get("Policy") is None
            else policy_document(details["Policy"], f"bucket policy of {name}")
        ),
    }


def collect_buckets(client: Any, account_id: str, region: str) -> Listing:
    """Every bucket of the account; one unreadable bucket keeps its cached copy."""
    listing = Listing()
    for raw in get_buckets(client):
        name = raw["Name"]
        add_detailed(
            listing,
            f"bucket {name}",
            bucket_arn(name),
            lambda raw=raw: transform_bucket(
                raw, get_bucket_details(client, raw["Name"]), account_id
            ),
            GONE,
        )
    return listing
