"""Two apps on one data dir, as `--workers 2` runs them: what one worker writes, the other serves on its very
next request, although each keeps private pages in memory (see proxy/backends/changes.py)."""

from __future__ import annotations

import json

import aiohttp
from aiohttp.test_utils import TestClient

from proxy import admin
from proxy.keys import FILES
from tests.artifacts import build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import TOKEN_AUTH, add_token, blob_files, twine_upload

PRIVATE = build_wheel("acme-internal", "1.0.0")
PRIVATE_2 = build_wheel("acme-internal", "2.0.0")
UPSTREAM_HIGHER = build_wheel("acme-internal", "99.0.0")


async def listed(client: TestClient, project: str = "acme-internal") -> dict[str, object]:
    resp = await client.get(f"/simple/{project}/", headers=JSON)
    assert resp.status == 200, resp.reason
    return {f["filename"]: f["yanked"] for f in json.loads(await resp.text())["files"]}


def basic(auth: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(*auth)}


async def test_upload_on_one_worker_shadows_upstream_on_the_other(make_proxy: ProxyFactory, upstream: Upstream):
    """Worker B served the upstream acme-internal (and keeps it in memory); once worker A takes a private upload
    of that name, B's next answer is the private page, and upstream is not asked again."""
    await add_token(make_proxy.data_dir, "ci")
    upstream.fake.add(UPSTREAM_HIGHER)
    worker_a, worker_b = await make_proxy(), await make_proxy()
    assert await listed(worker_b) == {UPSTREAM_HIGHER.filename: False}
    asked = len(upstream.fake.requests)

    assert (await twine_upload(worker_a, PRIVATE)).status == 200
    assert await listed(worker_b) == {PRIVATE.filename: False}
    url = f"/files/acme-internal/{UPSTREAM_HIGHER.sha256}/{UPSTREAM_HIGHER.filename}"
    assert (await worker_b.get(url)).status == 404
    assert len(upstream.fake.requests) == asked


async def test_yank_and_delete_on_one_worker_show_on_the_other(make_proxy: ProxyFactory, upstream: Upstream):
    """Each private change made through worker A is on worker B's next page, for every change in turn."""
    await add_token(make_proxy.data_dir, "ci")
    worker_a, worker_b = await make_proxy(), await make_proxy()
    assert (await twine_upload(worker_a, PRIVATE)).status == 200
    assert await listed(worker_b) == {PRIVATE.filename: False}
    assert (await twine_upload(worker_a, PRIVATE_2)).status == 200
    assert await listed(worker_b) == {PRIVATE.filename: False, PRIVATE_2.filename: False}

    api = f"/api/projects/acme-internal/{PRIVATE.filename}"
    resp = await worker_a.post(api + "/yank", json={"reason": "broken"}, headers=basic(TOKEN_AUTH))
    assert resp.status == 200, resp.reason
    assert await listed(worker_b) == {PRIVATE.filename: "broken", PRIVATE_2.filename: False}
    assert (await worker_a.delete(api, headers=basic(TOKEN_AUTH))).status == 200
    assert await listed(worker_b) == {PRIVATE_2.filename: False}
    assert (await worker_a.delete("/api/projects/acme-internal/2.0.0", headers=basic(TOKEN_AUTH))).status == 200
    resp = await worker_b.get("/simple/acme-internal/", headers=JSON)
    assert resp.status == 404  # the name stays private with no files: never handed back to upstream
    assert [p for p in upstream.fake.requests if "acme" in p] == []


async def test_project_list_on_one_worker_sees_uploads_on_the_other(make_proxy: ProxyFactory, upstream: Upstream):
    await add_token(make_proxy.data_dir, "ci")
    worker_a, worker_b = await make_proxy(), await make_proxy()
    assert "acme-internal" not in await (await worker_b.get("/simple/")).text()
    assert (await twine_upload(worker_a, PRIVATE)).status == 200
    assert "acme-internal" in await (await worker_b.get("/simple/")).text()


async def test_a_file_deleted_by_another_process_is_fetched_again(make_proxy: ProxyFactory, upstream: Upstream):
    """Worker A remembers which files it has (no stat per hit); after another process purges one (here the
    `shadowpi cache purge` code path on its own database connection), A's next request refetches it."""
    wheel = build_wheel("tinylib", "1.0")
    upstream.fake.add(wheel)
    worker_a = await make_proxy()
    assert await listed(worker_a, "tinylib") == {wheel.filename: False}
    url = f"/files/tinylib/{wheel.sha256}/{wheel.filename}"
    assert await (await worker_a.get(url)).read() == wheel.data
    await worker_a.app[FILES].settled()
    hit = await worker_a.get(url)
    assert (hit.headers.get("X-Shadowpi-Cache"), await hit.read()) == ("hit", wheel.data)  # from the cache

    config = make_proxy.config()
    assert await admin.cache_purge(config, "tinylib", lambda _line: None) == 0
    assert wheel.sha256 not in blob_files(make_proxy.data_dir)
    again = await worker_a.get(url)
    assert again.status == 200
    assert (again.headers.get("X-Shadowpi-Cache"), await again.read()) == ("miss", wheel.data)
    assert upstream.fake.hits[f"/files/tinylib/{wheel.filename}"] == 2
