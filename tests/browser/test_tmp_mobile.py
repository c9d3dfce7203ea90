import urllib.parse
def test_mobile(browser, web, world):
    ctx = browser.new_context(extra_http_headers={"X-Forwarded-User": "alice@example.com", "X-Forwarded-Groups": "inventory-admins"}, viewport={"width": 390, "height": 844})
    p = ctx.new_page()
    base = f"http://127.0.0.1:{web.port}"
    p.goto(base + "/policies?limit=8"); p.locator("#rows tr").first.wait_for(); p.wait_for_load_state("networkidle")
    p.screenshot(path="/tmp/m-policies.png", full_page=True)
    p.goto(base + "/resource/" + urllib.parse.quote(world.dev.role_arn("dev-app"), safe="")); p.locator("#content").wait_for(); p.wait_for_load_state("networkidle")
    p.screenshot(path="/tmp/m-resource.png", full_page=False)
    p.goto(base + "/requests"); p.wait_for_load_state("networkidle")
    p.locator("#req-arn").press_sequentially("dev"); p.locator("#req-arn-options li").first.wait_for()
    p.screenshot(path="/tmp/m-requests.png", full_page=False)
    ctx.close()
