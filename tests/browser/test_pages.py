"""The pages in a real browser: what engineers see and click, over caches the real sync wrote."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from inventory.demo.seed import MANAGEMENT_ACCOUNT, demo_account
from tests.browser.conftest import ADMIN, DEVELOPER, TOKEN, TOKEN_USER, XSS, Watched, World

ROWS = "#rows tr[data-arn]"
PAGE_SIZE = 50  # the default


def table_rows(world: World) -> dict[str, dict]:
    return world.runtime.policies_table.rows()


def shown_arns(page: Watched) -> list[str]:
    return page.page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.arn)")


def shown_column(page: Watched, index: int) -> list[str]:
    return page.page.locator(f"{ROWS} td:nth-child({index})").all_inner_texts()


def wait_total(page: Watched, total: int) -> None:
    expected = f"{total} resource" + ("" if total == 1 else "s")
    page.page.wait_for_function(
        "t => document.getElementById('total').textContent === t", arg=expected
    )


def resource_path(arn: str) -> str:
    return "/resource/" + urllib.parse.quote(arn, safe="")


# --- /policies -------------------------------------------------------------------------------
def test_root_redirects_to_policies(admin_page: Watched):
    admin_page.goto("/")
    assert urllib.parse.urlparse(admin_page.page.url).path == "/policies"


def test_policies_page_lists_the_first_page_sorted_by_name_with_the_total(admin_page, world):
    rows = table_rows(world)
    response = admin_page.goto("/policies")
    # The CSP is on: an inline script or style anywhere would be a console error (see conftest).
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_total(admin_page, len(rows))

    expected = sorted(rows.values(), key=lambda r: (r["name"].lower(), r["arn"]))[:PAGE_SIZE]
    assert shown_arns(admin_page) == [r["arn"] for r in expected]
    assert admin_page.page.locator("#identity").inner_text().startswith("alice@example.com")
    links = admin_page.page.locator(f"{ROWS} a.name-link")
    assert links.first.get_attribute("href") == resource_path(expected[0]["arn"])


def test_typing_a_filter_shows_only_matching_rows_and_changes_the_total(admin_page, world):
    rows = table_rows(world)
    workers = {arn for arn, r in rows.items() if "worker" in arn.lower()}
    assert len(workers) == 6  # dev has one worker role, staging two, prod three

    admin_page.goto("/policies")
    wait_total(admin_page, len(rows))
    admin_page.page.locator("#q").fill("worker")
    wait_total(admin_page, len(workers))

    assert set(shown_arns(admin_page)) == workers
    assert "q=worker" in admin_page.page.url
    # The URL keeps the filter: a reload shows the same rows.
    admin_page.page.reload()
    wait_total(admin_page, len(workers))
    assert admin_page.page.locator("#q").input_value() == "worker"


def test_filter_menus_come_from_the_facets_and_narrow_the_rows(admin_page, world):
    rows = table_rows(world)
    dev = world.dev
    admin_page.goto("/policies")
    wait_total(admin_page, len(rows))
    kinds = admin_page.page.locator("#kind option").evaluate_all("o => o.map(x => x.value)")
    assert set(kinds) == {"", *(r["kind"] for r in rows.values())}
    accounts = admin_page.page.locator("#account option").all_inner_texts()
    assert f"dev ({dev.id})" in accounts

    admin_page.page.select_option("#account", dev.id)
    admin_page.page.select_option("#kind", "sqs_queue")
    expected = {
        arn for arn, r in rows.items() if r["account_id"] == dev.id and r["kind"] == "sqs_queue"
    }
    wait_total(admin_page, len(expected))
    assert set(shown_arns(admin_page)) == expected
    assert set(shown_column(admin_page, 2)) == {"SQS queue"}

    admin_page.page.select_option("#has_errors", "true")
    wait_total(admin_page, 0)
    assert admin_page.page.locator("#rows tr.empty").inner_text() == "No resources match."


def test_clicking_a_column_header_sorts_by_it_and_a_second_click_reverses(admin_page, world):
    rows = table_rows(world)
    admin_page.goto("/policies")
    wait_total(admin_page, len(rows))
    name_header = admin_page.page.locator("th[data-sort=name]")
    assert name_header.get_attribute("aria-sort") == "ascending"

    name_header.locator("button").click()
    admin_page.page.wait_for_function(
        "() => document.querySelector('th[data-sort=name]').getAttribute('aria-sort')"
        " === 'descending'"
    )
    expected = sorted(rows.values(), key=lambda r: (r["name"].lower(), r["arn"]), reverse=True)
    admin_page.page.wait_for_function(
        "a => document.querySelector('#rows tr[data-arn]').dataset.arn === a",
        arg=expected[0]["arn"],
    )
    names = [r.split("\n")[0] for r in shown_column(admin_page, 1)]
    assert names == sorted(names, key=str.lower, reverse=True)
    assert "order=desc" in admin_page.page.url

    admin_page.page.locator("th[data-sort=region] button").click()
    admin_page.page.wait_for_function(
        "() => document.querySelector('th[data-sort=region]').getAttribute('aria-sort')"
        " === 'ascending'"
    )
    admin_page.page.wait_for_function("() => !location.search.includes('order=desc')")
    # The header and the URL change at once; the rows follow when the page's fetch answers.
    admin_page.page.wait_for_function(
        "sel => { const r = [...document.querySelectorAll(sel)].map(td => td.innerText);"
        " return r.length > 0 && r.every((v, i) => i === 0 || r[i - 1] <= v); }",
        arg=f"{ROWS} td:nth-child(4)",
    )
    regions = shown_column(admin_page, 4)
    assert regions == sorted(regions)
    assert admin_page.page.locator("th[data-sort=name]").get_attribute("aria-sort") is None


def test_the_pager_walks_through_every_row_once(admin_page, world):
    rows = table_rows(world)
    size = 10
    pages = -(-len(rows) // size)
    assert pages >= 3
    admin_page.goto(f"/policies?limit={size}")
    wait_total(admin_page, len(rows))
    page = admin_page.page
    assert page.locator("#limit").input_value() == str(size)
    assert page.locator("#prev").is_disabled()
    seen = shown_arns(admin_page)
    while page.locator("#next").is_enabled():
        last = seen[-1]
        page.locator("#next").click()
        page.wait_for_function(
            "a => document.querySelector('#rows tr[data-arn]:last-child').dataset.arn !== a",
            arg=last,
        )
        seen += shown_arns(admin_page)
    assert seen == [
        r["arn"] for r in sorted(rows.values(), key=lambda r: (r["name"].lower(), r["arn"]))
    ]
    assert page.locator("#page").inner_text() == f"Page {pages} of {pages}"
    assert page.locator("#range").inner_text() == f"showing {size * (pages - 1) + 1}–{len(rows)}"

    page.locator("#prev").click()
    page.locator("#page", has_text=f"Page {pages - 1} of {pages}").wait_for()
    page.select_option("#limit", "25")
    page.locator("#page", has_text=f"Page 1 of {-(-len(rows) // 25)}").wait_for()
    assert len(shown_arns(admin_page)) == 25


# --- /resource/<arn> -------------------------------------------------------------------------
def wait_loaded(page: Watched, q: str) -> None:
    """Until the table holds the answer to the search ``q`` (typing waits 250 ms to search)."""
    page.page.wait_for_function(
        "q => new URLSearchParams(location.search).get('q') === q"
        " && document.getElementById('policies').getAttribute('aria-busy') === 'false'",
        arg=q,
    )


def open_resource_from_the_table(page: Watched, name: str) -> None:
    page.goto("/policies")
    page.page.locator("#q").fill(name)
    # Not the unfiltered rows: the search's answer replacing them can take the click.
    wait_loaded(page, name)
    page.page.locator(f"{ROWS} a.name-link", has_text=re.compile(f"^{name}$")).click()
    page.page.locator("#content").wait_for(state="visible")


def test_clicking_a_role_opens_its_page_with_policies_tags_and_principals(admin_page, world):
    dev = world.dev
    seed = demo_account("dev", 0)
    role = next(r for r in seed.roles if r.name == "dev-app")
    arn = dev.role_arn("dev-app")

    open_resource_from_the_table(admin_page, "dev-app")

    page = admin_page.page
    assert urllib.parse.unquote(urllib.parse.urlparse(page.url).path) == f"/resource/{arn}"
    assert page.locator("#name").inner_text() == "dev-app"
    assert page.locator("#arn").inner_text() == arn
    assert page.locator("#kind").inner_text() == "IAM role"
    assert page.locator("#account").inner_text() == f"dev {dev.id}"
    assert page.locator("#region").inner_text() == "global"
    assert page.locator("#refreshed").inner_text() in {"just now"} | {
        f"{n} seconds ago" for n in range(10, 300)
    } | {f"{n} minute{'s' if n > 1 else ''} ago" for n in range(1, 5)}

    blocks = page.locator("details.policy")
    titles = blocks.locator(".policy-title").all_inner_texts()
    assert titles == [
        "Trust policy",
        "Inline policy: read-bucket",
        "Attached policy: dev-queue-access",
    ]
    documents = [json.loads(t) for t in blocks.locator("pre.json").all_inner_texts()]
    assert documents == [
        role.trust_policy,
        role.inline["read-bucket"],
        seed.policies["dev-queue-access"],
    ]
    assert page.locator(".policy-boundary a").inner_text() == dev.policy_arn("dev-boundary")

    tags = page.locator("#tags-table tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert tags == sorted([[k, v] for k, v in {**role.tags, "note": XSS}.items()])
    assert page.locator("#principals li").all_inner_texts() == ["dev-devs@example.com"]


def test_cloudtrail_errors_of_a_role_are_tabulated(admin_page, world):
    admin_page.goto(resource_path(world.dev.role_arn("dev-app")))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    assert page.locator("#errors .badge-error").inner_text() == "3 errors"
    tables = page.locator("#errors-tables table")
    cells = tables.evaluate_all(
        "ts => ts.map(t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent)))"
    )
    assert cells == [
        [["AccessDenied", "2"], ["UnauthorizedOperation", "1"]],
        [["s3:PutObject", "2"], ["ec2:RunInstances", "1"]],
        [["*", "1"], ["arn:aws:s3:::dev-data/x", "1"], ["arn:aws:s3:::dev-data/y", "1"]],
    ]


def test_a_bucket_shows_its_resource_policy_and_no_role_sections(admin_page, world):
    dev = world.dev
    seed = demo_account("dev", 0)
    bucket = seed.buckets[0]
    admin_page.goto(resource_path(f"arn:aws:s3:::{bucket.name}"))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    assert page.locator("#kind").inner_text() == "S3 bucket"
    assert page.locator(".policy-title").all_inner_texts() == ["Resource policy"]
    assert json.loads(page.locator("pre.json").first.inner_text()) == bucket.policy
    assert page.locator("#principals-panel").is_hidden()
    assert page.locator("#errors").inner_text() == (
        "No CloudTrail errors recorded for this principal."
    )
    assert page.locator("#account").inner_text() == f"dev {dev.id}"


def _policy_kind(world: World, kind: str) -> dict:
    """Dev's one resource of a kind, as the sweep cached it."""
    from inventory.cache.keys import Partition

    (record,) = world.runtime.redis_cache.items(Partition(kind, world.dev.id, "us-east-1")).values()
    return dict(record)


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("kms_key", "KMS key"),
        ("lambda_function", "Lambda function"),
        ("secretsmanager_secret", "Secrets Manager secret"),
        ("ecr_repository", "ECR repository"),
    ],
)
def test_kms_lambda_secret_and_ecr_show_their_policy_as_a_bucket_does(
    admin_page, world, kind, label
):
    record = _policy_kind(world, kind)
    arn = record["arn"]
    assert record["policy"]["Statement"]
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    assert page.locator("#kind").inner_text() == label
    assert page.locator(".policy-title").all_inner_texts() == ["Resource policy"]
    assert (
        json.loads(page.locator("details.policy pre.json").first.inner_text()) == (record["policy"])
    )
    assert page.locator("#tags-table").is_visible()
    assert page.locator("#account").inner_text() == f"dev {world.dev.id}"
    # The policies table lists it under its label.
    admin_page.goto(f"/policies?kind={kind}")
    wait_total(admin_page, 1)  # dev's (the only account the world syncs these kinds in)
    assert arn in shown_arns(admin_page)


