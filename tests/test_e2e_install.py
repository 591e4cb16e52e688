"""End to end: real pip and uv install through a running shadowpi, then again with upstream down."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.clients import run_pip, run_uv
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import ProxyFactory

pytestmark = pytest.mark.e2e


def index_url(proxy: TestClient) -> str:
    return str(proxy.make_url("/simple/"))


def installed_versions(target: Path) -> dict[str, str]:
    """name -> version of the .dist-info directories pip/uv wrote."""
    found = {}
    for info in target.rglob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[name] = version
    return found


async def pip_install(proxy: TestClient, target: Path, *reqs: str) -> None:
    result = await run_pip(
        "install", "--target", str(target), "--index-url", index_url(proxy), "--no-compile", *reqs
    )
    assert result.returncode == 0, result.stderr


async def uv_install(proxy: TestClient, venv: Path, *reqs: str) -> None:
    created = await run_uv("venv", "--python", sys.executable, str(venv))
    assert created.returncode == 0, created.stderr
    result = await run_uv("pip", "install", "--python", str(venv), "--index-url", index_url(proxy), *reqs)
    assert result.returncode == 0, result.stderr


async def test_pip_installs_with_dependency_then_from_cache_with_upstream_down(
    make_proxy: ProxyFactory, populated_upstream: Upstream, tmp_path: Path
):
    """pip resolves depends-on-tiny -> tinylib 2.0 through shadowpi, and again once upstream is down."""
    proxy = await make_proxy(upstream={"page_ttl": 60})
    await pip_install(proxy, tmp_path / "first", "depends-on-tiny")
    assert installed_versions(tmp_path / "first") == {"depends_on_tiny": "1.0", "tinylib": "2.0"}
    assert populated_upstream.fake.hits["/files/tinylib/tinylib-2.0-py3-none-any.whl"] == 1

    populated_upstream.fake.down = True
    make_proxy.clock.advance(61)  # pages are now due for revalidation, which fails: stale copies are served
    await pip_install(proxy, tmp_path / "second", "depends-on-tiny")
    assert installed_versions(tmp_path / "second") == {"depends_on_tiny": "1.0", "tinylib": "2.0"}
    assert populated_upstream.fake.hits["/files/tinylib/tinylib-2.0-py3-none-any.whl"] == 1


async def test_uv_installs_with_dependency_then_from_cache_with_upstream_down(
    make_proxy: ProxyFactory, populated_upstream: Upstream, tmp_path: Path
):
    """uv pip install resolves through shadowpi (JSON API), and works again from the cache with upstream down."""
    proxy = await make_proxy(upstream={"page_ttl": 60})
    await uv_install(proxy, tmp_path / "venv1", "depends-on-tiny", "tinylib<2")
    site = tmp_path / "venv1" / "lib"
    assert installed_versions(site) == {"depends_on_tiny": "1.0", "tinylib": "1.0"}

    populated_upstream.fake.down = True
    make_proxy.clock.advance(61)
    await uv_install(proxy, tmp_path / "venv2", "depends-on-tiny", "tinylib<2")
    assert installed_versions(tmp_path / "venv2" / "lib") == {"depends_on_tiny": "1.0", "tinylib": "1.0"}


async def test_pip_download_verifies_and_gets_exact_bytes(
    proxy: TestClient, populated_upstream: Upstream, dists: SampleDists, tmp_path: Path
):
    """pip download fetches the exact upstream wheel through shadowpi (pip checks the #sha256 fragment)."""
    dest = tmp_path / "dl"
    result = await run_pip(
        "download", "--no-deps", "--only-binary", ":all:", "--dest", str(dest),
        "--index-url", index_url(proxy), "tinylib==1.0",
    )
    assert result.returncode == 0, result.stderr
    assert (dest / dists.tinylib_1.filename).read_bytes() == dists.tinylib_1.data


async def test_pip_refuses_a_file_whose_upstream_lied(
    make_proxy: ProxyFactory, upstream: Upstream, dists: SampleDists, tmp_path: Path
):
    """When upstream lies about a hash, pip fails loudly instead of installing the bytes."""
    upstream.fake.add(dists.tinylib_1, declared_sha256="0" * 64)
    proxy = await make_proxy()
    result = await run_pip(
        "install", "--target", str(tmp_path / "t"), "--index-url", index_url(proxy), "tinylib==1.0"
    )
    assert result.returncode != 0
    assert installed_versions(tmp_path / "t") == {}
