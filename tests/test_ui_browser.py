"""The web interface in a real browser (Chromium via Playwright): search, README, yank with pip, CSRF, hostile
READMEs, accessibility (axe-core), and screenshots of the main pages (tests/screenshots/)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.artifacts import build_wheel
from tests.browser import DESKTOP, PHONE, Browser, accessibility_violations, open_browser, screenshot
from tests.clients import run_pip
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import twine_upload
from tests.ui_helpers import HOSTILE_README, USERS, Ui, acme_wheel, basic, start_ui

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Browser]:
    """A fresh Chromium profile; parametrize indirectly with True to bypass the page's CSP."""
    async for opened in open_browser(tmp_path / "chromium-profile", bypass_csp=getattr(request, "param", False)):
        yield opened


@pytest.fixture
async def ui(make_proxy: ProxyFactory, upstream: Upstream) -> Ui:
    ui = await start_ui(make_proxy, upstream)
    await ui.upload(acme_wheel("1.0"), acme_wheel("2.0"))
    return ui


def url(ui: Ui, path: str = "/") -> str:
    return str(ui.client.make_url(path))


async def sign_in(browser: Browser, ui: Ui, user: str) -> None:
    page = await browser.page()
    await page.goto(url(ui, "/account/login"))
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(USERS[user])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(url(ui, "/"))
    await page.close()


async def yanked(ui: Ui) -> dict[str, object]:
    page = json.loads(await (await ui.client.get("/simple/acme-utils/", headers=JSON)).text())
    return {f["filename"]: f["yanked"] for f in page["files"]}


async def test_search_finds_a_private_package(ui: Ui, browser: Browser):
    """From the home page, searching finds the private package and leads to its page; the copy buttons (a
    same-origin script under the CSP) are there, and no page reports a CSP violation."""
    page = await browser.page()
    await page.goto(url(ui))
    await page.get_by_label("Search projects").fill("acme")
    await page.get_by_role("button", name="Search").click()
    link = page.get_by_role("link", name="acme-utils", exact=True)
    await link.click()
    await page.wait_for_url(url(ui, "/project/acme-utils/"))
    assert await page.locator(".project-head h1").inner_text() == "acme-utils 2.0"
    assert await page.locator("button.copy").count() == 3  # pip, uv, poetry
    assert [m for m in browser.console if "Content Security Policy" in m] == []


async def test_project_page_shows_the_rendered_readme_and_the_yanked_marker(ui: Ui, browser: Browser):
    """The README is rendered markup (a heading, bold text, a code block), and a yanked release is marked with
    its reason."""
    await ui.client.post("/api/projects/acme-utils/2.0/yank", json={"reason": "broken on 3.12"},
                         headers=basic("alice"))
    page = await browser.page()
    await page.goto(url(ui, "/project/acme-utils/"))
    readme = page.locator("article.markdown")
    assert await readme.locator("h1").inner_text() == "Acme utilities"
    assert await readme.locator("strong").inner_text() == "acme"
    assert "import acme_utils" in await readme.locator("pre").inner_text()
    release = page.locator("section.release", has=page.get_by_role("heading", name="2.0"))
    assert await release.locator(".badge.yanked").first.inner_text() == "yanked"
    assert "Yanked: broken on 3.12" in await release.locator(".yank-reason").inner_text()
    assert await page.locator(".project-head h1").inner_text() == "acme-utils 1.0"


@pytest.mark.e2e
async def test_a_maintainer_yanks_through_the_form_and_pip_then_skips_it(ui: Ui, browser: Browser, tmp_path: Path):
    """Signed in, a maintainer yanks 2.0 with a reason through the form; real pip then picks 1.0."""
    await sign_in(browser, ui, "bob")
    page = await browser.page()
    await page.goto(url(ui, "/project/acme-utils/"))
    await page.get_by_label("Reason for yanking 2.0").fill("leaks memory")
    await page.get_by_role("button", name="Yank 2.0").click()
    await page.wait_for_url("**/project/acme-utils/?done=yanked&target=2.0")
    assert await page.get_by_role("status").inner_text() == "Yanked 2.0."
    assert (await yanked(ui))[acme_wheel("2.0").filename] == "leaks memory"
    dest = tmp_path / "dl"
    result = await run_pip("download", "--no-deps", "--dest", str(dest), "--index-url", url(ui, "/simple/"),
                           "acme-utils")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == [acme_wheel("1.0").filename]


async def test_anonymous_visitors_get_no_forms_and_a_forged_post_is_refused(
    ui: Ui, browser: Browser, aiohttp_server: AiohttpServer
):
    """Anonymous: no management controls. A signed-in maintainer who opens a hostile page that auto-submits a
    yank form to shadowpi (same site, so the browser sends the session cookie) gets a 403: no CSRF token."""
    page = await browser.page()
    await page.goto(url(ui, "/project/acme-utils/"))
    assert await page.locator("form[method=post]").count() == 0
    assert await page.get_by_role("button", name="Yank 2.0").count() == 0
    target = url(ui, "/project/acme-utils/yank")

    async def hostile_page(_request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            f'<form id="f" method="post" action="{target}"><input name="target" value="2.0">'
            '<input name="reason" value="forged"></form><script>document.getElementById("f").submit()</script>'))

    evil = web.Application()
    evil.router.add_get("/", hostile_page)
    evil_server = await aiohttp_server(evil)
    await sign_in(browser, ui, "bob")
    attacked = await browser.page()
    async with attacked.expect_response(target) as answer:
        await attacked.goto(str(evil_server.make_url("/")))
    response = await answer.value
    assert response.status == 403
    assert "CSRF check failed" in await attacked.locator("main").inner_text()
    assert set((await yanked(ui)).values()) == {False}


