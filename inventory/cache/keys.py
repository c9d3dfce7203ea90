"""Every Redis key, DynamoDB table name and S3 key, for writers and readers alike."""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL = "global"
ALL_ACCOUNTS = "all"

# Resource kinds written by the IAM sync, and the account mapping.
IAM_ROLE = "iam_role"
IAM_USER = "iam_user"
IAM_GROUP = "iam_group"
IAM_POLICY = "iam_policy"
IAM_KINDS = (IAM_ROLE, IAM_USER, IAM_GROUP, IAM_POLICY)
ACCOUNT = "account"

# Kinds other tasks derive or keep; every kind's facts are in inventory/registry.py.
MANAGED_POLICY = "managed_policy"
AWS_MANAGED_POLICY = "aws_managed_policy"
#: The account of the AWS managed policy catalogue, one partition shared by every account.
AWS_MANAGED_ACCOUNT = "aws"
#: Kinds the managed-policy typeahead offers: an account's own, and AWS's catalogue for all.
TYPEAHEAD_POLICY_KINDS = frozenset({MANAGED_POLICY, AWS_MANAGED_POLICY})
CONFIG_RESOURCE = "config_resource"
CLOUDTRAIL_ERRORS = "cloudtrail_errors"
ROLE_ACCESS = "role_access"
PRINCIPAL_ACCESS = "principal_access"
POLICY_REQUEST = "policy_request"
IAM_ROLE_LIMIT = "iam_role_limit"
#: Risk findings, one record per analysed principal, policy or resource (keyed by its ARN).
FINDING = "finding"

# Kinds whose lists are filtered and paged by a few fields: each item's summary is kept beside
# it, so a page reads the summaries and then only the items it shows.
SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    POLICY_REQUEST: ("id", "status", "account_id", "resource_arn", "requester", "created_at")
}

# Logical DynamoDB tables; the physical name is table_prefix + logical name.
TABLE_IAM_ROLES = "iamroles"
TABLE_RESOURCES = "resources"
TABLE_ACCOUNTS = "cloudaccounts"
TABLE_POLICY_REQUESTS = "policyrequests"
TABLE_REPLICATION = "replication"
TABLE_CHANGES = "changes"
TABLES = (TABLE_IAM_ROLES, TABLE_RESOURCES, TABLE_ACCOUNTS)
_TABLE_BY_KIND = {IAM_ROLE: TABLE_IAM_ROLES, ACCOUNT: TABLE_ACCOUNTS}


def table_for_kind(kind: str) -> str:
    """The logical table a kind is stored in: roles keep ConsoleMe's own table."""
    return _TABLE_BY_KIND.get(kind, TABLE_RESOURCES)


@dataclass(frozen=True)
class Partition:
    """The unit of caching: one kind in one account and region (IAM kinds use ``global``)."""

    kind: str
    account_id: str
    region: str = GLOBAL

    @property
    def id(self) -> str:
        return f"{self.kind}|{self.account_id}|{self.region}"

    @classmethod
    def parse(cls, value: str) -> Partition:
        kind, account_id, region = value.split("|")
        return cls(kind, account_id, region)


