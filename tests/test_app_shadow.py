"""Shadowing through HTTP: private names hide upstream, reserved patterns, and the merge_upstream opt-in."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from proxy.keys import ACCESS
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import add_token, twine_upload

PRIVATE = build_wheel("acme-internal", "1.0.0")
UPSTREAM_HIGHER = build_wheel("acme-internal", "99.0.0")
UPSTREAM_CLASH = build_wheel("acme-internal", "1.0.0", module_source="EVIL = True\n")  # same filename


def asked_about(upstream: Upstream, fragment: str) -> list[str]:
    return [path for path in upstream.fake.requests if fragment in path.lower()]


@pytest.fixture
async def with_token(make_proxy: ProxyFactory) -> None:
    await add_token(make_proxy.data_dir, "ci")


@pytest.mark.usefixtures("with_token")
@pytest.mark.parametrize("spelling", ["acme-internal", "Acme_Internal", "ACME.INTERNAL", "acme--internal"])
async def test_private_project_hides_upstream_under_every_spelling(
    make_proxy: ProxyFactory, upstream: Upstream, spelling: str
):
    """Once acme-internal is private, every spelling resolves to the private page and upstream is never asked."""
    upstream.fake.add(UPSTREAM_HIGHER)
    proxy = await make_proxy()
    assert (await twine_upload(proxy, PRIVATE)).status == 200
    resp = await proxy.get(f"/simple/{spelling}/", headers=JSON)
    assert resp.status == 200
    page = json.loads(await resp.text())
    assert [f["filename"] for f in page["files"]] == [PRIVATE.filename]
    assert page["versions"] == ["1.0.0"]
    assert asked_about(upstream, "acme") == []


@pytest.mark.usefixtures("with_token")
async def test_upstream_file_url_under_shadowed_name_is_refused(make_proxy: ProxyFactory, upstream: Upstream):
    """Guessing shadowpi's URL for an upstream file of a shadowed project gets a 404, never an upstream fetch."""
    upstream.fake.add(UPSTREAM_HIGHER)
    proxy = await make_proxy()
    await twine_upload(proxy, PRIVATE)
    for suffix in ("", ".metadata"):
        url = f"/files/acme-internal/{UPSTREAM_HIGHER.sha256}/{UPSTREAM_HIGHER.filename}{suffix}"
        assert (await proxy.get(url)).status == 404
    assert asked_about(upstream, "acme") == []


async def test_reserved_pattern_is_never_asked_upstream(make_proxy: ProxyFactory, upstream: Upstream):
    """A name matching private_patterns is a 404 before any upload, and upstream never hears of it."""
    upstream.fake.add(UPSTREAM_HIGHER)
    proxy = await make_proxy(policy={"private_patterns": ["Acme_*"]})
    resp = await proxy.get("/simple/acme-internal/")
    assert resp.status == 404
    assert "reserved" in await resp.text()
    assert asked_about(upstream, "acme") == []
    assert (await proxy.get("/simple/tinylib-or-anything/")).status == 404  # other names do go upstream
    assert asked_about(upstream, "tinylib-or-anything")


@pytest.mark.usefixtures("with_token")
async def test_reserved_pattern_serves_private_uploads(make_proxy: ProxyFactory, upstream: Upstream):
    """Under a reserved pattern, an upload is served like any private project."""
    proxy = await make_proxy(policy={"private_patterns": ["acme-*"]})
    await twine_upload(proxy, PRIVATE)
    page = json.loads(await (await proxy.get("/simple/acme-internal/", headers=JSON)).text())
    assert [f["filename"] for f in page["files"]] == [PRIVATE.filename]


