"""Managed policies for the policy editor's typeahead: every customer managed policy of an
account, and AWS's catalogue of managed policies, listed once per sweep and shared by all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import CollectContext
from inventory.aws.listing import Listing
from inventory.aws.records import BadRecord, iso, policy_document
from inventory.cache.keys import AWS_MANAGED_ACCOUNT, AWS_MANAGED_POLICY, MANAGED_POLICY

KIND = MANAGED_POLICY
AWS_DOCUMENT_KIND = AWS_MANAGED_POLICY
AWS_ACCOUNT = AWS_MANAGED_ACCOUNT
ACTIONS = ("iam:ListPolicies", "iam:GetPolicyVersion")
#: Customer managed policies of one account; AWS's own (the same in every account).
LOCAL, AWS = "Local", "AWS"


def is_aws_managed(arn: str) -> bool:
    return arn.startswith("arn:aws:iam::aws:") or ":iam::aws:policy/" in arn


def get_policies(client: Any, scope: str) -> list[dict[str, Any]]:
    """ListPolicies(Scope=scope) (all pages, 1,000 a page): attached or not."""
    policies: list[dict[str, Any]] = []
    paginator = client.get_paginator("list_policies")
    for page in paginator.paginate(Scope=scope, PaginationConfig={"PageSize": 1000}):
        policies.extend(page.get("Policies", ()))
    return policies


def get_policy_document(client: Any, arn: str, version_id: str) -> dict[str, Any]:
    """GetPolicyVersion: the document of one version."""
    version = client.get_policy_version(PolicyArn=arn, VersionId=version_id)["PolicyVersion"]
    return policy_document(version["Document"], f"policy {arn} {version_id}")


def transform_policy(raw: dict[str, Any], account_id: str) -> dict[str, Any]:
    """A customer managed policy the typeahead offers in its account.

    Its document is the ``iam_policy`` record's (GetAccountAuthorizationDetails returns it with
    the IAM sync): not read again here, not stored twice.
    """
    arn = raw["Arn"]
    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "name": raw.get("PolicyName") or arn.rsplit("/", 1)[-1],
        "path": raw.get("Path"),
        "aws_managed": is_aws_managed(arn),
        "default_version_id": raw["DefaultVersionId"],
        "attachment_count": raw.get("AttachmentCount"),
        "updated": iso(raw.get("UpdateDate")),
    }


def aws_document_record(raw: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """An AWS managed policy of the shared catalogue, with its default version's document.

    No attachment count: that is one account's figure, and this record is every account's.
    """
    arn = raw["Arn"]
    return {
        "arn": arn,
        "kind": AWS_DOCUMENT_KIND,
        "account_id": AWS_ACCOUNT,
        "name": raw.get("PolicyName") or arn.rsplit("/", 1)[-1],
        "path": raw.get("Path"),
        "aws_managed": True,
        "version_id": raw["DefaultVersionId"],
        "updated": iso(raw.get("UpdateDate")),
        "document": document,
    }


def collect_customer_policies(client: Any, account_id: str) -> Listing:
    """Every customer managed policy of the account, attached or not: the ListPolicies pages."""
    listing = Listing()
    for raw in get_policies(client, LOCAL):
        try:
            listing.records.append(transform_policy(raw, account_id))
        except KeyError as exc:
            arn = raw.get("Arn")
            listing.skip(f"policy {arn}", str(exc), arn if isinstance(arn, str) else None)
    return listing


def collect_aws_catalogue(
    client: Any, need_document: Callable[[str, str, str | None], bool]
) -> Listing:
    """AWS's managed policies; a document is read only for a version not cached yet.

    ``need_document(arn, version, updated)`` is False when that DefaultVersionId and UpdateDate
    are cached (or another sync is reading them): the cached record is kept, nothing is read.
    """
    listing = Listing()
    for raw in get_policies(client, AWS):
        arn = raw.get("Arn")
        try:
            if not need_document(raw["Arn"], raw["DefaultVersionId"], iso(raw.get("UpdateDate"))):
                listing.keep.add(raw["Arn"])
                continue
            document = get_policy_document(client, raw["Arn"], raw["DefaultVersionId"])
            listing.records.append(aws_document_record(raw, document))
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            # deleted between the listing and GetPolicyVersion: it is gone
        except (BadRecord, KeyError) as exc:
            listing.skip(f"policy {arn}", str(exc), arn if isinstance(arn, str) else None)
    return listing


def collect(ctx: CollectContext) -> dict[str, Listing]:
    """The account's customer managed policies; and, from one account per sweep, the catalogue.

    The catalogue is a complete listing of the shared partition: a policy AWS withdrew goes.
    """
    listings = {KIND: collect_customer_policies(ctx.client, ctx.account_id)}
    if ctx.shared.lead():
        listings[AWS_DOCUMENT_KIND] = collect_aws_catalogue(ctx.client, ctx.shared.need)
    return listings
