"""The web interface's forms over HTTP: sign-in and out, CSRF, yank/unyank/delete, tokens, operations."""

from __future__ import annotations

import json
import logging

import pytest

from proxy.auth import Htpasswd
from proxy.keys import AUTH
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import twine_upload, write_htpasswd
from tests.ui_helpers import TOKEN, USERS, Ui, acme_wheel, basic, csrf_of, start_ui

PROJECT = "/project/acme-utils/"


@pytest.fixture
async def ui(make_proxy: ProxyFactory, upstream: Upstream) -> Ui:
    ui = await start_ui(make_proxy, upstream)
    await ui.upload(acme_wheel("1.0"), acme_wheel("2.0"))
    return ui


async def yanked_on_simple_page(ui: Ui) -> dict[str, object]:
    """filename -> yanked, as pip sees it (PEP 691 JSON)."""
    page = json.loads(await (await ui.client.get("/simple/acme-utils/", headers=JSON)).text())
    return {f["filename"]: f["yanked"] for f in page["files"]}


# --- sign-in ----------------------------------------------------------------------------------------------


async def test_sign_in_sets_a_session_cookie_and_sign_out_ends_it(ui: Ui):
    """The form signs in with htpasswd credentials: an HttpOnly, SameSite=Lax session cookie; sign-out clears it."""
    resp = await ui.sign_in("bob")
    assert (resp.status, resp.headers["Location"]) == (303, "../")
    cookie = resp.cookies["shadowpi_session"]
    assert (cookie["httponly"], cookie["samesite"], cookie["max-age"], cookie["secure"]) == (True, "Lax", "43200", "")
    _status, html = await ui.page(PROJECT)
    assert 'title="Your API tokens">bob</a>' in html and "Sign out" in html
    out = await ui.submit(PROJECT, "/account/logout", {})
    assert out.status == 303
    _status, html = await ui.page(PROJECT)
    assert ">Sign in</a>" in html and "bob" not in html


async def test_a_session_from_one_process_is_accepted_by_another(ui: Ui, make_proxy: ProxyFactory):
    """The signing key is a secret of the metadata store, not of a process: a cookie one worker (or replica) set
    signs the same user in on another one over the same backends."""
    resp = await ui.sign_in("bob")
    cookie = resp.cookies["shadowpi_session"].value
    other = await make_proxy(auth={"htpasswd": str(make_proxy.data_dir.parent / "htpasswd")})
    page = await other.get(PROJECT, headers={"Cookie": f"shadowpi_session={cookie}"})
    assert 'title="Your API tokens">bob</a>' in await page.text()


async def test_wrong_password_is_refused_and_the_form_kept(ui: Ui):
    """A wrong password re-shows the form with a message (403) and signs nobody in."""
    resp = await ui.sign_in("bob", "wrong")
    html = await resp.text()
    assert resp.status == 403 and "Wrong user name or password" in html and 'value="bob"' in html
    assert "shadowpi_session" not in resp.cookies


async def test_failed_sign_ins_are_limited_like_the_api(make_proxy: ProxyFactory, upstream: Upstream):
    """The form shares the API's failure limit per address: then 429 with Retry-After, without bcrypt."""
    ui = await start_ui(make_proxy, upstream, auth={"max_failures": 2})
    for _ in range(2):
        assert (await ui.sign_in("bob", "wrong")).status == 403
    throttled = await ui.sign_in("bob", "wrong")
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0


async def test_sign_in_with_a_token_lasts_only_while_the_token_does(ui: Ui):
    """__token__ with an API token signs in as its owner; revoking the token ends that session."""
    assert (await ui.sign_in("__token__", TOKEN)).status == 303
    _status, html = await ui.page("/account/tokens")
    assert "API tokens of alice" in html and "sign in with your password to create tokens" in html
    revoked = await ui.submit("/account/tokens", "/account/tokens/revoke", {"token_id": str(ui.token_id)})
    assert revoked.status == 303
    status, html = await ui.page("/account/tokens")
    assert status == 401 and "<h1>Sign in</h1>" in html  # anonymous now: the tokens page asks to sign in


async def test_a_session_ends_when_the_user_leaves_the_htpasswd_file(ui: Ui, tmp_path):
    """A reloaded htpasswd file without the user makes their session cookie worthless."""
    assert (await ui.sign_in("bob")).status == 303
    others = write_htpasswd(tmp_path / "others", {"alice": USERS["alice"]})
    ui.client.app[AUTH].set_htpasswd(Htpasswd.load(others))
    _status, html = await ui.page(PROJECT)
    assert ">Sign in</a>" in html and "bob" not in html


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_sign_in_never_redirects_off_site(ui: Ui, next_path: str):
    """The `next` field only ever leads to a path on this site."""
    _status, html = await ui.page("/account/login")
    form = {"csrf": csrf_of(html), "username": "bob", "password": USERS["bob"], "next": next_path}
    resp = await ui.client.post("/account/login", data=form, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "../")