def test_a_secrets_value_is_on_no_page_and_in_no_api_answer(admin_page, world):
    secret = world.dev.secrets[0]
    arn = _policy_kind(world, "secretsmanager_secret")["arn"]
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    assert page.locator("#name").inner_text() == secret.name
    assert secret.value not in page.content()
    for path in (
        "/api/v1/resource?arn=" + urllib.parse.quote(arn, safe=""),
        "/api/v1/policies?kind=secretsmanager_secret",
        "/api/v1/resource/history?arn=" + urllib.parse.quote(arn, safe=""),
    ):
        answer = page.evaluate(
            "p => fetch(p, {credentials: 'same-origin'}).then(r => r.text())", path
        )
        assert secret.name in answer or "changes" in answer, (path, answer[:200])
        assert secret.value not in answer


def test_a_tag_value_with_a_script_tag_is_shown_as_text_and_never_runs(admin_page, world):
    arn = world.dev.role_arn("dev-app")
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    note = page.locator("#tags-table tr", has_text="note").locator("td").nth(1)
    assert note.inner_text() == XSS
    assert page.locator("main script").count() == 0
    # Search for it too: the policies table shows the row, and still nothing runs.
    admin_page.goto("/policies?q=" + urllib.parse.quote("<script>"))
    page.locator(ROWS).first.wait_for()
    assert shown_arns(admin_page) == [arn]
    page.wait_for_timeout(300)
    assert admin_page.dialogs == []


