"""The dashboard in a real browser: Playwright drives Debian's chromium (never a downloaded
browser). An Admin signs in, triggers a run, watches it succeed, opens its log, visits every
page and signs out; a Viewer sees no Trigger button and is refused (403) when posting anyway.
Every page is captured at desktop and phone width.

usage: browser_serve.py BASE_URL ADMIN VIEWER PASSWORD SCREENSHOT_DIR
"""

import os
import re
import sys
import time

from playwright.sync_api import expect, sync_playwright

base, admin, viewer, password, shots = sys.argv[1:6]
os.makedirs(shots, exist_ok=True)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def shot(page, name):
    page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=os.path.join(shots, f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def sign_in(page, user):
    page.goto(f"{base}/sign-in")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/pipelines")


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{base}/sign-in")
    shot(page, "sign-in")
    sign_in(page, admin)
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["hushflow"]["httpOnly"], cookies
    assert cookies["hushflow"]["sameSite"] == "Strict", cookies
    shot(page, "pipelines-before")

    # Trigger: the button posts the form, the server answers with the new run's page.
    page.click("form[action='/pipelines/nightly/trigger'] button")
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    run_url = page.url
    deadline = time.time() + 120
    while "tag success\">success</span></h1>" not in page.content().replace("\n", ""):
        state = page.locator("h1 .tag").inner_text()
        assert state not in ("failed",), f"the run failed: {page.content()}"
        assert time.time() < deadline, f"the run did not succeed in time: {state}"
        time.sleep(1)
        page.goto(run_url)
    shot(page, "run")

    page.click("a:text('Log')")
    expect(page).to_have_url(re.compile(r"/runs/\d+/tasks/extract/log$"))
    expect(page.locator("h2").first).to_contain_text("Try 1")
    shot(page, "log")

    for name in ["pipelines", "quarantine", "audit", "keys", "users"]:
        page.goto(f"{base}/{name}")
        assert page.locator("main").count() == 1
        shot(page, name)
    expect(page.locator("main")).to_contain_text("viewer")

    # Every page so far loaded without a failed resource or a script error.
    assert not errors, errors

    page.click("form[action='/sign-out'] button")
    expect(page).to_have_url(f"{base}/sign-in")
    page.goto(f"{base}/pipelines")
    expect(page.locator("h1")).to_have_text("Sign in")

    # A Viewer: no Trigger button, and a trigger posted anyway is refused.
    viewer_context = browser.new_context(viewport=DESKTOP)
    vpage = viewer_context.new_page()
    sign_in(vpage, viewer)
    assert vpage.locator("form[action$='/trigger']").count() == 0
    assert vpage.locator("button:text('Trigger')").count() == 0
    shot(vpage, "pipelines-viewer")
    csrf = vpage.locator("form[action='/sign-out'] input[name=csrf]").get_attribute("value")
    answer = vpage.request.post(
        f"{base}/pipelines/nightly/trigger",
        form={"csrf": csrf},
        max_redirects=0,
    )
    assert answer.status == 403, answer.status
    vpage.goto(f"{base}/audit")
    assert "Not allowed" in vpage.content()
    shot(vpage, "forbidden")

    browser.close()
print("ok")