@pytest.mark.usefixtures("with_token")
async def test_merge_upstream_lists_both_and_private_wins_clashes(make_proxy: ProxyFactory, upstream: Upstream):
    """merge_upstream shows upstream files too; on a filename clash the private file and its bytes win."""
    upstream.fake.add(UPSTREAM_HIGHER)
    upstream.fake.add(UPSTREAM_CLASH)
    proxy = await make_proxy(policy={"merge_upstream": ["Acme.Internal"]})
    await twine_upload(proxy, PRIVATE)
    page = json.loads(await (await proxy.get("/simple/acme-internal/", headers=JSON)).text())
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {PRIVATE.filename, UPSTREAM_HIGHER.filename}
    assert files[PRIVATE.filename]["hashes"]["sha256"] == PRIVATE.sha256
    assert page["versions"] == ["1.0.0", "99.0.0"]
    private_url = f"/files/acme-internal/{PRIVATE.sha256}/{PRIVATE.filename}"
    assert await (await proxy.get(private_url)).read() == PRIVATE.data
    upstream_url = f"/files/acme-internal/{UPSTREAM_HIGHER.sha256}/{UPSTREAM_HIGHER.filename}"
    assert await (await proxy.get(upstream_url)).read() == UPSTREAM_HIGHER.data
    clash_url = f"/files/acme-internal/{UPSTREAM_CLASH.sha256}/{UPSTREAM_CLASH.filename}"
    assert (await proxy.get(clash_url)).status == 404


@pytest.mark.usefixtures("with_token")
async def test_merged_project_survives_upstream_outage(make_proxy: ProxyFactory, upstream: Upstream):
    """With merge_upstream and upstream down (nothing cached), the private files are still served."""
    upstream.fake.down = True
    proxy = await make_proxy(policy={"merge_upstream": ["acme-internal"]})
    await twine_upload(proxy, PRIVATE)
    resp = await proxy.get("/simple/acme-internal/", headers=JSON)
    assert resp.status == 200
    assert resp.headers["X-Shadowpi-Cache"] == "stale"
    assert [f["filename"] for f in json.loads(await resp.text())["files"]] == [PRIVATE.filename]


@pytest.mark.usefixtures("with_token")
async def test_project_list_includes_private_projects(make_proxy: ProxyFactory, upstream: Upstream):
    """/simple/ lists private projects next to cached upstream ones."""
    proxy = await make_proxy()
    await twine_upload(proxy, PRIVATE)
    names = [p["name"] for p in json.loads(await (await proxy.get("/simple/", headers=JSON)).text())["projects"]]
    assert names == ["acme-internal"]


async def _page(proxy: TestClient, path: str = "/simple/acme-internal/") -> tuple[int, str | None, list[str]]:
    resp = await proxy.get(path, headers=JSON)
    files = [f["filename"] for f in json.loads(await resp.text())["files"]] if resp.status == 200 else []
    return resp.status, resp.headers.get("X-Shadowpi-Cache"), files


@pytest.mark.usefixtures("with_token")
async def test_a_warm_page_follows_a_private_upload_at_once(make_proxy: ProxyFactory, upstream: Upstream):
    """A page answered from memory again and again (its answer reused while nothing changed) becomes the private
    page with the upload that shadows it: the very next request, no TTL to wait out."""
    upstream.fake.add(UPSTREAM_HIGHER)
    proxy = await make_proxy(upstream={"page_ttl": 3600})
    answers = [await _page(proxy) for _ in range(3)]
    assert answers == [(200, "miss", [UPSTREAM_HIGHER.filename])] + [(200, "hit", [UPSTREAM_HIGHER.filename])] * 2
    assert (await twine_upload(proxy, PRIVATE)).status == 200
    assert [await _page(proxy) for _ in range(2)] == [(200, "private", [PRIVATE.filename])] * 2


async def test_a_warm_page_follows_a_reload_of_the_indexes(make_proxy: ProxyFactory, upstream: Upstream):
    """The same for a reload (SIGHUP) that reserves the name: the next request is the reserved name's 404."""
    upstream.fake.add(UPSTREAM_HIGHER)
    proxy = await make_proxy(upstream={"page_ttl": 3600})
    assert [(await _page(proxy))[:2] for _ in range(3)] == [(200, "miss"), (200, "hit"), (200, "hit")]
    proxy.app[ACCESS].current = make_proxy.config(policy={"private_patterns": ["acme-*"]}).access()
    assert (await _page(proxy))[0] == 404
