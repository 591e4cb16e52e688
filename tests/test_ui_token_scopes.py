"""A web session signed in with an API token carries that token's scope (issue 14) on every request: the UI refuses
what the API would refuse the token, and the session ends when the token is revoked or expires."""

from __future__ import annotations

import json
import time

import pytest

from proxy.access.model import TokenScope
from proxy.auth import hash_token
from proxy.ui.context import UI
from proxy.ui.session import SESSION_COOKIE, Session
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import twine_upload
from tests.stores import data_dir_meta
from tests.ui_helpers import USERS, Ui, acme_wheel, basic, csrf_of, start_ui

PROJECT = "/project/acme-utils/"
SCOPED = "spi_scoped-token-for-the-web-tests"
OTHER = "spi_another-token-of-alice"
INDEXES = {  # alice may read, upload to and administer both
    "alpha": {"read": ["alice"], "upload": ["alice"], "admin": ["alice"]},
    "beta": {"read": ["alice"], "upload": ["alice"], "admin": ["alice"]},
}


async def _add_token(ui: Ui, token: str, scope: TokenScope | None) -> int:
    async with data_dir_meta(ui.data_dir) as meta:
        return await meta.add_token("alice", hash_token(token), "test", scope)


async def _files(ui: Ui, index: str | None = None) -> dict[str, object]:
    """filename -> yanked, as pip sees the project (PEP 691 JSON), read with alice's password."""
    prefix = f"/index/{index}" if index else ""
    name = f"{index}-lib" if index else "acme-utils"
    resp = await ui.client.get(f"{prefix}/simple/{name}/", headers={**JSON, **basic("alice")})
    assert resp.status == 200
    return {f["filename"]: f["yanked"] for f in json.loads(await resp.text())["files"]}


async def _csrf(ui: Ui) -> str:
    """The signed-in viewer's CSRF token, from a page every viewer may see."""
    _status, html = await ui.page("/account/tokens")
    return csrf_of(html)


async def _post(ui: Ui, path: str, fields: dict[str, str]) -> tuple[int, str]:
    resp = await ui.client.post(path, data={"csrf": await _csrf(ui), **fields}, allow_redirects=False)
    return resp.status, await resp.text()


@pytest.fixture
async def ui(make_proxy: ProxyFactory, upstream: Upstream) -> Ui:
    """alice signed in to the web with a read-only token; acme-utils 1.0 and 2.0 uploaded (none yanked)."""
    ui = await start_ui(make_proxy, upstream)
    await ui.upload(acme_wheel("1.0"), acme_wheel("2.0"))
    await _add_token(ui, SCOPED, TokenScope(actions=frozenset({"read"})))
    assert (await ui.sign_in("__token__", SCOPED)).status == 303
    return ui


@pytest.mark.parametrize(("path", "fields"), [
    (f"{PROJECT}yank", {"target": "2.0", "reason": "read-only tokens may not"}),
    (f"{PROJECT}delete", {"target": "2.0", "confirm": "2.0"}),
])
async def test_a_read_only_token_session_cannot_yank_or_delete(ui: Ui, path: str, fields: dict[str, str]):
    """Signed in with a read-only token, a yank or a delete is a 403 naming the token's scope; nothing changes."""
    status, html = await _post(ui, path, fields)
    assert status == 403 and "This API token is read-only: it may not manage files of index &#39;root&#39;." in html
    assert await _files(ui) == {acme_wheel("1.0").filename: False, acme_wheel("2.0").filename: False}


async def test_a_read_only_token_session_gets_no_management_controls(ui: Ui):
    """The project page offers a read-only token's session no yank or delete forms, and the delete confirmation
    page is a 403."""
    status, html = await ui.page(PROJECT)
    assert status == 200 and "Yank 2.0" not in html and "Delete 2.0" not in html
    status, _html = await ui.page(f"{PROJECT}delete?target=2.0")
    assert status == 403