def test_a_hostile_arn_in_the_path_is_escaped_and_reported_not_cached(admin_page):
    arn = 'arn:aws:iam::111111111111:role/"><img src=x onerror=alert(2)><script>alert(3)</script>'
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#loading", has_text="not in the cache").wait_for()
    assert page.locator("#resource").get_attribute("data-arn") == arn
    assert page.locator("#arn").inner_text() == arn
    assert page.locator("main img, main script").count() == 0
    # Not cached is what the page says, not an error banner (issue 22).
    assert page.locator("#flash").is_hidden()
    assert page.locator("#refresh").is_disabled()


def test_a_hostile_user_name_from_the_proxy_is_shown_as_text(page_as):
    name = '"><img src=x onerror=alert(4)>@example.com'
    page = page_as({"X-Forwarded-User": name})
    page.goto("/requests")
    assert page.page.locator("#identity").inner_text() == name
    assert page.page.locator("#requests-page").get_attribute("data-identity") == name
    assert page.page.locator("img").count() == 0


def test_a_path_that_is_not_an_arn_is_an_html_404(admin_page):
    response = admin_page.goto("/resource/not-an-arn")
    assert response.status == 404
    assert admin_page.page.locator("main h1").inner_text() == "404"


def test_refresh_now_requests_a_refresh_then_shows_when_it_landed(admin_page, world):
    arn = world.dev.role_arn("dev-worker-0")
    admin_page.goto(resource_path(arn))
    page = admin_page.page
    page.locator("#content").wait_for(state="visible")
    before = len(world.sent)

    page.locator("#refresh").click()

    page.locator("#refresh-status", has_text="Refresh requested…").wait_for()
    assert page.locator("#refresh").is_disabled()
    assert len(world.sent) == before + 1
    page.locator("#refresh-status", has_text=re.compile(r"^Refreshed at \S")).wait_for(
        timeout=20_000
    )
    assert page.locator("#refresh").is_enabled()
    assert page.locator("#refreshed").inner_text() == "just now"


