"""The web interface follows issue 14's rule: in a root index with [indexes.root] (owners enforced), only the
project's owners, maintainers and admins see and use yank/delete; the web's changes reach the audit log."""

from __future__ import annotations

import pytest

from tests.conftest import Upstream
from tests.proxy_fixtures import ProxyFactory
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