async def test_session_cookie_is_secure_behind_a_trusted_https_proxy(make_proxy: ProxyFactory, upstream: Upstream):
    """Reached over https (per a trusted proxy's X-Forwarded-Proto), the cookies are Secure."""
    ui = await start_ui(make_proxy, upstream, ui={"trusted_proxies": ["127.0.0.1"]})
    https = {"X-Forwarded-Proto": "https"}
    page = await ui.client.get("/account/login", headers=https)
    seed = page.cookies["shadowpi_csrf"]
    assert seed["secure"] is True
    form = {"csrf": csrf_of(await page.text()), "username": "bob", "password": USERS["bob"], "next": "/"}
    # The test client speaks http, so its jar keeps Secure cookies to itself: send the seed as the browser would.
    headers = {**https, "Cookie": f"shadowpi_csrf={seed.value}"}
    resp = await ui.client.post("/account/login", data=form, headers=headers, allow_redirects=False)
    assert resp.cookies["shadowpi_session"]["secure"] is True


# --- who sees the forms, CSRF -----------------------------------------------------------------------------


async def test_anonymous_visitors_see_no_management_forms(ui: Ui):
    """Anonymous visitors get no yank, unyank or delete controls and no CSRF token."""
    _status, html = await ui.page(PROJECT)
    assert "Yank 2.0" not in html and "Delete 2.0" not in html and 'name="csrf"' not in html
    _status, signed_in = await ui.page(PROJECT, headers=basic("bob"))
    assert "Yank 2.0</button>" in signed_in and "Delete 2.0…</a>" in signed_in


@pytest.mark.parametrize("token", ["none", "garbage", "other-user"])
async def test_forged_posts_are_refused_and_change_nothing(ui: Ui, token: str):
    """A POST without this browser's CSRF token for this user (none, made up, or another user's) is a 403 and
    changes nothing, even with valid credentials."""
    _status, html = await ui.page(PROJECT, headers=basic("alice"))
    fields = {"target": "2.0", "reason": "forged"}
    if token == "garbage":
        fields["csrf"] = "x" * 43
    elif token == "other-user":
        fields["csrf"] = csrf_of(html)  # alice's token, posted as bob
    resp = await ui.client.post(f"{PROJECT}yank", data=fields, headers=basic("bob"), allow_redirects=False)
    assert resp.status == 403
    assert "CSRF check failed" in await resp.text()
    assert set((await yanked_on_simple_page(ui)).values()) == {False}


async def test_anonymous_posts_with_a_valid_token_are_refused(ui: Ui):
    """A signed-out visitor's own (valid) CSRF token does not make a yank allowed."""
    resp = await ui.submit("/account/login", f"{PROJECT}yank", {"target": "2.0", "reason": ""})
    assert resp.status == 403 and "You may not manage acme-utils" in await resp.text()
    assert set((await yanked_on_simple_page(ui)).values()) == {False}


# --- yank, unyank, delete ---------------------------------------------------------------------------------


async def test_yank_and_unyank_through_the_forms(ui: Ui, caplog: pytest.LogCaptureFixture):
    """A maintainer yanks a release with a reason (pip then sees it yanked), and un-yanks it; both are logged."""
    await ui.sign_in("bob")
    caplog.set_level(logging.INFO, logger="proxy.ui.audit")
    resp = await ui.submit(PROJECT, f"{PROJECT}yank", {"target": "2.0", "reason": "broken <b>build</b>"})
    assert (resp.status, resp.headers["Location"]) == (303, "../../project/acme-utils/?done=yanked&target=2.0")
    assert await yanked_on_simple_page(ui) == {acme_wheel("1.0").filename: False,
                                              acme_wheel("2.0").filename: "broken <b>build</b>"}
    _status, html = await ui.page(resp.headers["Location"].replace("../..", ""))
    assert "Yanked 2.0." in html and "Yanked: broken &lt;b&gt;build&lt;/b&gt;" in html
    assert "bob yanked acme_utils-2.0-py3-none-any.whl: broken <b>build</b> (web, via password)" in caplog.text
    resp = await ui.submit(PROJECT, f"{PROJECT}unyank", {"target": "2.0"})
    assert resp.status == 303
    assert set((await yanked_on_simple_page(ui)).values()) == {False}
    assert "bob unyanked acme_utils-2.0-py3-none-any.whl" in caplog.text


