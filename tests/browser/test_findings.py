"""Findings, "who can do this?" and "what it can do" on the resource page, in a real browser.

Over the demo organisation as the real sync and analysis cached it; every value is compared
with what the API answers and must appear as text (the fixtures fail a test on any dialog,
script error or console error, which is how a CSP violation shows).
"""

from __future__ import annotations

import json
import urllib.parse

from tests.browser.conftest import TOKEN, XSS, Watched, World
from tests.browser.test_pages import resource_path, shown_arns, wait_total


def api(page: Watched, path: str) -> dict:
    response = page.page.request.get(page.base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    return json.loads(response.body())


def test_a_roles_findings_are_listed_with_hostile_text_shown_as_text(admin_page, world: World):
    arn = world.dev.role_arn("dev-worker-0")
    expected = api(admin_page, "/api/v1/findings?" + urllib.parse.urlencode({"arn": arn}))
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#findings-table").wait_for()
    ids = page.locator("#findings-table tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.finding)"
    )
    assert ids == [f["id"] for f in expected["findings"]]
    severities = page.locator("#findings-table .badge-severity").all_inner_texts()
    assert severities == [f["severity"] for f in expected["findings"]]
    hostile = page.locator("#findings-table tr", has_text="Unknown action")
    assert hostile.locator(".finding-detail").inner_text() == f"Unknown action s3:Get{XSS}"
    assert page.locator("main script").count() == 0
    assert admin_page.dialogs == []


def test_a_bucket_page_answers_who_can_get_its_objects(admin_page, world: World):
    bucket = f"arn:aws:s3:::{world.dev.buckets[0].name}"
    expected = api(
        admin_page,
        "/api/v1/access?"
        + urllib.parse.urlencode({"action": "s3:GetObject", "resource": bucket + "/*"}),
    )
    admin_page.goto(resource_path(bucket))
    page = admin_page.page
    page.locator("#access-summary").wait_for()
    assert page.locator("#access-action").input_value() == "s3:GetObject"
    assert page.locator("#access-resource").input_value() == bucket + "/*"
    assert page.locator("#access-summary").inner_text() == (
        f"{expected['allowed']} allowed, {expected['conditional']} conditional, of "
        f"{expected['principals_indexed']} principals in the organisation"
    )
    shown = page.locator("#access-table tbody tr").evaluate_all(
        "rs => rs.map(r => [r.dataset.arn, r.cells[2].textContent])"
    )
    assert shown == [[p["arn"], p["decision"]] for p in expected["principals"]]
    # dev-app reads dev-data/* only, the boundary allows everything: it is not listed here.
    assert world.dev.role_arn("dev-app") not in {p["arn"] for p in expected["principals"]}


def test_asking_another_action_shows_its_answer(admin_page, world: World):
    bucket = f"arn:aws:s3:::{world.dev.buckets[0].name}"
    admin_page.goto(resource_path(bucket))
    page = admin_page.page
    page.locator("#access-summary").wait_for()
    page.locator("#access-action").fill("s3:PutBucketPolicy")
    page.locator("#access-resource").fill(bucket)
    page.locator("#access-form button[type=submit]").click()
    expected = api(
        admin_page,
        "/api/v1/access?"
        + urllib.parse.urlencode({"action": "s3:PutBucketPolicy", "resource": bucket}),
    )
    page.wait_for_function(
        "t => document.getElementById('access-summary').textContent.startsWith(t)",
        arg=f"{expected['allowed']} allowed, {expected['conditional']} conditional",
    )
    page.locator("#access-action").fill("s3:NoSuchAction")
    page.locator("#access-form button[type=submit]").click()
    page.locator("#access-answer", has_text="parameter 'action' must be").wait_for()


def test_a_role_page_shows_what_it_can_do_on_a_service(admin_page, world: World):
    arn = world.dev.role_arn("dev-app")
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#can-table").wait_for()
    rows = page.locator("#can-table tbody tr").evaluate_all(
        "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows == [["s3:GetObject", "Read", "arn:aws:s3:::dev-data/*", ""]]
    page.locator("#can-service").fill("sqs")
    page.locator("#can-form button").click()
    page.locator("#can-table tr[data-action='sqs:SendMessage']").wait_for()
    actions = page.locator("#can-table tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.action)"
    )
    assert actions == ["sqs:ReceiveMessage", "sqs:SendMessage"]


def test_the_policies_table_filters_by_the_worst_finding(admin_page, world: World):
    rows = world.runtime.policies_table.rows()
    critical = {arn for arn, r in rows.items() if r["severity"] == "critical"}
    assert critical == {s.policy_arn(f"{s.name}-boundary") for s in world.seeds}
    admin_page.goto("/policies?severity=critical")
    wait_total(admin_page, len(critical))
    assert set(shown_arns(admin_page)) == critical
    assert admin_page.page.locator("#severity").input_value() == "critical"
    counts = admin_page.page.locator("#rows .cell-findings").all_inner_texts()
    assert counts == [str(rows[a]["findings"]) for a in shown_arns(admin_page)]
