"""Data out: export (JSON Lines, CSV), get, search, --json everywhere, and S3 JSON Lines that
DuckDB reads as a Hive-partitioned table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click
import duckdb
import pytest
from click.testing import CliRunner

from inventory.cache.keys import GLOBAL, IAM_ROLE, Partition
from inventory.cli import main
from inventory.export import contains_pattern
from inventory.runtime import Runtime
from inventory.settings import load_settings
from tests.conftest import BUCKET

A, B = "111111111111", "222222222222"
SQS = "sqs_queue"


def role(account: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"arn": f"arn:aws:iam::{account}:role/{name}", "name": name, **extra}


def queue(account: str, region: str, name: str) -> dict[str, Any]:
    return {"arn": f"arn:aws:sqs:{region}:{account}:{name}", "name": name, "fifo": False}


@pytest.fixture
def cached(runtime: Runtime) -> dict[Partition, list[dict[str, Any]]]:
    """Three partitions of two kinds in two accounts, written through the real store."""
    data = {
        Partition(IAM_ROLE, A, GLOBAL): [
            role(A, "Admin", tags={"team": "ops"}),
            role(A, "deploy-Bot"),
        ],
        Partition(IAM_ROLE, B, GLOBAL): [role(B, "ReadOnly", path="/ro/")],
        Partition(SQS, A, "us-east-1"): [
            queue(A, "us-east-1", "jobs"),
            queue(A, "us-east-1", "dlq"),
        ],
    }
    for p, records in data.items():
        runtime.store.replace_partition(p.kind, p.account_id, p.region, records, complete=True)
    return data


def invoke(env: dict[str, str], *args: str) -> click.testing.Result:
    result = CliRunner().invoke(main, list(args), env=env, prog_name="inventory")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


# --- export ------------------------------------------------------------------------------------


def test_export_jsonl_writes_every_record_with_its_partition(env, cached):
    result = invoke(env, "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = lines(result.stdout)
    expected = [
        {"kind": p.kind, "account_id": p.account_id, "region": p.region, **r}
        for p in sorted(cached, key=lambda p: (p.kind, p.account_id, p.region))
        for r in sorted(cached[p], key=lambda r: r["arn"])
    ]
    assert rows == expected
    assert result.stderr == "5 records from 3 partitions\n"


def test_export_filters_by_kind_and_account(env, cached):
    only_roles_of_b = lines(invoke(env, "export", "--kind", IAM_ROLE, "-a", B).stdout)
    assert [r["arn"] for r in only_roles_of_b] == [f"arn:aws:iam::{B}:role/ReadOnly"]
    queues = lines(invoke(env, "export", "--json", "--kind", SQS).stdout)
    assert {r["name"] for r in queues} == {"jobs", "dlq"}


def test_export_csv_has_every_key_as_a_column_and_nested_values_as_json(env, cached, tmp_path):
    out = tmp_path / "export.csv"
    result = invoke(env, "export", "--format", "csv", "--kind", IAM_ROLE, "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["kind", "account_id", "region", "arn", "name", "path", "tags"]
    admin = next(r for r in rows if r["name"] == "Admin")
    assert admin == {
        "kind": IAM_ROLE,
        "account_id": A,
        "region": GLOBAL,
        "arn": f"arn:aws:iam::{A}:role/Admin",
        "name": "Admin",
        "path": "",
        "tags": '{"team":"ops"}',
    }
    assert len(rows) == 3


# --- get and search ----------------------------------------------------------------------------


def test_get_prints_the_cached_record_as_json_and_exits_1_when_absent(env, cached):
    arn = f"arn:aws:iam::{A}:role/Admin"
    result = invoke(env, "get", arn, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == role(A, "Admin", tags={"team": "ops"})
    table = invoke(env, "get", arn)
    assert "Admin" in table.stdout and '{"team": "ops"}' in table.stdout
    missing = invoke(env, "get", f"arn:aws:iam::{A}:role/Nobody")
    assert (missing.exit_code, missing.stderr) == (1, f"not cached: arn:aws:iam::{A}:role/Nobody\n")


def test_search_matches_any_case_and_filters(env, cached):
    found = json.loads(invoke(env, "search", "DEPLOY", "--json").stdout)
    assert found == [
        {
            "kind": IAM_ROLE,
            "account_id": A,
            "region": GLOBAL,
            "arn": f"arn:aws:iam::{A}:role/deploy-Bot",
            "name": "deploy-Bot",
        }
    ]
    in_a = json.loads(invoke(env, "search", f":{A}:", "--json", "--kind", SQS).stdout)
    assert [m["name"] for m in in_a] == ["dlq", "jobs"]
    limited = json.loads(invoke(env, "search", "arn:aws", "--json", "--limit", "2").stdout)
    assert len(limited) == 2


def test_search_treats_glob_characters_as_text(env, cached):
    nothing = invoke(env, "search", "*", "--json")
    assert (nothing.exit_code, json.loads(nothing.stdout)) == (1, [])
    assert contains_pattern("a*[b]?\\") == "*[aA]\\*\\[[bB]\\]\\?\\\\*"


def test_every_command_takes_json():
    def leaves(command: click.Command, path: tuple[str, ...] = ()):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from leaves(sub, (*path, name))
        else:
            yield " ".join(path), command

    without = [
        name
        for name, command in leaves(main)
        if not any("--json" in p.opts for p in command.params)
    ]
    assert without == []


def test_schedule_show_json_is_the_effective_schedule(env):
    entries = json.loads(invoke(env, "schedule", "show", "--json").stdout)
    names = {e["name"] for e in entries}
    assert "report_celery_last_success_metrics" in names
    assert all(set(e) >= {"name", "task", "queue", "enabled"} for e in entries)


# --- S3 JSON Lines under Hive-style keys, read by DuckDB ---------------------------------------


def download(runtime: Runtime, into: Path) -> list[str]:
    """Every object of the snapshot bucket, copied under its own key."""
    s3 = runtime.aws.hub_client("s3", "us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    for key in keys:
        path = into / key
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(path))
    return sorted(keys)


def test_jsonl_snapshots_are_a_hive_table_duckdb_reads(env, clean, tmp_path):
    settings = load_settings(paths=[], environ=env | {"INVENTORY_S3__LAYOUT": "jsonl"})
    runtime = Runtime(settings)
    runtime.ensure_tables()
    runtime.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    partitions = {
        Partition(IAM_ROLE, A, GLOBAL): [role(A, f"r{i}") for i in range(3)],
        Partition(IAM_ROLE, B, GLOBAL): [role(B, "only")],
        Partition(SQS, A, "us-east-1"): [queue(A, "us-east-1", f"q{i}") for i in range(4)],
        Partition(SQS, B, "us-west-2"): [queue(B, "us-west-2", "west")],
    }
    for p, records in partitions.items():
        runtime.store.replace_partition(p.kind, p.account_id, p.region, records, complete=True)

    keys = download(runtime, tmp_path)

    assert keys == sorted(
        f"inventory/kind={p.kind}/account={p.account_id}/region={p.region}/records.jsonl.gz"
        for p in partitions
    )
    con = duckdb.connect()
    try:
        # Account ids stay text: as numbers, 012345678901 would lose its leading zero.
        table = (
            f"read_json_auto('{tmp_path}/inventory/**/*.jsonl.gz', "
            "hive_partitioning = true, hive_types_autocast = false)"
        )
        per_kind = con.execute(
            f"SELECT kind, count(*) FROM {table} GROUP BY kind ORDER BY kind"
        ).fetchall()
        per_partition = con.execute(
            f"SELECT kind, account, region, count(*) FROM {table} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        names = con.execute(
            f"SELECT name FROM {table} WHERE kind = '{SQS}' AND region = 'us-east-1' ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert per_kind == [(IAM_ROLE, 4), (SQS, 5)]
    assert per_partition == sorted(
        (p.kind, p.account_id, p.region, len(r)) for p, r in partitions.items()
    )
    assert names == [("q0",), ("q1",), ("q2",), ("q3",)]
    # The same objects read back as snapshots: DynamoDB, Redis and S3 agree.
    for p in partitions:
        assert runtime.verifier.check(p).equal, p
