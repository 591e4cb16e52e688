"""The web interface follows issue 14's rule: in a root index with [indexes.root] (owners enforced), only the
project's owners, maintainers and admins see and use yank/delete; the web's changes reach the audit log."""

from __future__ import annotations

import pytest

from tests.conftest import Upstream
from tests.proxy_fixtures import ProxyFactory
from tests.publishing import twine_upload
from tests.stores import data_dir_meta
from tests.ui_helpers import Ui, acme_wheel, csrf_of, start_ui

PROJECT = "/project/acme-utils/"


@pytest.fixture
async def ui(make_proxy: ProxyFactory, upstream: Upstream) -> Ui:
    """alice's token uploads acme-utils (alice owns it); bob is a user without rights on it."""
    ui = await start_ui(make_proxy, upstream, indexes={"root": {"upload": ["authenticated"], "admin": []}})
    await ui.upload(acme_wheel("1.0"))
    return ui


async def test_a_non_owner_gets_no_controls_and_a_403(ui: Ui):
    """bob (not an owner) sees no yank form and his yank is refused; nothing changes."""
    assert (await ui.sign_in("bob")).status == 303
    _status, html = await ui.page(PROJECT)
    assert 'action="/project/acme-utils/yank"' not in html and "/project/acme-utils/yank" not in html
    _status, tokens_html = await ui.page("/account/tokens")
    resp = await ui.client.post(f"{PROJECT}yank", data={"csrf": csrf_of(tokens_html), "target": "1.0",
                                                        "reason": "x"}, allow_redirects=False)
    assert resp.status == 403


async def test_the_owner_yanks_and_the_audit_log_records_it(ui: Ui):
    """alice (owner) yanks through the form; the audit log has the entry, via the web session."""
    assert (await ui.sign_in("alice")).status == 303
    resp = await ui.submit(PROJECT, f"{PROJECT}yank", {"target": "1.0", "reason": "broken"})
    assert resp.status == 303
    async with data_dir_meta(ui.data_dir) as meta:
        entries = await meta.audit_entries(project="acme-utils")
    assert [(e.action, e.actor, e.via) for e in entries] == [
        ("yank", "alice", "web:password"), ("upload", "alice", f"token:{ui.token_id}")]


async def test_the_tokens_page_creates_a_read_only_token_scoped_to_an_index(ui: Ui):
    """The form's scope: a read-only token limited to root with an expiry reads but cannot upload; the table shows
    the scope; an unknown index or a bad expiry is a 400 naming the field, and creates nothing."""
    assert (await ui.sign_in("bob")).status == 303
    fields = {"description": "CI", "indexes": "root", "expires_days": "30", "read_only": "1"}
    resp = await ui.submit("/account/tokens", "/account/tokens", fields)
    html = await resp.text()
    assert resp.status == 200
    token = html.split('aria-label="new token"><code>')[1].split("</code>")[0]
    assert "read-only; root; expires " in html
    upload = await twine_upload(ui.client, acme_wheel("3.0"), auth=("__token__", token))
    assert upload.status == 403 and upload.reason == "This API token is read-only: it may not upload to index 'root'."
    for bad, message in (({"indexes": "nope"}, "No index named 'nope'"), ({"expires_days": "-1"}, "Expires in")):
        refused = await ui.submit("/account/tokens", "/account/tokens", {"description": "x", **bad})
        assert refused.status == 400 and message in (refused.reason or "")
    async with data_dir_meta(ui.data_dir) as meta:
        assert [t.description for t in await meta.list_tokens("bob")] == ["CI"]
