"""What a newcomer sees first (issue 22): no failed request on any page (the icon included),
long tokens that wrap only where they may, a deleted resource shown calmly with who deleted it,
and the region of every change in /changes."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

from inventory.cache.keys import IAM_ROLE
from inventory.demo.seed import Seeder, change_event_envelope
from inventory.registry import BY_STEM, parse_event
from inventory.tasks.events import refresh, refs_by_account
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from tests.browser.conftest import Watched, World

PAGES = ["/policies", "/requests", "/accounts", "/changes"]


def resource_path(arn: str, kind: str | None = None) -> str:
    path = "/resource/" + urllib.parse.quote(arn, safe="")
    return path + (f"?kind={kind}" if kind else "")


def failed_requests(watched: Watched) -> list[str]:
    """Every request of the page answered 4xx/5xx, from now on."""
    failed: list[str] = []
    watched.page.on(
        "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    return failed


def test_no_page_makes_a_failed_request_and_every_page_links_the_icon(admin_page, world, web):
    failed = failed_requests(admin_page)
    for path in [*PAGES, resource_path(world.dev.role_arn("dev-app"))]:
        admin_page.goto(path)
        admin_page.page.wait_for_load_state("networkidle")
        icon = admin_page.page.locator("link[rel=icon]")
        assert icon.get_attribute("type") == "image/svg+xml", path
        # The icon the page links is an image the browser can draw.
        width = admin_page.page.evaluate(
            """href => new Promise(done => { const i = new Image();
                 i.onload = () => done(i.naturalWidth); i.onerror = () => done(-1);
                 i.src = href; })""",
            icon.get_attribute("href"),
        )
        assert width > 0, path
    assert failed == []
    # Clients that ask /favicon.ico without reading the page get an icon too.
    with urllib.request.urlopen(f"http://127.0.0.1:{web.port}/favicon.ico", timeout=10) as r:
        assert r.status == 200
        assert r.read().startswith(b"\0\0\1\0")  # an ICO file


#: For each long token on the page: the rendered lines of each part between two wrap points
#: (<wbr>) and of each .token, which must be one line each.
SPLIT_PARTS = """() => {
  const split = [];
  const lines = (node) => { const r = document.createRange(); r.selectNodeContents(node);
    const rects = [...r.getClientRects()].filter(x => x.width > 0);
    return new Set(rects.map(x => Math.round(x.top))).size; };
  for (const box of document.querySelectorAll('.arn, .arn-cell, .token')) {
    const walk = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      if (node.textContent && lines(node) > 1) split.push(node.textContent);
    }
  }
  return split;
}"""


def test_arns_wrap_only_after_a_colon_or_slash_and_timestamps_and_ids_never(
    admin_page: Watched, world: World
):
    page = admin_page
    page.page.set_viewport_size({"width": 760, "height": 900})
    page.goto("/policies")
    page.page.locator("#rows tr[data-arn]").first.wait_for()
    arns = page.page.locator("#rows .arn")
    # Narrow enough that ARNs do wrap, at their wrap points only.
    heights = arns.evaluate_all("els => els.map(e => e.getClientRects().length && e.offsetHeight)")
    line = min(heights)
    assert max(heights) > line
    assert page.page.evaluate(SPLIT_PARTS) == []
    assert arns.first.inner_text().startswith("arn:aws:")  # <wbr> adds no text

    page.goto(resource_path(world.dev.role_arn("dev-app")))
    page.page.locator("#content").wait_for(state="visible")
    details = page.page.locator("#details")
    created = details.locator("div", has=page.page.locator("dt", has_text="created")).locator("dd")
    role_id = details.locator("div", has=page.page.locator("dt", has_text="id")).first
    assert created.locator(".token").count() == 1
    assert role_id.locator(".token").count() == 1
    assert page.page.evaluate(SPLIT_PARTS) == []
    # The ARN under the name wraps at its parts too.
    assert page.page.locator("#arn wbr").count() >= 5


def delete_role_by_event(world: World, moto_url: str, name: str, actor: str) -> str:
    """Create a role and sync it, delete it in moto, and apply the DeleteRole event."""
    dev, rt = world.dev, world.runtime
    iam = Seeder(moto_url).client("iam", dev.id)
    trust = {"Version": "2012-10-17", "Statement": []}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    sync_iam_account(rt, dev.id)
    iam.delete_role(RoleName=name)
    envelope = change_event_envelope(dev.id, "DeleteRole", {"roleName": name}, time.time(), actor)
    events = [(e, time.time()) for e in parse_event(json.dumps(envelope))]
    refresh(rt, dev.id, refs_by_account(events)[dev.id], lambda *a, **k: None)
    return dev.role_arn(name)


def test_a_deleted_role_says_when_and_by_whom_without_an_error(
    admin_page: Watched, world: World, moto_server, screenshot_dir: Path
):
    actor = f"arn:aws:iam::{world.dev.id}:user/dev-alice"
    arn = delete_role_by_event(world, moto_server.url, "first-look-gone", actor)
    change = world.runtime.history.for_resource(IAM_ROLE, arn)[0]  # the newest
    assert (change.change, change.actor) == ("deleted", actor)

    failed = failed_requests(admin_page)
    admin_page.goto(resource_path(arn, IAM_ROLE))
    page = admin_page.page
    page.wait_for_load_state("networkidle")
    deleted = page.locator("#deleted")
    assert deleted.is_visible()
    text = " ".join(deleted.inner_text().split())
    assert f"by {actor}" in text and "DeleteRole" in text
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(change.at)) in text
    # No red banner, no second "not in the cache", no panels about a live resource.
    assert page.locator("#flash").is_hidden()
    assert page.locator("#loading").is_hidden()
    for panel in ("#findings-panel", "#access-panel", "#can-panel", "#content"):
        assert page.locator(panel).is_hidden(), panel
    assert page.locator("#refresh").is_disabled()
    assert page.locator("#history-changes li.change .badge-change").first.inner_text() == "deleted"
    # The only failed requests are the API's reads of the record that is gone (expected).
    assert failed and all(re.fullmatch(r"404 http://[^/]+/api/v1/.*", f) for f in failed), failed
    page.screenshot(path=str(screenshot_dir / "deleted.png"), full_page=True)

    # A resource never cached (and no history): a plain sentence, still no banner.
    admin_page.goto(resource_path(f"arn:aws:iam::{world.dev.id}:role/never-there"))
    page.wait_for_load_state("networkidle")
    assert page.locator("#loading").inner_text() == "This resource is not in the cache."
    assert page.locator("#flash").is_hidden()
    assert page.locator("#deleted").count() == 0


def test_changes_shows_the_region_of_each_change(admin_page: Watched, world: World, moto_server):
    seed = world.dev
    queue = seed.queues[0]
    sqs = Seeder(moto_server.url).client("sqs", seed.id, queue.region)
    url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"first-look": str(time.time())})
    sync_kind(world.runtime, BY_STEM["sqs_queues"], seed.id)

    admin_page.goto("/changes")
    page = admin_page.page
    headers = page.locator("#changes thead th").all_inner_texts()
    assert [h.lower() for h in headers][3:6] == ["account", "region", "resource"]
    row = page.locator("#rows tr", has=page.locator(".arn", has_text=seed.queue_arn(queue))).first
    assert row.locator("td.region").inner_text() == queue.region
    regions = set(page.locator("#rows td.region").all_inner_texts())
    assert {"global", queue.region} <= regions


def test_a_row_found_by_a_tag_shows_the_tag_that_matched(admin_page: Watched, world: World):
    dev_app = world.dev.role_arn("dev-app")
    admin_page.goto("/policies?" + urllib.parse.urlencode({"q": "devs@exa"}))
    page = admin_page.page
    row = page.locator("#rows tr", has=page.locator(".arn", has_text=dev_app))
    row.wait_for()
    match = row.locator(".match")
    assert match.get_attribute("data-field") == "tag"
    assert match.locator(".match-key").inner_text() == "inventory-groups"
    assert match.locator(".match-value").inner_text() == "dev-devs@example.com"
    # The API says where each row matched: here the same tag, and a name match says "name".
    api = page.evaluate("""() => fetch('/api/v1/policies?q=devs%40exa').then(r => r.json())""")
    found = {r["arn"]: r["matched"] for r in api["rows"]}
    assert found[dev_app] == {
        "field": "tag",
        "key": "inventory-groups",
        "value": "dev-devs@example.com",
    }
    by_name = page.evaluate("() => fetch('/api/v1/policies?q=dev-app').then(r => r.json())")
    assert {r["matched"]["field"] for r in by_name["rows"]} == {"name"}
    # A row found by its name shows no note.
    admin_page.goto("/policies?q=dev-app")
    page.locator("#rows tr[data-arn]").first.wait_for()
    assert page.locator("#rows .match").count() == 0
