"""`inventory check` and `inventory sync <kind>` against the real test servers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from inventory.cache.keys import Partition
from inventory.cli import main
from inventory.demo.seed import Seeder, demo_account
from inventory.tasks.accounts import store_account_mapping
from tests.servers import free_port


def test_check_reports_every_dependency_and_exit_code(env, runtime):
    ok = CliRunner().invoke(main, ["check"], env=env)
    assert ok.exit_code == 0, ok.output
    for name in ("configuration", "redis cache", "celery broker", "dynamodb", "aws"):
        assert name in ok.output
    assert "NO" not in ok.output

    down = env | {"INVENTORY_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0"}
    failed = CliRunner().invoke(main, ["check"], env=down)
    assert failed.exit_code == 1
    assert "redis cache" in failed.output and "NO" in failed.output

    bad = CliRunner().invoke(main, ["check"], env=env | {"INVENTORY_REDIS__URL": "http://x"})
    assert bad.exit_code == 2
    assert "redis.url = 'http://x'" in bad.output


def test_sync_runs_any_registry_kind_for_one_account(env, runtime, moto_server):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)

    result = CliRunner().invoke(main, ["sync", "sqs_queues", "-a", dev.id, "--json"], env=env)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {dev.id}
    assert set(summary[dev.id]["regions"]) == {"us-east-1", "us-west-2"}
    for region in ("us-east-1", "us-west-2"):
        cached = runtime.redis_cache.items(Partition("sqs_queue", dev.id, region))
        assert summary[dev.id]["regions"][region]["listed"] == len(cached) == 2


def test_check_warns_of_unnamed_token_hashes_and_still_passes(env, runtime):
    result = CliRunner().invoke(
        main, ["check"], env=env | {"INVENTORY_WEB__API_TOKEN_HASHES": "[" + "ab" * 32 + "]"}
    )
    assert result.exit_code == 0, result.output
    assert "warning: web.api_token_hashes is deprecated: move each digest to web.api_tokens" in (
        result.stderr
    )