# --- /requests -------------------------------------------------------------------------------
def create_request(page: Watched, arn: str, justification: str, action: str) -> dict:
    """A request made through the API by the signed-in browser (as the page's script would)."""
    if not page.page.url.startswith(page.base):
        page.goto("/requests")
    body = {
        "arn": arn,
        "justification": justification,
        "policy_document": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
        },
    }
    status, created = page.page.evaluate(
        """body => fetch("/api/v1/requests", {method: "POST", credentials: "same-origin",
             headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
           .then(async r => [r.status, await r.json()])""",
        body,
    )
    assert status == 201, created
    return created


def fill_request(page: Watched, arn_search: str, arn: str, justification: str, policy: str) -> None:
    p = page.page
    p.locator("#req-arn").fill("")
    p.locator("#req-arn").press_sequentially(arn_search)
    option = p.locator(f"#req-arn-options li[data-arn='{arn}']")
    option.wait_for()
    option.click()
    assert p.locator("#req-arn").input_value() == arn
    p.locator("#req-justification").fill(justification)
    p.locator("#req-policy").fill(policy)


def test_invalid_policy_json_is_refused_in_the_browser_without_a_request(admin_page, world):
    arn = world.dev.role_arn("dev-app")
    admin_page.goto("/requests")
    posts: list[str] = []
    admin_page.page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    fill_request(admin_page, "dev-ap", arn, "Needs to write reports", '{"Version": "2012-10-17",')

    admin_page.page.locator("#req-submit").click()

    error = admin_page.page.locator("#form-error")
    error.wait_for()
    assert error.inner_text().startswith("The policy document is not valid JSON: ")
    assert posts == []


