"""End to end, the air-gap story: warm for two platforms online, export, import offline, install with pip and uv."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from tests.artifacts import build_wheel
from tests.clients import run, run_pip, run_uv
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory

pytestmark = pytest.mark.e2e

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"
APP = build_wheel("webapp", "1.0", requires_dist=["weblib>=1", "winonly; sys_platform == 'win32'"])
LIB = build_wheel("weblib", "1.2", requires_dist=["webbase"])
LIB_OLD = build_wheel("weblib", "0.9")
BASE = build_wheel("webbase", "3.0")
WINONLY = build_wheel("winonly", "1.0")
FAST_LINUX = build_wheel("fastext", "2.0", tag=f"{CP}-{CP}-manylinux_2_28_x86_64")
FAST_WIN = build_wheel("fastext", "2.0", tag=f"{CP}-{CP}-win_amd64")
UNREACHABLE = "http://127.0.0.1:9/simple/"  # discard port: nothing listens, so any upstream use would fail


async def shadowpi(*args: str) -> str:
    result = await run(sys.executable, "-m", "proxy", *args, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(sys.platform != "linux" or not sys.maxsize > 2**32, reason="installs a linux x86_64 wheel")
async def test_warm_export_import_then_install_offline(
    aiohttp_client: AiohttpClient, upstream: Upstream, tmp_path: Path
):
    """The whole story: nothing the offline side serves was ever fetched by it, and both installers succeed."""
    for artifact in (APP, LIB, LIB_OLD, BASE, WINONLY, FAST_LINUX, FAST_WIN):
        upstream.fake.add(artifact)
    online, offline = tmp_path / "online", tmp_path / "offline"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("webapp\nfastext==2.0\n")

    summary = await shadowpi(
        "warm", "-r", str(requirements), "--python", PY, "--platform", "manylinux_2_28_x86_64",
        "--platform", "win_amd64", "--data-dir", str(online), "--upstream", upstream.url,
    )
    assert "result: OK" in summary
    fetched = {path.rsplit("/", 1)[-1] for path in upstream.fake.requests if path.startswith("/files/")}
    wanted = {a.filename for a in (APP, LIB, BASE, WINONLY, FAST_LINUX, FAST_WIN)}
    assert wanted <= fetched and LIB_OLD.filename not in fetched  # transitive, per platform, newest only

    bundle = tmp_path / "carry.tar"
    await shadowpi("export", str(bundle), "--data-dir", str(online))
    imported = await shadowpi("import", str(bundle), "--data-dir", str(offline))
    assert "Imported" in imported
    upstream.fake.clear_log()
    upstream.fake.down = True

    proxy = await ProxyFactory(aiohttp_client, offline, upstream)(upstream={"offline": True, "url": UNREACHABLE})
    page = await (await proxy.get("/simple/fastext/", headers=JSON)).json(content_type=None)
    assert sorted(f["filename"] for f in page["files"]) == sorted([FAST_LINUX.filename, FAST_WIN.filename])
    index = str(proxy.make_url("/simple/"))

    pip = await run_pip("install", "--target", str(tmp_path / "pip"), "--index-url", index, "-r", str(requirements))
    assert pip.returncode == 0, pip.stderr
    installed = sorted(p.name for p in (tmp_path / "pip").glob("*.dist-info"))
    assert installed == ["fastext-2.0.dist-info", "webapp-1.0.dist-info", "webbase-3.0.dist-info",
                         "weblib-1.2.dist-info"]

    assert (await run_uv("venv", "--python", sys.executable, str(tmp_path / "venv"))).returncode == 0
    uv = await run_uv("pip", "install", "--python", str(tmp_path / "venv"), "--index-url", index,
                      "-r", str(requirements))
    assert uv.returncode == 0, uv.stderr
    assert "weblib==1.2" in uv.stderr and "fastext==2.0" in uv.stderr
    assert upstream.fake.requests == []
