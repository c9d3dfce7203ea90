"""Change history in the browser: a resource page's History section and the /changes feed.

The changes come from the real sync code: a queue in each of two accounts is tagged in moto
(one tag value is markup) and its account's queues are synced again.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

from inventory.demo.seed import Seeder
from inventory.registry import BY_STEM
from inventory.tasks.resources import sync_kind
from tests.browser.conftest import XSS, Watched, World

TAG = "history-note"


def tag_and_sync(world: World, moto_url: str, seed_index: int, value: str) -> str:
    """Tag the account's first queue in moto, sync the account's queues; the queue's ARN."""
    seed = world.seeds[seed_index]
    queue = seed.queues[0]
    sqs = Seeder(moto_url).client("sqs", seed.id, queue.region)
    url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={TAG: value})
    sync_kind(world.runtime, BY_STEM["sqs_queues"], seed.id)
    return seed.queue_arn(queue)


def rows_accounts(page: Watched) -> list[str]:
    return page.page.locator("#rows tr[data-account]").evaluate_all(
        "rows => rows.map(r => r.dataset.account)"
    )


def test_a_tagged_queue_shows_its_change_on_its_page_and_in_the_filtered_feed(
    admin_page: Watched, world: World, moto_server, screenshot_dir: Path
):
    dev, other = world.seeds[0], world.seeds[1]
    dev_queue = tag_and_sync(world, moto_server.url, 0, XSS)
    other_queue = tag_and_sync(world, moto_server.url, 1, "plain")

    # The resource page: its History section shows the tag's change, the markup as text.
    admin_page.goto("/resource/" + urllib.parse.quote(dev_queue, safe=""))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    change = page.locator("#history-changes li.change").first
    assert change.locator(".badge-change").inner_text() == "updated"
    row = change.locator("tr", has=page.locator("td.diff-path", has_text=f"/tags/{TAG}"))
    assert row.locator("td.diff-old").inner_text() == "—"
    assert json.loads(row.locator("td.diff-new").inner_text()) == XSS
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", change.locator("time").inner_text())
    assert page.locator("main script").count() == 0
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshot_dir / "history.png"), full_page=True)

    # The feed, then filtered by account through the form: only that account's changes.
    page.locator("nav.nav a", has_text="Changes").click()
    page.locator("#changes").wait_for(state="visible")
    arns = page.locator("#rows .arn").all_inner_texts()
    assert {dev_queue, other_queue} <= set(arns)
    assert {dev.id, other.id} <= set(rows_accounts(admin_page))

    page.select_option("#account", dev.id)
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/changes\?account={dev.id}"))
    assert set(rows_accounts(admin_page)) == {dev.id}
    dev_arns = page.locator("#rows .arn").all_inner_texts()
    assert dev_queue in dev_arns and other_queue not in dev_arns
    assert page.locator("#account").input_value() == dev.id
    dev_row = page.locator("#rows tr", has=page.locator(".arn", has_text=dev_queue)).first
    assert f"/tags/{TAG}" in dev_row.locator(".diff-summary").inner_text()
    page.screenshot(path=str(screenshot_dir / "changes.png"), full_page=True)

    # Its link opens the queue's page.
    dev_row.locator("a.name-link").click()
    page.locator("#history-changes").wait_for(state="visible")
    assert urllib.parse.unquote(urllib.parse.urlparse(page.url).path) == f"/resource/{dev_queue}"