def test_a_valid_request_is_created_and_appears_in_the_list(admin_page, world):
    arn = world.dev.role_arn("dev-worker-0")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}],
    }
    admin_page.goto("/requests")
    fill_request(admin_page, "worker-0", arn, "Upload build artefacts", json.dumps(document))

    admin_page.page.locator("#req-submit").click()

    admin_page.page.locator("#form-ok", has_text="Request submitted").wait_for()
    item = admin_page.page.locator("#requests li.request", has_text="Upload build artefacts")
    item.wait_for()
    assert item.locator(".badge-status").inner_text() == "pending"
    assert item.locator(".request-arn").inner_text() == arn
    assert item.locator(".request-meta strong").inner_text() == "alice@example.com"
    item.locator("details summary").click()
    assert json.loads(item.locator("pre.json").inner_text()) == document


def test_the_servers_refusal_is_shown_in_the_form(admin_page, world):
    admin_page.goto("/requests")
    fill_request(
        admin_page,
        "dev-ap",
        world.dev.role_arn("dev-app"),
        "Nothing to add",
        '{"Version": "2012-10-17", "Statement": []}',
    )
    admin_page.page.locator("#req-submit").click()
    error = admin_page.page.locator("#form-error")
    error.wait_for()
    assert error.inner_text() == "field 'policy_document' must have a Statement"
    assert admin_page.page.locator("#requests li", has_text="Nothing to add").count() == 0


def test_an_admin_approves_a_pending_request(page_as, world):
    admin, developer = page_as(ADMIN), page_as(DEVELOPER)
    developer.goto("/requests")
    document = '{"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}'
    fill_request(developer, "dev-ap", world.dev.role_arn("dev-app"), "Approve me please", document)
    developer.page.locator("#req-submit").click()
    developer.page.locator("#requests li.request", has_text="Approve me please").wait_for()

    admin.goto("/requests")
    item = admin.page.locator("#requests li.request", has_text="Approve me please")
    item.locator("button", has_text="Approve").wait_for()
    item.locator(".review-comment").fill("looks fine")
    item.locator("button", has_text="Approve").click()

    item.locator(".badge-status", has_text="approved").wait_for()
    assert item.locator(".review-note").inner_text() == "approved by alice@example.com: looks fine"
    assert item.locator("button").count() == 0
    admin.page.select_option("#status", "approved")
    admin.page.wait_for_function(
        "() => [...document.querySelectorAll('#requests li')].every("
        "li => li.dataset.status === 'approved')"
    )
    assert item.is_visible()


def test_an_admin_is_not_offered_to_approve_their_own_request(admin_page, world):
    own = create_request(admin_page, world.dev.role_arn("dev-app"), "My own change", "sns:*")
    admin_page.goto("/requests")
    item = admin_page.page.locator(f"#requests li[data-id='{own['id']}']")
    item.wait_for()
    assert item.locator("button").all_inner_texts() == ["Reject", "Cancel request"]


def test_a_developer_may_cancel_their_own_request_but_not_review_others(page_as, world):
    admin, developer = page_as(ADMIN), page_as(DEVELOPER)
    theirs = create_request(admin, world.dev.role_arn("dev-app"), "Admin's own change", "s3:*")
    mine = create_request(developer, world.dev.role_arn("dev-worker-0"), "Bob's change", "sqs:*")
    assert mine["requester"] == "bob@example.com"

    developer.goto("/requests")
    page = developer.page
    assert page.locator("#requests-page").get_attribute("data-admin") == "false"
    assert page.locator("#identity").inner_text() == "bob@example.com"
    other = page.locator(f"#requests li[data-id='{theirs['id']}']")
    own = page.locator(f"#requests li[data-id='{mine['id']}']")
    own.wait_for()
    assert other.locator("button").count() == 0
    assert own.locator("button").all_inner_texts() == ["Cancel request"]

    own.locator("button", has_text="Cancel request").click()

    own.locator(".badge-status", has_text="cancelled").wait_for()
    assert own.locator(".review-note").inner_text() == "cancelled by bob@example.com"


