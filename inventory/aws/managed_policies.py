"""Managed policies attached in an account; AWS managed documents are shared by every account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import CollectContext
from inventory.aws.listing import Listing
from inventory.aws.records import BadRecord, iso, policy_document
from inventory.cache.keys import AWS_MANAGED_POLICY, MANAGED_POLICY

KIND = MANAGED_POLICY
AWS_DOCUMENT_KIND = AWS_MANAGED_POLICY
AWS_ACCOUNT = "aws"
ACTIONS = ("iam:ListPolicies", "iam:GetPolicyVersion")


def is_aws_managed(arn: str) -> bool:
    return arn.startswith("arn:aws:iam::aws:") or ":iam::aws:policy/" in arn


def get_attached_policies(client: Any) -> list[dict[str, Any]]:
    """ListPolicies(Scope=All, OnlyAttached) (all pages): customer and AWS managed policies."""
    policies: list[dict[str, Any]] = []
    paginator = client.get_paginator("list_policies")
    for page in paginator.paginate(Scope="All", OnlyAttached=True):
        policies.extend(page.get("Policies", ()))
    return policies


def get_policy_document(client: Any, arn: str, version_id: str) -> dict[str, Any]:
    """GetPolicyVersion: the document of one version."""
    version = client.get_policy_version(PolicyArn=arn, VersionId=version_id)["PolicyVersion"]
    return policy_document(version["Document"], f"policy {arn} {version_id}")


def transform_policy(
    raw: dict[str, Any], account_id: str, document: dict[str, Any] | None
) -> dict[str, Any]:
    """An attached managed policy; AWS managed ones point at the shared document."""
    arn = raw["Arn"]
    aws_managed = is_aws_managed(arn)
    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "name": raw.get("PolicyName") or arn.rsplit("/", 1)[-1],
        "path": raw.get("Path"),
        "aws_managed": aws_managed,
        "default_version_id": raw["DefaultVersionId"],
        "attachment_count": raw.get("AttachmentCount"),
        "updated": iso(raw.get("UpdateDate")),
        # AWS managed documents are identical everywhere: stored once, see AWS_DOCUMENT_KIND.
        "document": None if aws_managed else document,
    }


def aws_document_record(arn: str, version_id: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "arn": arn,
        "kind": AWS_DOCUMENT_KIND,
        "account_id": AWS_ACCOUNT,
        "name": arn.rsplit("/", 1)[-1],
        "version_id": version_id,
        "document": document,
    }


def collect_managed_policies(
    client: Any,
    account_id: str,
    need_aws_document: Callable[[str, str], bool],
) -> tuple[Listing, list[dict[str, Any]]]:
    """Attached policies of the account, and the AWS managed documents not yet known.

    ``need_aws_document(arn, version)`` says whether this call should fetch a shared document
    (False when it is cached or another account's sync is already fetching it).
    """
    listing = Listing()
    aws_documents: list[dict[str, Any]] = []
    for raw in get_attached_policies(client):
        arn = raw.get("Arn")
        try:
            version = raw["DefaultVersionId"]
            document = None
            if is_aws_managed(raw["Arn"]):
                if need_aws_document(raw["Arn"], version):
                    doc = get_policy_document(client, raw["Arn"], version)
                    aws_documents.append(aws_document_record(raw["Arn"], version, doc))
            else:
                document = get_policy_document(client, raw["Arn"], version)
            listing.records.append(transform_policy(raw, account_id, document))
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            # deleted between the listing and GetPolicyVersion: it is gone
        except (BadRecord, KeyError) as exc:
            listing.skip(f"policy {arn}", str(exc), arn if isinstance(arn, str) else None)
    return listing, aws_documents


def collect(ctx: CollectContext) -> dict[str, Listing]:
    """Attached policies of the account, and the shared AWS managed documents it must fetch.

    The documents are written beside the account's listing into one shared partition, never
    as a complete listing of it (other accounts' syncs add to it too).
    """
    listing, documents = collect_managed_policies(ctx.client, ctx.account_id, ctx.shared.need)
    return {KIND: listing, AWS_DOCUMENT_KIND: Listing(records=documents, complete=False)}
