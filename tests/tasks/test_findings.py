"""Findings kept current: analysed once per content, nothing on a steady sweep, changes recorded.

In process against the session's real redis-server and moto server, through the real IAM and
S3 syncs and the real store (history on, as configured by default).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from inventory.cache.keys import FINDING, GLOBAL, Partition
from inventory.demo.seed import AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.findings import analyse_account, analysed_accounts, pending_accounts, state
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.policies_table import rebuild_policies_table
from inventory.tasks.resources import sync_kind

PUBLIC = "dev-open-site"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def dev(runtime, moto_server) -> tuple[Seeder, AccountSeed]:
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    account = seeder.create_account(demo_account("dev", 0))
    s3 = seeder.client("s3", account.id)
    s3.create_bucket(Bucket=PUBLIC)
    s3.put_bucket_policy(
        Bucket=PUBLIC,
        Policy=doc(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{PUBLIC}/*"}
        ),
    )  # fmt: skip
    store_account_mapping(runtime)
    sync(runtime, account)
    return seeder, account


def sync(runtime, account: AccountSeed) -> None:
    sync_iam_account(runtime, account.id)
    sync_kind(runtime, BY_STEM["s3_buckets"], account.id)


def findings_of(runtime, account_id: str) -> dict[str, set[str]]:
    records = runtime.redis_cache.items(Partition(FINDING, account_id, GLOBAL))
    return {arn: set(r["findings"]) for arn, r in records.items()}


def test_first_analysis_finds_each_risk_where_it_is(runtime, dev):
    _, account = dev
    result = analyse_account(runtime, account.id)
    assert (result["subjects"], result["analysed"]) == (10, 10)
    found = findings_of(runtime, account.id)
    assert found[f"arn:aws:s3:::{PUBLIC}"] == {"public_access:resource policy:statement 1"}
    assert found[account.policy_arn("dev-boundary")] == {
        "credentials_exposure:policy document",
        "data_exfiltration:policy document",
        "full_admin:policy document",
        "infrastructure_modification:policy document",
        "privilege_escalation:policy document",
        "resource_exposure:policy document",
    }
    # The boundary (Allow * on *) caps nothing: the app role's findings are its policies'.
    assert found[account.role_arn("dev-app")] == {
        f"infrastructure_modification:{account.policy_arn('dev-queue-access')}"
    }
    # The data bucket's policy only denies: no finding, no record.
    assert "arn:aws:s3:::dev-data-0" not in found
    # critical: full admin, public access; high: escalation, exposure, credentials (boundary).
    assert result["findings"] == {"critical": 2, "high": 3, "medium": 1, "low": 9}


def test_a_steady_sweep_analyses_nothing(runtime, dev):
    _, account = dev
    analyse_account(runtime, account.id)
    before = state(runtime).stats()
    pending_accounts(runtime)  # the first sync marked the account
    sync(runtime, account)
    assert pending_accounts(runtime) == []  # nothing changed: nothing marked
    result = analyse_account(runtime, account.id)  # a reconcile all the same
    assert (result["analysed"], result["documents_analysed"]) == (0, 0)
    assert (result["new_or_changed"], result["resolved"]) == (0, 0)
    assert state(runtime).stats() == before


def test_a_changed_policy_reanalyses_only_its_principal_and_document(runtime, dev):
    seeder, account = dev
    analyse_account(runtime, account.id)
    pending_accounts(runtime)
    seeder.client("iam", account.id).put_role_policy(
        RoleName="dev-worker-0",
        PolicyName="logs-0",
        PolicyDocument=doc({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}),
    )
    sync(runtime, account)
    assert pending_accounts(runtime) == [account.id]
    result = analyse_account(runtime, account.id)
    assert (result["analysed"], result["documents_analysed"]) == (1, 1)
    assert (
        "privilege_escalation:inline policy logs-0"
        in findings_of(runtime, account.id)[account.role_arn("dev-worker-0")]
    )


def test_new_and_resolved_findings_are_in_the_change_history(runtime, dev):
    seeder, account = dev
    analyse_account(runtime, account.id)
    seeder.client("s3", account.id).delete_bucket_policy(Bucket=PUBLIC)
    seeder.client("iam", account.id).put_role_policy(
        RoleName="dev-app",
        PolicyName="secrets",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ),
    )
    sync(runtime, account)
    result = analyse_account(runtime, account.id)
    assert (result["new_or_changed"], result["resolved"]) == (1, 1)
    changes, _ = runtime.history.feed(kind=FINDING)
    by_arn = {c.arn: c for c in changes}
    resolved = by_arn[f"arn:aws:s3:::{PUBLIC}"]
    assert resolved.change == "deleted"
    added = by_arn[account.role_arn("dev-app")]
    assert added.change == "updated"
    assert {(op["op"], op["path"]) for op in added.diff} >= {
        ("add", "/findings/data_exfiltration:inline policy secrets"),
        (
            "add",
            "/findings/policy_grammar:inline policy secrets:RESOURCE_STAR:"
            '["secretsmanager:GetSecretValue"]',
        ),
    }


def test_policies_table_rows_show_the_count_and_worst_severity(runtime, dev):
    _, account = dev
    analyse_account(runtime, account.id)
    rows = runtime.policies_table.rows()
    assert (rows[account.policy_arn("dev-boundary")]["findings"],
            rows[account.policy_arn("dev-boundary")]["severity"]) == (6, "critical")  # fmt: skip
    assert (
        rows["arn:aws:s3:::dev-data-0"]["findings"],
        rows["arn:aws:s3:::dev-data-0"]["severity"],
    ) == (0, None)
    assert rebuild_policies_table(runtime)["fixed"] == 0  # the rebuild agrees with the listener


def test_a_shared_change_makes_every_account_pending(runtime, dev):
    _, account = dev
    pending_accounts(runtime)
    state(runtime).mark("*")
    assert pending_accounts(runtime) == analysed_accounts(runtime)
    assert account.id in analysed_accounts(runtime)