@dataclass(frozen=True)
class Keys:
    """Redis key names under one prefix."""

    prefix: str = "inv:"

    def items(self, p: Partition) -> str:
        """Hash: ARN -> record JSON."""
        return f"{self.prefix}p:{p.id}:items"

    def hashes(self, p: Partition) -> str:
        """Hash: ARN -> content hash of the record's canonical JSON."""
        return f"{self.prefix}p:{p.id}:hashes"

    def seen(self, p: Partition) -> str:
        """Sorted set: ARN scored by the last time a listing returned it."""
        return f"{self.prefix}p:{p.id}:seen"

    def summaries(self, p: Partition) -> str:
        """Hash: ARN -> JSON of the item's ``SUMMARY_FIELDS`` (only kinds that have them)."""
        return f"{self.prefix}p:{p.id}:summaries"

    def meta(self, p: Partition) -> str:
        """Hash: refreshed_at, complete, count, changed_at for the partition."""
        return f"{self.prefix}p:{p.id}:meta"

    def partitions(self) -> str:
        """Set of every partition id that holds data."""
        return f"{self.prefix}partitions"

    def arn_index(self) -> str:
        """Hash: ARN -> partition id, so a reader finds any resource by ARN alone."""
        return f"{self.prefix}arn"

    def last_success(self) -> str:
        """Hash: ``task|account`` -> unix time of the last success."""
        return f"{self.prefix}task:last_success"

    def last_failure(self) -> str:
        """Hash: ``task|account`` -> unix time of the last failure."""
        return f"{self.prefix}task:last_failure"

    def last_error(self) -> str:
        """Hash: ``task|account`` -> the last failure's error, one line."""
        return f"{self.prefix}task:last_error"

    def outcomes(self) -> str:
        """Hash: ``task|account|outcome`` -> count."""
        return f"{self.prefix}task:outcomes"

    def changes(self) -> str:
        """Stream: one entry per partition change (ARNs added/removed, policies-table rows)."""
        return f"{self.prefix}changes"

    def runtimes(self) -> str:
        """Hash: ``task|bucket`` -> count, ``task|sum`` -> seconds, ``task|count`` -> runs."""
        return f"{self.prefix}task:runtime"

    def last_success_gauge(self) -> str:
        """Hash: task -> seconds since its last success (ConsoleMe's per-task gauge)."""
        return f"{self.prefix}metrics:celery_last_success"

    def beat_last_tick(self) -> str:
        """String: unix time of the leader beat's last tick."""
        return f"{self.prefix}beat:last_tick"

    def beat_leader(self) -> str:
        """String: ``host:pid`` of the beat holding the RedBeat lock."""
        return f"{self.prefix}beat:leader"

    def rejected_messages(self) -> str:
        """Hash: reason -> count of task messages a worker refused (unsigned, tampered...)."""
        return f"{self.prefix}worker:rejected"

    def schema_lock(self) -> str:
        """Lock: one process migrates the DynamoDB item keys while the others wait."""
        return f"{self.prefix}schema:lock"

    def message_run(self, nonce: str) -> str:
        """String with a TTL: the signed message with this seal nonce has run (no replays)."""
        return f"{self.prefix}worker:run:{nonce}"

    def history_feed(self, account_id: str | None = None, kind: str | None = None) -> str:
        """Stream (capped): recent changes, one JSON entry each; every resource, or one
        account's or one kind's (the same entries, so a filtered read skips the rest)."""
        if account_id is not None:
            return f"{self.prefix}history:account:{account_id}"
        if kind is not None:
            return f"{self.prefix}history:kind:{kind}"
        return f"{self.prefix}history"

    def event_applied(self) -> str:
        """Hash: when an event refresh last read a resource from AWS. ``<arn>``: any part (a
        sweep that listed earlier must not overwrite it); ``<arn>|<aspect>`` and ``<arn>|*``
        (a whole read): an event older than the read of its part is already reflected."""
        return f"{self.prefix}events:applied"

    def event_lock(self, account_id: str) -> str:
        """Lock: one event refresh of this account at a time (each merges into the cache)."""
        return f"{self.prefix}events:lock:{account_id}"

    def event_seen(self, event_id: str) -> str:
        """String with a TTL: this CloudTrail event id was already handled."""
        return f"{self.prefix}events:seen:{event_id}"

    def event_lag(self) -> str:
        """Hash: histogram buckets of seconds from CloudTrail event time to cache time."""
        return f"{self.prefix}events:lag"

    def event_consumers(self) -> str:
        """Hash: ``inventory events`` consumer (host:pid) -> Unix time of its last poll."""
        return f"{self.prefix}events:consumers"

    def event_counts(self) -> str:
        """Hash: change-event counters (``received``, ``applied``, ``dropped|<reason>``)."""
        return f"{self.prefix}events:counts"

    def replica_cursor(self) -> str:
        """Hash: stream (a kind, or ``_outcomes``) -> updatedAt of the newest entry applied."""
        return f"{self.prefix}replica:cursor"

    def replica_pending(self) -> str:
        """Set: partitions whose manifest arrived before all their items (checked each round)."""
        return f"{self.prefix}replica:pending"

    def published_outcomes(self) -> str:
        """Hash: account -> digest of the outcomes last published to the replication log."""
        return f"{self.prefix}replica:published"

    def shared_document_versions(self) -> str:
        """Hash: AWS managed policy ARN -> ``version@updated`` of the document cached."""
        return f"{self.prefix}awsdoc:versions"

    def shared_catalogue_claim(self) -> str:
        """String with a TTL: a sync of this sweep lists the AWS managed policy catalogue."""
        return f"{self.prefix}awsdoc:lead"

    def login_session(self, session_hash: str) -> str:
        """String with a TTL: a login session (SHA-256 of its id) -> the token digest it used."""
        return f"{self.prefix}web:session:{session_hash}"

    def rate_window(self, scope: str, caller_hash: str, window: int) -> str:
        """Counter with a TTL: one caller's requests of one kind in one fixed time window."""
        return f"{self.prefix}web:rate:{scope}:{caller_hash}:{window}"

    def refresh_claim(self, task: str, account_id: str) -> str:
        """String with a TTL: the id of the refresh of this task and account queued or running."""
        return f"{self.prefix}web:refresh:{task}:{account_id}"

    def shared_document_claim(self, arn: str, version: str) -> str:
        """String, short TTL: one sync is fetching this document, the others need not."""
        return f"{self.prefix}awsdoc:claim:{arn}:{version}"


def outcome_field(task: str, account_id: str | None) -> str:
    return f"{task}|{account_id or ALL_ACCOUNTS}"


def s3_snapshot_key(prefix: str, p: Partition) -> str:
    """One gzipped JSON object per partition."""
    return f"{prefix}{p.kind}/{p.account_id}/{p.region}.json.gz"


def s3_jsonl_key(prefix: str, p: Partition) -> str:
    """One gzipped JSON Lines object per partition under Hive-style folders (Athena, DuckDB)."""
    return f"{prefix}kind={p.kind}/account={p.account_id}/region={p.region}/records.jsonl.gz"


def principal_key(principal: str) -> str:
    """Principal records are keyed ``principal:<name>`` (the store's key field is ``arn``)."""
    return f"principal:{principal.lower()}"
