"""The page shells over plain HTTP (no browser needed): escaping, CSP, redirects, static files."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from tests.browser.conftest import ADMIN
from tests.web.conftest import Server

PAGES = ["/policies", "/requests", "/accounts", "/resource/arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx"]
HOSTILE_ARN = 'arn:aws:iam::111111111111:role/"><script>alert(1)</script>'


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_html_under_the_csp_with_no_inline_script_or_style(web: Server, path):
    r = web.get(path, headers=ADMIN)
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    html = r.body.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'\bsrc="/static/[\w.]+\.js\?v=\w+"', s) for s in scripts)
    assert " style=" not in html and "<style" not in html
    assert re.search(r" on[a-z]+=", html) is None
    assert 'href="/static/app.css?v=' in html
    assert "alice@example.com" in html


def test_the_resource_shell_escapes_the_arn_from_the_path(web: Server):
    r = web.get("/resource/" + urllib.parse.quote(HOSTILE_ARN, safe=""), headers=ADMIN)
    assert r.status == 200
    html = r.body.decode()
    assert "<script>alert(1)" not in html
    escaped = "arn:aws:iam::111111111111:role/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'data-arn="{escaped}"' in html


@pytest.mark.parametrize("path", ["/resource/not-an-arn", "/resource/arn" + "x" * 2050])
def test_a_resource_path_that_is_not_an_arn_is_an_html_404(web: Server, path):
    r = web.get(path, headers=ADMIN)
    assert r.status == 404
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert "<h1>404</h1>" in r.body.decode()


def test_root_redirects_to_the_policies_page(web: Server):
    r = web.get("/")
    assert (r.status, r.headers["Location"]) == (302, "/policies")


@pytest.mark.parametrize("path", ["/policies?q=a%20b", "/accounts", "/resource/arn%3Aaws%3Ax"])
def test_a_page_without_identity_redirects_to_login_and_back(web: Server, path):
    r = web.get(path)
    assert r.status == 302
    location = urllib.parse.urlsplit(r.headers["Location"])
    assert location.path == "/login"
    assert urllib.parse.parse_qs(location.query)["next"] == [path]


@pytest.mark.parametrize(
    "name", ["common.js", "policies.js", "resource.js", "requests.js", "accounts.js", "app.css"]
)
def test_static_files_are_served(web: Server, name):
    r = web.get(f"/static/{name}")
    assert r.status == 200
    kind = "text/css" if name.endswith(".css") else "javascript"
    assert kind in r.headers["Content-Type"]
    assert b"innerHTML =" not in r.body