async def test_delete_needs_the_confirmation(ui: Ui):
    """Delete shows what goes, and deletes only when the confirmation repeats the version."""
    await ui.sign_in("bob")
    status, html = await ui.page(f"{PROJECT}delete?target=2.0")
    assert status == 200 and "<code>acme_utils-2.0-py3-none-any.whl</code>" in html
    wrong = await ui.submit(f"{PROJECT}delete?target=2.0", f"{PROJECT}delete", {"target": "2.0", "confirm": "2"})
    assert wrong.status == 400 and "nothing was deleted" in await wrong.text()
    assert acme_wheel("2.0").filename in await yanked_on_simple_page(ui)
    right = await ui.submit(f"{PROJECT}delete?target=2.0", f"{PROJECT}delete", {"target": "2.0", "confirm": "2.0"})
    assert right.status == 303
    assert list(await yanked_on_simple_page(ui)) == [acme_wheel("1.0").filename]


async def test_unknown_targets_are_404_pages(ui: Ui):
    """Yanking a version the project does not have is a 404 page naming it."""
    await ui.sign_in("bob")
    resp = await ui.submit(PROJECT, f"{PROJECT}yank", {"target": "9.9", "reason": ""})
    assert resp.status == 404 and "has no private file or version &#39;9.9&#39;" in await resp.text()


# --- tokens -----------------------------------------------------------------------------------------------


async def test_tokens_are_created_shown_once_and_work_for_uploads(ui: Ui):
    """A signed-in user creates a token (shown once, on a no-store page) that twine can upload with."""
    await ui.sign_in("bob")
    resp = await ui.submit("/account/tokens", "/account/tokens", {"description": "CI <script>"})
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "private, no-store"
    token = html.split('aria-label="new token"><code>')[1].split("</code>")[0]
    assert token.startswith("spi_") and "CI &lt;script&gt;" in html
    upload = await twine_upload(ui.client, acme_wheel("3.0"), auth=("__token__", token))
    assert upload.status == 200
    _status, again = await ui.page("/account/tokens")
    assert token not in again and "CI &lt;script&gt;" in again


async def test_only_own_tokens_can_be_revoked(ui: Ui):
    """Bob cannot revoke alice's token by posting its id."""
    await ui.sign_in("bob")
    resp = await ui.submit("/account/tokens", "/account/tokens/revoke", {"token_id": str(ui.token_id)})
    assert resp.status == 400 and f"no active token with id &#39;{ui.token_id}&#39;" in await resp.text()
    assert (await twine_upload(ui.client, acme_wheel("3.0"))).status == 200  # alice's token still works


async def test_a_token_session_cannot_create_tokens(ui: Ui):
    """Signed in with a token, creating another token is refused (a leaked token must not mint more)."""
    await ui.sign_in("__token__", TOKEN)
    resp = await ui.submit("/account/tokens", "/account/tokens", {"description": "more"}, headers={})
    assert resp.status == 403 and "a token cannot make more tokens" in await resp.text()


# --- operations -------------------------------------------------------------------------------------------


async def test_operations_page_is_for_admins(ui: Ui):
    """Anonymous: sign-in (401); a non-admin: 403; an admin sees cache, upstream and recent errors."""
    logging.getLogger("proxy.files").warning("disk <b>hiccup</b>")
    anonymous = await ui.client.get("/operations")
    assert anonymous.status == 401
    assert (await ui.client.get("/operations", headers=basic("bob"))).status == 403
    resp = await ui.client.get("/operations", headers=basic("alice"))
    html = await resp.text()
    assert resp.status == 200
    assert "Cached upstream files" in html and "Downloads in flight" in html and "unlimited" in html
    assert "disk &lt;b&gt;hiccup&lt;/b&gt;" in html
    assert 'href="./metrics"' in html and 'href="./ready"' in html
    _status, home = await ui.page("/", headers=basic("alice"))
    assert ">Operations</a>" in home


async def test_a_form_body_that_is_not_utf8_is_a_400(ui: Ui):
    """A posted form whose bytes are not UTF-8 is refused with 400 and a reason (the fuzz suite found a 500)."""
    resp = await ui.client.post("/account/login", data=b"\x80\x81=\xff",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (resp.status, resp.reason) == (400, "The form could not be read: UnicodeDecodeError.")
