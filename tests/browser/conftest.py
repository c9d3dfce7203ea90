"""Browser fixtures: Debian's chromium driven by Playwright against a real web server.

The caches are filled by the real sync code from a seeded moto organisation; the browser is
signed in by the trusted-proxy headers an authenticating proxy would send.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from inventory.aws.cloudtrail import ErrorEvent
from inventory.cache.web_state import release_refresh
from inventory.demo.seed import MANAGEMENT_ACCOUNT, AccountSeed, Seeder, seed_demo_organisation
from inventory.registry import BY_STEM, SYNCS
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.tasks.access import store_credential_mapping
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.cloudtrail import store_errors
from inventory.tasks.findings import analyse_account
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from inventory.web.access_reader import AccessReader
from inventory.web.app import Readers, make_app
from inventory.web.search import PolicySearch
from tests.conftest import BUCKET, inventory_env
from tests.web.conftest import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS = "<script>alert(1)</script>"
ADMIN = {"X-Forwarded-User": "alice@example.com", "X-Forwarded-Groups": "inventory-admins"}
DEVELOPER = {"X-Forwarded-User": "bob@example.com", "X-Forwarded-Groups": "dev-devs"}
TOKEN = "browser-test-token-Hq3n8Rz1"
TOKEN_USER = "carol@example.com"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class World:
    """The seeded organisation, its runtime, and the refresh tasks the web tier sent."""

    runtime: Runtime
    seeds: list[AccountSeed]
    sent: list[tuple[str, list[Any]]] = field(default_factory=list)

    @property
    def dev(self) -> AccountSeed:
        return self.seeds[0]

    def account_ids(self) -> list[str]:
        return [MANAGEMENT_ACCOUNT, *(s.id for s in self.seeds)]


@pytest.fixture(scope="package")
def browser_settings(redis_server, moto_server) -> Settings:
    env = inventory_env(redis_server, moto_server)
    return load_settings(
        paths=[],
        environ=env
        | {
            "INVENTORY_WEB__TRUSTED_PROXIES": "[127.0.0.1/32]",
            "INVENTORY_WEB__API_TOKENS": json.dumps(
                [{"name": TOKEN_USER, "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]
            ),
        },
    )


def _error(arn: str, account_id: str, n: int, code: str, action: str, resource: str) -> ErrorEvent:
    return ErrorEvent(
        event_id=f"browser-{n}",
        time=time.time() - 3600 + n,
        principal_arn=arn,
        account_id=account_id,
        error_code=code,
        error_message=None,
        action=action,
        resources=[resource],
        region="us-east-1",
    )


@pytest.fixture(scope="package")
def world(browser_settings: Settings, redis_server, moto_server) -> World:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    rt = Runtime(browser_settings)
    rt.ensure_tables()
    rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    seeds = seed_demo_organisation(moto_server.url)
    dev = seeds[0]
    # A tag value that would run if any page put cached data into HTML.
    Seeder(moto_server.url).client("iam", dev.id).tag_role(
        RoleName="dev-app", Tags=[{"Key": "note", "Value": XSS}]
    )
    store_account_mapping(rt)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        sync_iam_account(rt, account_id)
    for seed in seeds:
        for stem in ("s3_buckets", "sqs_queues", "sns_topics", "managed_policies"):
            sync_kind(rt, BY_STEM[stem], seed.id)
    # KMS, Lambda, Secrets Manager and ECR in dev alone: each page is shown once (and the
    # package's setup stays within its time on a loaded machine).
    for stem in ("kms_keys", "lambda_functions", "secrets", "ecr_repositories"):
        sync_kind(rt, BY_STEM[stem], dev.id)
    store_credential_mapping(rt)
    # Findings (issue 21), one of them carrying text that would run if put into HTML.
    Seeder(moto_server.url).client("iam", dev.id).put_role_policy(
        RoleName="dev-worker-0",
        PolicyName="hostile",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": f"s3:Get{XSS}", "Resource": "*"}]}
        ),
    )  # fmt: skip
    sync_iam_account(rt, dev.id)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        analyse_account(rt, account_id)
    app_role = dev.role_arn("dev-app")
    events = [
        _error(app_role, dev.id, 1, "AccessDenied", "s3:PutObject", "arn:aws:s3:::dev-data/x"),
        _error(app_role, dev.id, 2, "AccessDenied", "s3:PutObject", "arn:aws:s3:::dev-data/y"),
        _error(app_role, dev.id, 3, "UnauthorizedOperation", "ec2:RunInstances", "*"),
    ]
    store_errors(rt, events, time.time(), 7 * 86400.0)
    return World(rt, seeds)


def _run_refresh(world: World, name: str, args: list[Any]) -> None:
    """What a worker would do with the refresh task: the real sync code, a moment later."""
    time.sleep(0.5)
    account_id = next(a for a in args if isinstance(a, str) and a.isdigit())
    sync = next(s for s in SYNCS if name in (s.for_account_task, s.across_accounts_task))
    sync_kind(world.runtime, sync, account_id)


@dataclass
class InlineTasks:
    """The task queue as a worker would serve it: each refresh runs in a thread, then frees
    its claim as the task base does."""

    world: World

    def send(self, name: str, args: list[Any], task_id: str, expires: float) -> str:
        self.world.sent.append((name, list(args)))
        threading.Thread(target=self._run, args=(name, args, task_id), daemon=True).start()
        return task_id

    def time_limit(self, name: str) -> float:
        return 660.0

    def _run(self, name: str, args: list[Any], task_id: str) -> None:
        _run_refresh(self.world, name, args)
        rt = self.world.runtime
        release_refresh(rt.redis, rt.keys, name, args[0], task_id)


@pytest.fixture(scope="package")
def web(browser_settings: Settings, world: World) -> Iterator[Server]:
    rt = world.runtime
    search = PolicySearch(rt.redis, rt.keys)
    search.load()

    access = AccessReader(rt.redis_cache)
    access.refresh()
    readers = Readers(
        rt.redis_cache,
        rt.outcomes,
        search=search,
        requests=rt.requests,
        tasks=InlineTasks(world),
        access=access,
    )
    server = Server(make_app(browser_settings, readers)).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser tests need playwright (pip install .[test])"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page with every dialog, script error and console error it raised."""

    page: Any
    base: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)