# --- /accounts -------------------------------------------------------------------------------
def test_accounts_page_shows_every_account_and_highlights_stale_kinds(admin_page, world):
    admin_page.goto("/accounts")
    page = admin_page.page
    page.locator("#rows tr").first.wait_for()
    ids = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.account)")
    assert sorted(ids) == sorted(world.account_ids())
    names = page.locator("#rows .account-name").all_inner_texts()
    assert {"dev", "staging", "prod"} <= set(names)
    dev_row = page.locator(f"#rows tr[data-account='{world.dev.id}']")
    iam = dev_row.locator("td.age[data-kind=iam_role]")
    assert re.fullmatch(r"\d+ (second|minute)s?", iam.inner_text())
    assert "stale" not in (iam.get_attribute("class") or "").split()

    api = page.evaluate(
        "fetch('/api/v1/accounts/freshness', {credentials: 'same-origin'}).then(r => r.json())"
    )
    stale_in_api = {
        (a["id"], kind) for a in api["accounts"] for kind, k in a["kinds"].items() if k["stale"]
    }
    highlighted = page.locator("#rows td.age.stale").evaluate_all(
        "cells => cells.map(c => [c.closest('tr').dataset.account, c.dataset.kind])"
    )
    # The management account's S3, SQS and SNS were never synced: stale, and shown so.
    assert {(MANAGEMENT_ACCOUNT, "s3_bucket"), (MANAGEMENT_ACCOUNT, "sqs_queue")} <= stale_in_api
    assert {tuple(c) for c in highlighted} == stale_in_api
    summary = page.locator("#total").inner_text()
    assert summary == f"{len(ids)} accounts, {len({a for a, _ in stale_in_api})} with stale data"


# --- sign-in ---------------------------------------------------------------------------------
def test_a_browser_without_identity_signs_in_with_a_token_and_comes_back(anonymous_page, world):
    page = anonymous_page.page
    anonymous_page.goto("/policies?q=worker")
    url = urllib.parse.urlparse(page.url)
    assert url.path == "/login"
    assert urllib.parse.parse_qs(url.query)["next"] == ["/policies?q=worker"]

    page.locator("#token").fill(TOKEN)
    page.locator("button[type=submit]").click()

    page.wait_for_url(re.compile(r"/policies\?q=worker$"))
    wait_total(anonymous_page, 6)
    assert page.locator("#identity").inner_text() == TOKEN_USER
    page.locator("button", has_text="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    anonymous_page.goto("/accounts")
    assert urllib.parse.urlparse(page.url).path == "/login"


# --- screenshots -----------------------------------------------------------------------------
SAMPLE_REQUESTS = [
    ("dev-app", "Reports job writes its output to the data bucket", "s3:PutObject"),
    ("dev-worker-0", "Worker reads the jobs queue", "sqs:ReceiveMessage"),
]


@pytest.mark.parametrize(
    "name, path, ready",
    [
        ("policies", "/policies?limit=20", ROWS),
        ("resource", "resource:dev-app", "#content"),
        ("requests", "/requests", "#requests li.request"),
        ("accounts", "/accounts", "#rows tr"),
    ],
)
def test_screenshot(admin_page, world, screenshot_dir: Path, name, path, ready):
    if path.startswith("resource:"):
        path = resource_path(world.dev.role_arn(path.split(":", 1)[1]))
    admin_page.goto(path)
    if name == "requests":
        for role, justification, action in SAMPLE_REQUESTS:
            create_request(admin_page, world.dev.role_arn(role), justification, action)
        admin_page.page.reload()
    admin_page.page.locator(ready).first.wait_for(state="visible")
    admin_page.page.wait_for_load_state("networkidle")
    target = screenshot_dir / f"{name}.png"
    admin_page.page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
