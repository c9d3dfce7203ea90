"""/accounts after a demo-like first sweep: no stale account, "not enabled" where Config is off;
/policies shows an AWS Config resource with a link to its history in the Config console.

The organisation is the demo's (member accounts record AWS Config in each region; the management
account has no recorder), every sync runs for every account as the demo's first sweep does, and
the page is read by Debian's chromium. Its own Redis and moto servers keep the package's shared
``world`` untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inventory.aws.config import transform_resource
from inventory.demo.seed import MANAGEMENT_ACCOUNT, seed_demo_organisation
from inventory.registry import SYNCS
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.resources import sync_kind
from inventory.web.app import Readers, make_app
from inventory.web.search import PolicySearch
from tests.browser.conftest import ADMIN, _open
from tests.conftest import BUCKET, inventory_env
from tests.servers import MotoServer, RedisServer
from tests.web.conftest import Server

CONFIG = "config_resource"
REGION = "us-east-1"
SECURITY_GROUP = {
    "resourceType": "AWS::EC2::SecurityGroup",
    "resourceId": "sg-0a1b2c3d4e5f60718",
    "resourceName": "web-frontend-sg",
    "arn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-0a1b2c3d4e5f60718",
    "awsRegion": REGION,
    "tags": [],
    "configuration": {"groupName": "web-frontend-sg"},
}


@pytest.fixture(scope="module")
def demo_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[str]]]:
    redis_server = RedisServer(Path(tmp_path_factory.mktemp("redis-accounts"))).start()
    moto_server = MotoServer().start()
    server = None
    try:
        env = inventory_env(redis_server, moto_server)
        settings = load_settings(
            paths=[], environ=env | {"INVENTORY_WEB__TRUSTED_PROXIES": "[127.0.0.1/32]"}
        )
        rt = Runtime(settings)
        rt.ensure_tables()
        rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
        seeds = seed_demo_organisation(moto_server.url)
        store_account_mapping(rt)
        accounts = [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]
        for sync in SYNCS:
            for account_id in accounts:
                sync_kind(rt, sync, account_id)
        # moto's Config knows only types other kinds list directly: one it does not, as the
        # advanced query would return it.
        raw = SECURITY_GROUP | {"arn": SECURITY_GROUP["arn"].replace("000000000000", seeds[0].id)}
        group = transform_resource(raw, seeds[0].id, REGION)
        rt.store.replace_partition(CONFIG, seeds[0].id, REGION, [group], complete=False)
        search = PolicySearch(rt.redis, rt.keys)
        search.load()
        readers = Readers(rt.redis_cache, rt.outcomes, search=search)
        server = Server(make_app(settings, readers)).start()
        yield server, accounts
    finally:
        if server is not None:
            server.stop()
        moto_server.stop()
        redis_server.stop()


def test_accounts_after_the_first_sweep_show_no_stale_data_and_config_not_enabled(
    browser: Any, demo_web: tuple[Server, list[str]]
) -> None:
    server, accounts = demo_web
    context, watched = _open(browser, server, ADMIN)
    try:
        watched.goto("/accounts")
        page = watched.page
        page.locator("#rows tr").first.wait_for()

        assert page.locator("#total").inner_text() == f"{len(accounts)} accounts, all fresh"
        assert page.locator("#rows tr.has-stale").count() == 0
        assert page.locator("#rows td.age.stale").count() == 0
        cells = page.locator("#rows td.age").evaluate_all(
            "cells => cells.map(c => [c.closest('tr').dataset.account, c.dataset.kind,"
            " c.textContent, c.className])"
        )
        not_enabled = {(a, k) for a, k, text, _ in cells if text == "not enabled"}
        # Only the management account lacks a Config recorder.
        assert not_enabled == {(MANAGEMENT_ACCOUNT, CONFIG)}
        for account, kind, text, classes in cells:
            if (account, kind) in not_enabled:
                assert classes.split() == ["age", "not-enabled"]
            else:
                assert re.fullmatch(r"\d+ (second|minute)s?", text), (account, kind, text)
        assert (watched.dialogs, watched.errors) == ([], [])
    finally:
        context.close()


def test_policies_table_finds_a_config_resource_and_links_its_config_history(
    browser: Any, demo_web: tuple[Server, list[str]]
) -> None:
    server, _ = demo_web
    context, watched = _open(browser, server, ADMIN)
    try:
        watched.goto("/policies?q=web-frontend")
        page = watched.page
        link = page.locator("#rows a.name-link", has_text="web-frontend-sg")
        link.wait_for()

        assert page.locator("#rows tr").count() == 1
        assert link.get_attribute("href") == (
            "https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1"
            "#/resources/timeline?resourceId=sg-0a1b2c3d4e5f60718"
            "&resourceType=AWS%3A%3AEC2%3A%3ASecurityGroup"
        )
        assert link.get_attribute("target") == "_blank"
        assert page.locator("#rows tr td").nth(1).inner_text() == "Config resource"
        assert (watched.dialogs, watched.errors) == ([], [])
    finally:
        context.close()