@pytest.mark.parametrize("browser", [False, True], ids=["with-csp", "sanitizer-alone"], indirect=True)
async def test_a_hostile_readme_renders_inert(make_proxy: ProxyFactory, upstream: Upstream, browser: Browser):
    """A README with <script>, javascript: links and onerror/onclick attributes runs nothing: no global set, no
    dialog, even with the CSP switched off (the sanitizer alone is enough) and after clicking its links."""
    ui = await start_ui(make_proxy, upstream)
    await ui.upload(acme_wheel("1.0", description=HOSTILE_README))
    page = await browser.page()
    await page.goto(url(ui, "/project/acme-utils/"))
    await page.wait_for_load_state("load")
    readme = page.locator("article.markdown")
    assert await readme.locator("h1").inner_text() == "Hostile"
    for name in ("click me", "also"):
        await readme.get_by_text(name).click()
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert await page.locator("article.markdown script, article.markdown [onerror], article.markdown [onclick]"
                              ).count() == 0
    assert browser.dialogs == []


async def test_main_pages_pass_accessibility_checks_and_are_screenshotted(
    make_proxy: ProxyFactory, upstream: Upstream, browser: Browser
):
    """axe-core finds no violations on the main pages (anonymous and signed in, desktop and phone widths);
    each page is saved as a screenshot under tests/screenshots/ (docs/project-page.png is project.png)."""
    ui = await start_ui(make_proxy, upstream, ui={"trusted_proxies": ["127.0.0.1"]})
    await ui.upload(acme_wheel("1.0"), acme_wheel("2.0"))
    await ui.client.post("/api/projects/acme-utils/1.0/yank", json={"reason": "superseded"}, headers=basic("alice"))
    await sign_in(browser, ui, "alice")
    # The pages as behind a TLS proxy: install lines name a real-looking host rather than a random test port.
    await browser.context.set_extra_http_headers({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pypi.example.com"})
    pages = {
        "home": "/", "search": "/search?q=acme", "project": "/project/acme-utils/",
        "delete": "/project/acme-utils/delete?target=2.0", "tokens": "/account/tokens", "operations": "/operations",
        "not-found": "/project/no-such-project/",
    }  # fmt: skip
    found: dict[str, list[str]] = {}
    page = await browser.page()
    for name, path in pages.items():
        await page.goto(url(ui, path))
        found[name] = await accessibility_violations(page)
        await screenshot(page, name)
    await page.set_viewport_size(PHONE)
    await page.goto(url(ui, "/project/acme-utils/"))
    found["project-phone"] = await accessibility_violations(page)
    await screenshot(page, "project-phone")
    await browser.context.clear_cookies()  # signed out
    await page.set_viewport_size(DESKTOP)
    for name, path in {"login": "/account/login", "project-anonymous": "/project/acme-utils/"}.items():
        await page.goto(url(ui, path))
        found[name] = await accessibility_violations(page)
        await screenshot(page, name)
    assert {name: v for name, v in found.items() if v} == {}


async def test_a_named_index_is_found_from_home_and_browsed(
    make_proxy: ProxyFactory, upstream: Upstream, browser: Browser
):
    """Signed in, alice follows the home page's link to index team, searches it, opens team's project page whose
    install line names team's simple URL; its pages pass axe-core and are screenshotted (index-*.png)."""
    team = {"bases": ["root"], "read": ["alice"], "upload": ["alice"]}
    ui = await start_ui(make_proxy, upstream, indexes={"team": team})
    wheel = build_wheel("team-lib", "1.0")
    assert (await twine_upload(ui.client, wheel, auth=("alice", USERS["alice"]), path="/index/team/")).status == 200
    await sign_in(browser, ui, "alice")
    page = await browser.page()
    await page.goto(url(ui))
    await page.get_by_role("link", name="team", exact=True).click()
    await page.wait_for_url(url(ui, "/index/team/"))
    found = {"index-home": await accessibility_violations(page)}
    await screenshot(page, "index-home")
    await page.get_by_label("Search projects").fill("team")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="team-lib", exact=True).click()
    await page.wait_for_url(url(ui, "/index/team/project/team-lib/"))
    assert f"--index-url {url(ui, '/index/team/simple/')} team-lib==1.0" in await page.locator(".install").inner_text()
    found["index-project"] = await accessibility_violations(page)
    await screenshot(page, "index-project")
    assert {name: v for name, v in found.items() if v} == {}
