"""README's "The first ten minutes", step by step, against the real demo (``inventory demo``
on an 80-column terminal), in Debian's chromium. Screenshots go to docs/screenshots with
UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.servers import free_port
from tests.test_cli import ANSI, CLI, descendants, start_in_terminal, still_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The demo as README starts it; its login URL and token as it prints them."""
    tmp = tmp_path_factory.mktemp("walkthrough")
    out_path, port = tmp / "demo.out", free_port()
    argv = [*CLI, "demo", "--accounts", "3", "--state-dir", str(tmp / "state"), "--port", str(port)]
    proc, reader = start_in_terminal(argv, out_path, columns=80)
    spawned: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            spawned |= descendants(proc.pid)
            # Its last line; rich may wrap it anywhere on 80 columns (a long state path).
            if "Ctrl-C stops" in " ".join(
                ANSI.sub("", out_path.read_text(errors="replace")).split()
            ):
                break
            time.sleep(0.5)
        text = ANSI.sub("", out_path.read_text(errors="replace"))
        token = re.search(r"API token: (\S+)", text)
        login = re.search(r"^(http://127\.0\.0\.1:\d+/login)\s*$", text, re.M)
        assert token and login, f"demo exited {proc.poll()} or timed out:\n{text}"
        spawned |= descendants(proc.pid)
        yield {"token": token.group(1), "login": login.group(1), "output": text}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except Exception:  # noqa: BLE001 - then it is killed below
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(10)
        for pid in still_alive(spawned):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


def test_the_first_ten_minutes_as_readme_tells_them(demo, browser, shots: Path):
    errors: list[str] = []
    # The package's browser: a second Playwright in this process would refuse to start.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Chromium's "Failed to load resource" does not say which: the response does.
        page.on("response", lambda r: r.status < 400 or errors.append(f"{r.status} {r.url}"))

        # 1. Open the login URL the demo printed and paste the API token: the Policies page.
        page.goto(demo["login"])
        page.fill("#token", demo["token"])
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/policies"))
        page.wait_for_function(
            "() => /\\d+ resources/.test(document.getElementById('total').textContent)"
        )
        assert page.locator("#rows tr[data-arn]").count() == 50  # the first page of 50
        page.screenshot(path=str(shots / "policies.png"))

        # The Kind menu: the demo has a KMS key, a Lambda function, a Secrets Manager secret and
        # an ECR repository in each of dev, staging and prod, listed as a bucket is.
        for kind in ("kms_key", "lambda_function", "secretsmanager_secret", "ecr_repository"):
            page.select_option("#kind", kind)
            # Until this kind's rows replace the last kind's (whose total also read "3
            # resources"), reading them races their removal: a detached cell's text runs together.
            page.wait_for_function(
                """kind => {
                  const badges = [...document.querySelectorAll('#rows tr[data-arn] .badge-kind')];
                  return badges.length > 0 && badges.every(b => b.dataset.kind === kind)
                    && /^[3-9] resources/.test(document.getElementById('total').textContent);
                }""",
                arg=kind,
            )
            accounts = page.locator("#rows tr[data-arn] td:nth-child(3)").all_inner_texts()
            assert {"dev", "staging", "prod"} <= {a.split()[0] for a in accounts}, (kind, accounts)
        page.select_option("#kind", "")

        # 2. Type team-dev in Search: what the dev team owns; a row found by a tag says which.
        page.fill("#q", "team-dev")
        page.wait_for_function(
            "() => document.getElementById('total').textContent.startsWith('2 ')"
        )
        app_row = page.locator("#rows tr", has=page.locator("a.name-link", has_text="dev-app"))
        assert app_row.locator(".match").inner_text().split() == ["tag", "owner", "=", "team-dev"]
        page.screenshot(path=str(shots / "search.png"))

        # 3. Click dev-app: who may use it, its CloudTrail errors, policies, findings, history.
        app_row.locator("a.name-link").click()
        page.locator("#content").wait_for(state="visible")
        assert page.locator("#principals").inner_text().strip() == "dev-devs@example.com"
        assert page.locator("#errors .badge-error").inner_text() == "2 errors"
        assert "Inline policy: demo-guardrail" in page.locator("#policies").inner_text()
        page.locator("#findings-table, #findings-empty").first.wait_for()
        newest = page.locator("#history-changes li.change").first
        assert newest.locator(".badge-change").inner_text() == "updated"
        assert "user/dev-alice" in newest.locator(".actor").inner_text()
        assert "PutRolePolicy" in newest.inner_text()
        # Its top (its attached AWS managed policies make the whole page very long).
        page.screenshot(path=str(shots / "resource.png"))

        # 4. Changes: the demo's change, with who made it, the event and the region.
        page.locator("nav.nav a", has_text="Changes").click()
        row = page.locator("#rows tr", has=page.locator("a.name-link", has_text="dev-app")).first
        assert row.locator("td.region").inner_text() == "global"
        assert "PutRolePolicy" in row.inner_text() and "dev-alice" in row.inner_text()
        page.screenshot(path=str(shots / "changes.png"))

        # 5. Accounts: the organisation, how fresh each kind's data is.
        page.locator("nav.nav a", has_text="Accounts").click()
        page.wait_for_function(
            "() => /^4 accounts/.test(document.getElementById('total').textContent)"
        )
        # Every kind the demo runs is fresh; one it does not (Config in the management
        # account, which has no recorder) says "not enabled" and is not stale.
        assert page.locator("#total").inner_text() == "4 accounts, all fresh"
        names = page.locator("#rows .account-name").all_inner_texts()
        assert {"dev", "staging", "prod"} <= set(names)
        page.screenshot(path=str(shots / "accounts.png"))
    finally:
        context.close()
    assert errors == []