async def test_a_token_session_creates_no_tokens_and_revokes_only_its_own(ui: Ui):
    """Signed in with a token, creating a token is refused, and so is revoking another of the user's tokens (a
    leaked token must not lock its owner's CI out); revoking its own token works and ends the session."""
    other_id = await _add_token(ui, OTHER, None)
    status, html = await _post(ui, "/account/tokens", {"description": "more"})
    assert status == 403 and "a token cannot make more tokens" in html
    status, html = await _post(ui, "/account/tokens/revoke", {"token_id": str(other_id)})
    assert status == 403 and "revoke only the token you signed in with" in html
    async with data_dir_meta(ui.data_dir) as meta:
        tokens = {t.id: t for t in await meta.list_tokens("alice")}
    assert len(tokens) == 3 and all(t.revoked_at is None for t in tokens.values())
    assert (await twine_upload(ui.client, acme_wheel("3.0"), auth=("__token__", OTHER))).status == 200
    own_id = next(t.id for t in tokens.values() if t.description == "test" and t.actions == ("read",))
    status, _html = await _post(ui, "/account/tokens/revoke", {"token_id": str(own_id)})
    assert status == 303
    status, html = await ui.page("/account/tokens")
    assert status == 401 and "<h1>Sign in</h1>" in html


async def test_an_index_scoped_token_session_manages_only_its_index(make_proxy: ProxyFactory, upstream: Upstream):
    """Signed in with a token scoped to index alpha, alice yanks in alpha, but beta's pages are a 403 and a yank
    there is refused and changes nothing, although alice herself administers beta."""
    ui = await start_ui(make_proxy, upstream, indexes=INDEXES)
    for index in ("alpha", "beta"):
        resp = await twine_upload(ui.client, build_wheel(f"{index}-lib", "1.0"), auth=("alice", USERS["alice"]),
                                  path=f"/index/{index}/")
        assert resp.status == 200, await resp.text()
    await _add_token(ui, SCOPED, TokenScope(indexes=frozenset({"alpha"})))
    assert (await ui.sign_in("__token__", SCOPED)).status == 303
    status, _html = await ui.page("/index/beta/project/beta-lib/")
    assert status == 403
    status, html = await _post(ui, "/index/beta/project/beta-lib/yank", {"target": "1.0", "reason": "x"})
    assert status == 403 and "This API token is not valid for index &#39;beta&#39; (only alpha)." in html
    assert await _files(ui, "beta") == {build_wheel("beta-lib", "1.0").filename: False}
    status, _html = await _post(ui, "/index/alpha/project/alpha-lib/yank", {"target": "1.0", "reason": "old"})
    assert status == 303
    assert await _files(ui, "alpha") == {build_wheel("alpha-lib", "1.0").filename: "old"}


async def test_a_session_of_an_expired_token_is_anonymous(make_proxy: ProxyFactory, upstream: Upstream):
    """A session signed in with a token that has since expired is anonymous: the tokens page asks to sign in and
    a yank is refused, changing nothing."""
    ui = await start_ui(make_proxy, upstream)
    await ui.upload(acme_wheel("1.0"))
    await _add_token(ui, SCOPED, TokenScope(expires_at=time.time() - 60))
    # The cookie the sign-in form gave while the token was live (it cannot sign in any more: it has expired).
    session = Session("alice", "token", time.time() + 3600, hash_token(SCOPED))
    ui.client.session.cookie_jar.update_cookies({SESSION_COOKIE: ui.client.app[UI].signer.session_cookie(session)})
    status, html = await ui.page("/account/tokens")
    assert status == 401 and "<h1>Sign in</h1>" in html
    status, html = await ui.page(PROJECT)
    assert status == 200 and ">Sign in</a>" in html and "Sign out" not in html
    resp = await ui.submit("/account/login", f"{PROJECT}yank", {"target": "1.0", "reason": ""})
    assert resp.status == 403
    assert await _files(ui) == {acme_wheel("1.0").filename: False}
