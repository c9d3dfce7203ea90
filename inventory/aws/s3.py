"""S3 buckets: ListBuckets, then location, tags and policy of each; and one bucket's read-back."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import CREATE, DELETE, POLICY, TAGS, EventRules, Target
from inventory.aws.listing import SERIAL, Detail, DetailReads, Listing, add_details, storable
from inventory.aws.records import iso, policy_document, tags
from inventory.cache.keys import GLOBAL

KIND = "s3_bucket"
NO_POLICY = {"NoSuchBucketPolicy"}
NO_TAGS = {"NoSuchTagSet", "NoSuchTagSetError"}
GONE = {"NoSuchBucket"}
ACTIONS = (
    "s3:ListAllMyBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketTagging",
    "s3:GetBucketPolicy",
)


def bucket_arn(name: str, account_id: str = "", region: str = "") -> str:
    return f"arn:aws:s3:::{name}"


def get_buckets(client: Any) -> list[dict[str, Any]]:
    """ListBuckets (all pages): name and creation date of every bucket in the account."""
    buckets: list[dict[str, Any]] = []
    for page in client.get_paginator("list_buckets").paginate():
        buckets.extend(page.get("Buckets", ()))
    return buckets


def get_bucket_tags(client: Any, name: str) -> list[dict[str, str]]:
    """GetBucketTagging: the tag set ([] when the bucket has none)."""
    try:
        return list(client.get_bucket_tagging(Bucket=name).get("TagSet", []))
    except ClientError as exc:
        if error_code(exc) not in NO_TAGS:
            raise
        return []


def get_bucket_policy(client: Any, name: str) -> str | None:
    """GetBucketPolicy: the policy as AWS returns it (None when the bucket has none)."""
    try:
        return str(client.get_bucket_policy(Bucket=name)["Policy"])
    except ClientError as exc:
        if error_code(exc) not in NO_POLICY:
            raise
        return None


def get_bucket_details(client: Any, name: str, region: str | None = None) -> dict[str, Any]:
    """GetBucketTagging and GetBucketPolicy of one bucket (absent = None), and its
    GetBucketLocation unless its region is known (ListBuckets' ``BucketRegion``)."""
    if region is None:
        region = client.get_bucket_location(Bucket=name).get("LocationConstraint")
    return {
        "Location": region,
        "TagSet": get_bucket_tags(client, name),
        "Policy": get_bucket_policy(client, name),
    }


def transform_policy(policy: str | None, name: str) -> dict[str, Any] | None:
    return None if policy is None else policy_document(policy, f"bucket policy of {name}")


def transform_bucket(
    raw: dict[str, Any], details: dict[str, Any], account_id: str
) -> dict[str, Any]:
    """One bucket record; ``us-east-1`` buckets report no LocationConstraint, buckets made
    before regions had names ``EU`` (ListBuckets' BucketRegion names the region itself)."""
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
        "policy": transform_policy(details.get("Policy"), name),
    }


def collect_buckets(
    client: Any, account_id: str, region: str, reads: DetailReads = SERIAL
) -> Listing:
    """Every bucket of the account; one unreadable bucket keeps its cached copy."""
    listing = Listing()
    details = (
        Detail(
            f"bucket {raw['Name']}",
            bucket_arn(raw["Name"]),
            lambda raw=raw: transform_bucket(
                raw, get_bucket_details(client, raw["Name"], raw.get("BucketRegion")), account_id
            ),
        )
        for raw in get_buckets(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def refresh_bucket(
    client: Any,
    account_id: str,
    region: str,
    name: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A bucket after its events: only its policy or tags when only those changed, else all."""
    try:
        if cached is not None and set(aspects) <= {POLICY, TAGS}:
            return _refresh_aspects(client, name, aspects, cached)
        listed = _listed(client, name, aspects, cached)
        if listed is None:
            return None
        details = get_bucket_details(client, name, listed.get("BucketRegion"))
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_bucket(listed, details, account_id))


def _refresh_aspects(
    client: Any, name: str, aspects: Collection[str], cached: dict[str, Any]
) -> dict[str, Any]:
    record = dict(cached)
    if POLICY in aspects:
        record["policy"] = transform_policy(get_bucket_policy(client, name), name)
    if TAGS in aspects:
        record["tags"] = tags(get_bucket_tags(client, name))
    return storable(record)


def _listed(
    client: Any, name: str, aspects: Collection[str], cached: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The bucket as ListBuckets shows it (None: not there and not cached).

    A cached bucket not created again keeps its creation date and region (a bucket's region
    is fixed at its creation), so ListBuckets and GetBucketLocation are not asked again. A
    bucket deleted and created again under its name has a new creation date; one ListBuckets
    does not show yet (it is eventually consistent) keeps the one we have.
    """
    known = None
    if cached is not None and cached.get("created") is not None:
        known = {"Name": name, "CreationDate": cached["created"]}
        if CREATE not in aspects:
            return {**known, "BucketRegion": cached.get("region")}
    return next((b for b in get_buckets(client) if b["Name"] == name), known)


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    return Target(params["bucketName"], GLOBAL)


EVENTS = EventRules(
    "s3.amazonaws.com",
    {
        "CreateBucket": CREATE,
        "DeleteBucket": DELETE,
        "PutBucketPolicy": POLICY,
        "DeleteBucketPolicy": POLICY,
        "PutBucketTagging": TAGS,
        "DeleteBucketTagging": TAGS,
    },
    _locate,
)