def _open(browser: Any, web: Server, headers: dict[str, str] | None) -> tuple[Any, Watched]:
    context = browser.new_context(
        extra_http_headers=headers or {}, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    watched = Watched(page, f"http://127.0.0.1:{web.port}")

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: Any) -> None:
        # A fetch the test means to fail (404, 400) logs "Failed to load resource"; not a bug.
        if message.type == "error" and "Failed to load resource" not in message.text:
            watched.errors.append(message.text)

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    page.on("console", on_console)
    return context, watched


@pytest.fixture
def page_as(browser, web) -> Iterator[Callable[[dict[str, str] | None], Watched]]:
    """``page_as(headers)``: a fresh browser context sending those headers on every request.

    When the test ends, no page may have opened a dialog (injected script), thrown, or logged
    a console error (which is how Chromium reports a CSP violation).
    """
    opened: list[tuple[Any, Watched]] = []

    def open_page(headers: dict[str, str] | None) -> Watched:
        opened.append(_open(browser, web, headers))
        return opened[-1][1]

    yield open_page
    for context, _ in opened:
        context.close()
    assert [(w.dialogs, w.errors) for _, w in opened] == [([], [])] * len(opened)


@pytest.fixture
def admin_page(page_as) -> Watched:
    return page_as(ADMIN)


@pytest.fixture
def developer_page(page_as) -> Watched:
    return page_as(DEVELOPER)


@pytest.fixture
def anonymous_page(page_as) -> Watched:
    return page_as(None)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """docs/screenshots when UPDATE_SCREENSHOTS=1, else a temporary directory."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path
