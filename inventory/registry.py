"""The one place a kind of cached resource is declared, and the syncs that list them.

A :class:`ResourceKind` says everything the rest of the service needs: its label, whether it is
regional, durable, a row of the policies table and in the ARN index, the AWS read actions it
needs, how an event's name for it becomes its ARN, which CloudTrail events change it (and which
part) and its targeted read. A :class:`Sync` is one task pair (``cache_<stem>_for_account`` and
``_across_accounts``) and its beat entry: the listing that writes one or more kinds.

Everything else is derived from these two tables: the generated tasks, task routing, the beat
schedule, CLI ``sync`` choices, the demo's sweep, event dispatch, the policies-table kinds,
history and UI labels (served by ``GET /api/v1/kinds``) and docs/aws-permissions.md.
Adding a kind is its fetcher module in ``inventory/aws/``, one entry here, and its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inventory.aws import (
    awslambda,
    config,
    config_aggregator,
    ecr,
    iam,
    iam_refresh,
    kms,
    managed_policies,
    s3,
    secretsmanager,
    sns,
    sqs,
)
from inventory.aws.events import EventParser
from inventory.aws.kind import Aggregate, ArnFor, Collect, EventRules, Refresh, detailed
from inventory.cache import keys

MINUTE = 60.0
HOUR = 60 * MINUTE


@dataclass(frozen=True)
class ResourceKind:
    """One kind of cached resource: its name, and how every part of the service treats it."""

    kind: str
    label: str
    #: The Sync (stem) that lists it; None for kinds derived from others by their own tasks.
    sync: str | None = None
    regional: bool = False
    #: Kept in DynamoDB and S3 besides Redis (derived views are rebuilt from the others).
    durable: bool = True
    #: A row of the policies table the web UI searches.
    table: bool = False
    #: In the ARN index: its ARN belongs to one partition, so a reader finds it by ARN alone.
    indexed: bool = True
    #: Its changes are recorded in the history.
    history: bool = True
    #: Fields left out of the content hash (they move without the resource changing).
    volatile: frozenset[str] = frozenset()
    #: Fields left out of history diffs besides those: they move with use, not change.
    unversioned: frozenset[str] = frozenset()
    #: Every partition of the kind belongs to this account (documents shared by all accounts).
    shared_account: str | None = None
    #: The service whose client reads it back (and lists it).
    service: str | None = None
    #: AWS actions its listing and targeted read need (docs/aws-permissions.md).
    actions: tuple[str, ...] = ()
    events: EventRules | None = None
    refresh: Refresh | None = None
    #: The ARN of a resource named as events name it: (name, account_id, region) -> ARN.
    arn_for: ArnFor | None = None
    #: IAM events name principals without their path: the ARN segment to search by name.
    by_name: str | None = None
    #: A read soon after a create or delete may not show it yet (IAM): such reads are rechecked.
    eventually_consistent: bool = False
    #: Its record's ``policy`` is a resource policy: findings and "who can do this?" judge it.
    resource_policy: bool = False
    #: Which of its records are policies-table rows (None: every one of a ``table`` kind).
    table_row: Callable[[Mapping[str, Any]], bool] | None = None
    #: A page outside the service about a record (the AWS Config console's history), if any.
    link: Callable[[Mapping[str, Any]], str | None] | None = None


@dataclass(frozen=True)
class Sync:
    """One listing task pair and its beat entry: which kinds it writes, from which service."""

    stem: str
    service: str
    collect: Collect
    every: float
    description: str
    kinds: tuple[str, ...]
    regional: bool = False
    #: The name `inventory sync` takes.
    cli_name: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The Settings section handed to ``collect`` (and ``aggregate``) as ``options``.
    settings: str | None = None
    #: One call for every account and region (an AWS Config aggregator), used instead of the
    #: per-account fan-out when the settings section names an ``aggregator``.
    aggregate: Aggregate | None = None

    @property
    def name(self) -> str:
        return self.cli_name or self.stem

    @property
    def for_account_task(self) -> str:
        return f"inventory.cache_{self.stem}_for_account"

    @property
    def across_accounts_task(self) -> str:
        return f"inventory.cache_{self.stem}_across_accounts"

    @property
    def schedule_name(self) -> str:
        return f"cache_{self.stem}_across_accounts"


def _principal(
    kind: str, label: str, spec: iam_refresh.Principal, events: EventRules, **extra: Any
) -> ResourceKind:
    return ResourceKind(
        kind,
        label,
        **extra,
        sync="iam_resources",
        table=True,
        service="iam",
        actions=iam.ACTIONS + iam_refresh.ACTIONS,
        events=events,
        refresh=iam_refresh.refresher(spec),
        arn_for=spec.arn_for,
        by_name=spec.segment,
        eventually_consistent=True,
    )


KINDS: tuple[ResourceKind, ...] = (
    _principal(
        keys.IAM_ROLE,
        "IAM role",
        iam_refresh.ROLE,
        iam_refresh.ROLE_EVENTS,
        unversioned=frozenset({"last_used"}),  # assuming a role is a use, not a change
    ),
    _principal(keys.IAM_USER, "IAM user", iam_refresh.USER, iam_refresh.USER_EVENTS),
    _principal(keys.IAM_GROUP, "IAM group", iam_refresh.GROUP, iam_refresh.GROUP_EVENTS),
    ResourceKind(
        keys.IAM_POLICY,
        "IAM policy",
        sync="iam_resources",
        table=True,
        service="iam",
        actions=iam.ACTIONS + iam_refresh.ACTIONS,
        events=iam_refresh.POLICY_EVENTS,
        refresh=iam_refresh.refresh_policy,
        arn_for=lambda name, account, region: name,  # events name a policy by its ARN
        eventually_consistent=True,
    ),
    ResourceKind(
        managed_policies.KIND,
        "Managed policy",
        sync="managed_policies",
        indexed=False,  # a customer managed one is also an iam_policy
        service="iam",
        actions=managed_policies.ACTIONS,
    ),
    ResourceKind(
        managed_policies.AWS_DOCUMENT_KIND,
        "AWS managed policy",
        sync="managed_policies",
        shared_account=managed_policies.AWS_ACCOUNT,  # one partition: its ARNs are unique
        service="iam",
    ),
    ResourceKind(
        s3.KIND,
        "S3 bucket",
        sync="s3_buckets",
        table=True,
        resource_policy=True,
        service="s3",
        actions=s3.ACTIONS,
        events=s3.EVENTS,
        refresh=s3.refresh_bucket,
        arn_for=s3.bucket_arn,
    ),
    ResourceKind(
        sqs.KIND,
        "SQS queue",
        sync="sqs_queues",
        regional=True,
        table=True,
        resource_policy=True,
        service="sqs",
        actions=sqs.ACTIONS,
        events=sqs.EVENTS,
        refresh=sqs.refresh_queue,
        arn_for=sqs.queue_arn,
    ),
    ResourceKind(
        sns.KIND,
        "SNS topic",
        sync="sns_topics",
        regional=True,
        table=True,
        resource_policy=True,
        service="sns",
        actions=sns.ACTIONS,
        events=sns.EVENTS,
        refresh=sns.refresh_topic,
        arn_for=sns.topic_arn,
    ),
    ResourceKind(
        kms.KIND,
        "KMS key",
        sync="kms_keys",
        regional=True,
        table=True,
        resource_policy=True,
        service="kms",
        actions=kms.ACTIONS,
        events=kms.EVENTS,
        refresh=kms.refresh_key,
        arn_for=kms.key_arn,
    ),
    ResourceKind(
        awslambda.KIND,
        "Lambda function",
        sync="lambda_functions",
        regional=True,
        table=True,
        resource_policy=True,
        service="lambda",
        actions=awslambda.ACTIONS,
        events=awslambda.EVENTS,
        refresh=awslambda.refresh_function,
        arn_for=awslambda.function_arn,
    ),
    ResourceKind(
        secretsmanager.KIND,
        "Secrets Manager secret",
        sync="secrets",
        regional=True,
        table=True,
        resource_policy=True,
        unversioned=secretsmanager.UNVERSIONED,
        service="secretsmanager",
        actions=secretsmanager.ACTIONS,
        events=secretsmanager.EVENTS,
        refresh=secretsmanager.refresh_secret,
        arn_for=secretsmanager.secret_arn,
    ),
    ResourceKind(
        ecr.KIND,
        "ECR repository",
        sync="ecr_repositories",
        regional=True,
        table=True,
        resource_policy=True,
        service="ecr",
        actions=ecr.ACTIONS,
        events=ecr.EVENTS,
        refresh=ecr.refresh_repository,
        arn_for=ecr.repository_arn,
    ),
    ResourceKind(
        config.KIND,
        "Config resource",
        sync="resources_from_aws_config",
        regional=True,
        indexed=False,  # the same ARN as the resource itself, in every region Config records
        table=True,
        table_row=config.table_row,
        link=config.history_url,
        volatile=config.VOLATILE,
        service="config",
        actions=config.ACTIONS + config_aggregator.ACTIONS,
    ),
    # Kinds other tasks derive or keep (their own tasks write them).
    ResourceKind(keys.ACCOUNT, "Account", indexed=False),
    # Figures derived from resources (error counts, quota use) change every run: a history of
    # them would only bury the real changes.
    ResourceKind(keys.CLOUDTRAIL_ERRORS, "CloudTrail errors", indexed=False, history=False),
    ResourceKind(keys.IAM_ROLE_LIMIT, "IAM role limit", indexed=False, history=False),
    ResourceKind(keys.ROLE_ACCESS, "Who may use the role", durable=False, indexed=False),
    ResourceKind(keys.PRINCIPAL_ACCESS, "Roles a principal may use", durable=False, indexed=False),
    ResourceKind(keys.POLICY_REQUEST, "Policy request", durable=False, indexed=False),
    # One record per analysed subject, keyed by the subject's ARN (already indexed as itself);
    # durable and in the history, where a new finding is an add and a resolved one a remove.
    ResourceKind(keys.FINDING, "Finding", indexed=False),
)

SYNCS: tuple[Sync, ...] = (
    Sync(
        "iam_resources",
        "iam",
        iam.collect_iam,
        45 * MINUTE,
        "Roles, users, groups and customer managed policies (GetAccountAuthorizationDetails)",
        keys.IAM_KINDS,
        cli_name="iam",
        options={"soft_time_limit": 900, "time_limit": 960},
    ),
    Sync(
        "managed_policies",
        "iam",
        managed_policies.collect,
        45 * MINUTE,
        "Every customer managed policy per account; AWS's catalogue once per sweep (typeahead)",
        (managed_policies.KIND, managed_policies.AWS_DOCUMENT_KIND),
    ),
    Sync(
        "s3_buckets",
        "s3",
        detailed(s3.KIND, s3.collect_buckets),
        45 * MINUTE,
        "S3 buckets with region, tags and bucket policy",
        (s3.KIND,),
    ),
    Sync(
        "sqs_queues",
        "sqs",
        detailed(sqs.KIND, sqs.collect_queues),
        45 * MINUTE,
        "SQS queues in every enabled region: policy, KMS key, redrive, tags",
        (sqs.KIND,),
        regional=True,
    ),
    Sync(
        "sns_topics",
        "sns",
        detailed(sns.KIND, sns.collect_topics),
        45 * MINUTE,
        "SNS topics in every enabled region: policy, KMS key, tags",
        (sns.KIND,),
        regional=True,
    ),
    Sync(
        "kms_keys",
        "kms",
        detailed(kms.KIND, kms.collect_keys),
        45 * MINUTE,
        "KMS keys in every enabled region: key policy, aliases, rotation, tags",
        (kms.KIND,),
        regional=True,
    ),
    Sync(
        "lambda_functions",
        "lambda",
        detailed(awslambda.KIND, awslambda.collect_functions),
        45 * MINUTE,
        "Lambda functions in every enabled region: resource policy, execution role, runtime, tags",
        (awslambda.KIND,),
        regional=True,
    ),
    Sync(
        "secrets",
        "secretsmanager",
        detailed(secretsmanager.KIND, secretsmanager.collect_secrets),
        45 * MINUTE,
        "Secrets Manager secrets in every enabled region: resource policy, rotation, KMS key, "
        "tags (never the value)",
        (secretsmanager.KIND,),
        regional=True,
    ),
    Sync(
        "ecr_repositories",
        "ecr",
        detailed(ecr.KIND, ecr.collect_repositories),
        45 * MINUTE,
        "ECR repositories in every enabled region: repository policy, scan on push, tags",
        (ecr.KIND,),
        regional=True,
    ),
    Sync(
        "resources_from_aws_config",
        "config",
        config.collect,
        1 * HOUR,
        "AWS Config resources of every recorded type (advanced query, list + batch-get "
        "fallback), or one aggregator query for every account and region",
        (config.KIND,),
        regional=True,
        settings="aws_config",
        aggregate=config_aggregator.collect_aggregated,
    ),
)

BY_KIND: dict[str, ResourceKind] = {k.kind: k for k in KINDS}
BY_STEM: dict[str, Sync] = {s.stem: s for s in SYNCS}
BY_NAME: dict[str, Sync] = {s.name: s for s in SYNCS}
#: Kinds with a row in the policies table.
TABLE_KINDS = frozenset(k.kind for k in KINDS if k.table)
#: Kinds whose ARN is not unique to one partition: not in the ARN index.
UNINDEXED_KINDS = frozenset(k.kind for k in KINDS if not k.indexed)
#: Kinds with no durable copy (rebuilt from the others).
REDIS_ONLY_KINDS = frozenset(k.kind for k in KINDS if not k.durable)
#: Kinds whose records carry a resource policy (findings and "who can do this?" read them).
RESOURCE_POLICY_KINDS = tuple(k.kind for k in KINDS if k.resource_policy)
#: Kinds whose changes the history leaves out (figures that move on every run).
UNTRACKED_KINDS = frozenset(k.kind for k in KINDS if not k.history)
#: Fields each kind leaves out of its content hash.
VOLATILE_FIELDS = {k.kind: k.volatile for k in KINDS if k.volatile}
#: Kinds whose CloudTrail write events are followed, and the parser of those events.
EVENT_KINDS = tuple(k for k in KINDS if k.events is not None)
EVENTS = EventParser([(k.kind, k.events) for k in EVENT_KINDS if k.events is not None])
parse_event = EVENTS.parse
#: Every event name the EventBridge rule forwards, by event source (docs/events.md).
EVENT_NAMES = EVENTS.names()


def label(kind: str) -> str:
    found = BY_KIND.get(kind)
    return found.label if found is not None else kind.replace("_", " ")


def sync_of(kind: str) -> Sync | None:
    found = BY_KIND.get(kind)
    return BY_STEM.get(found.sync) if found is not None and found.sync else None


def synced_kinds() -> dict[str, Sync]:
    """Each kind an account's sync lists, and that sync (its freshness is per account)."""
    return {
        k.kind: BY_STEM[k.sync] for k in KINDS if k.sync is not None and k.shared_account is None
    }


def public_kinds() -> list[dict[str, Any]]:
    """What the browser and API clients need to know of each kind (``GET /api/v1/kinds``)."""
    return [
        {
            "kind": k.kind,
            "label": k.label,
            "regional": k.regional,
            "table": k.table,
            "history": k.history and k.durable,
            "synced_by": sync_of(k.kind).stem if sync_of(k.kind) else None,
        }
        for k in KINDS
    ]
