"""ECR repositories of one region: DescribeRepositories, then policy and tags of each."""

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
from inventory.aws.records import iso, policy_document, tags

KIND = "ecr_repository"
GONE = {"RepositoryNotFoundException"}
NO_POLICY = {"RepositoryPolicyNotFoundException"}
ACTIONS = (
    "ecr:DescribeRepositories",
    "ecr:GetRepositoryPolicy",
    "ecr:ListTagsForResource",
)


def repository_arn(name: str, account_id: str, region: str) -> str:
    return f"arn:aws:ecr:{region}:{account_id}:repository/{name}"


def get_repositories(client: Any) -> list[dict[str, Any]]:
    """DescribeRepositories (all pages): every repository of the region and its settings."""
    found: list[dict[str, Any]] = []
    pages = client.get_paginator("describe_repositories").paginate(
        PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        found.extend(page.get("repositories", ()))
    return found


def get_repository_policy(client: Any, name: str) -> str | None:
    """GetRepositoryPolicy: the policy text (None when the repository has none)."""
    try:
        return str(client.get_repository_policy(repositoryName=name)["policyText"])
    except ClientError as exc:
        if error_code(exc) not in NO_POLICY:
            raise
        return None


def get_repository_tags(client: Any, arn: str) -> list[dict[str, str]]:
    return list(client.list_tags_for_resource(resourceArn=arn).get("tags") or [])


def get_repository(client: Any, repository: dict[str, Any]) -> dict[str, Any]:
    """GetRepositoryPolicy and ListTagsForResource of one listed repository."""
    return {
        "repository": repository,
        "policy": get_repository_policy(client, repository["repositoryName"]),
        "tags": get_repository_tags(client, repository["repositoryArn"]),
    }


def transform_policy(policy: str | None, name: str) -> dict[str, Any] | None:
    return None if policy is None else policy_document(policy, f"repository policy of {name}")


def transform_repository(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One repository record: policy, scan on push, tag mutability, encryption, tags."""
    repository = raw["repository"]
    name = repository["repositoryName"]
    scanning = repository.get("imageScanningConfiguration") or {}
    encryption = repository.get("encryptionConfiguration") or {}
    return {
        "arn": repository["repositoryArn"],
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "name": name,
        "uri": repository.get("repositoryUri"),
        "policy": transform_policy(raw.get("policy"), name),
        "scan_on_push": scanning.get("scanOnPush"),
        "tag_mutability": repository.get("imageTagMutability"),
        "encryption": encryption.get("encryptionType"),
        "kms_key": encryption.get("kmsKey"),
        "created": iso(repository.get("createdAt")),
        "tags": tags(raw.get("tags")),
    }


def collect_repositories(
    client: Any, account_id: str, region: str, reads: DetailReads = SERIAL
) -> Listing:
    """Every repository of the region; one deleted meanwhile is left out, not an error."""
    listing = Listing()
    details = (
        Detail(
            f"repository {repository.get('repositoryName')}",
            repository["repositoryArn"],
            lambda repository=repository: transform_repository(
                get_repository(client, repository), account_id, region
            ),
        )
        for repository in get_repositories(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def _describe(client: Any, name: str) -> dict[str, Any]:
    found = client.describe_repositories(repositoryNames=[name])["repositories"]
    return dict(found[0])


def _read_parts(
    client: Any, name: str, aspects: Collection[str], cached: dict[str, Any]
) -> dict[str, Any]:
    """The cached record with the parts the events changed read again."""
    record = dict(cached)
    if RESOURCE in aspects:
        fresh = transform_repository(
            {"repository": _describe(client, name)}, cached["account_id"], cached["region"]
        )
        record.update({k: v for k, v in fresh.items() if k not in ("policy", "tags")})
    if POLICY in aspects:
        record["policy"] = transform_policy(get_repository_policy(client, name), name)
    if TAGS in aspects:
        record["tags"] = tags(get_repository_tags(client, record["arn"]))
    return record


def refresh_repository(
    client: Any,
    account_id: str,
    region: str,
    name: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A repository after its events: one call per changed part; a create or delete reads all."""
    try:
        if cached is not None and not {CREATE, DELETE} & set(aspects):
            return storable(_read_parts(client, name, aspects, cached))
        raw = get_repository(client, _describe(client, name))
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_repository(raw, account_id, region))


def repository_of(arn: Any) -> tuple[str, str, str]:
    """(name, account, region) of arn:aws:ecr:<region>:<account>:repository/<name>."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[2] != "ecr" or not parts[5].startswith("repository/"):
        raise NotAChange(f"not a repository ARN: {arn!r}")
    return parts[5].removeprefix("repository/"), parts[4], parts[3]


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    if params.get("resourceArn"):
        repository, owner, where = repository_of(params["resourceArn"])
        return Target(repository, where, owner)
    repository = params.get("repositoryName")
    if not isinstance(repository, str) or not repository:
        raise NotAChange(f"{name} names no repository")
    return Target(repository, region, params.get("registryId") or None)


EVENTS = EventRules(
    "ecr.amazonaws.com",
    {
        "CreateRepository": CREATE,
        "DeleteRepository": DELETE,
        "SetRepositoryPolicy": POLICY,
        "DeleteRepositoryPolicy": POLICY,
        "PutImageScanningConfiguration": RESOURCE,
        "PutImageTagMutability": RESOURCE,
        "TagResource": TAGS,
        "UntagResource": TAGS,
    },
    _locate,
)
