"""Admin commands as users run them (subprocesses on the data dir a live app also uses)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from proxy.keys import FILES
from tests.artifacts import build_wheel
from tests.clients import RunResult, run
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import TOKEN, add_token, blob_files, twine_upload

WHEEL = build_wheel("acme-tool", "1.0")
WHEEL_2 = build_wheel("acme-tool", "2.0")


async def shadowpi(data_dir: Path, *args: str, upstream: str | None = None) -> RunResult:
    extra = ["--upstream", upstream] if upstream else []
    return await run(sys.executable, "-m", "proxy", *args, "--data-dir", str(data_dir), *extra, timeout=60)


async def test_token_lifecycle(make_proxy: ProxyFactory, upstream: Upstream):
    """token create prints the token last; it uploads; list shows it without the secret; revoke stops it."""
    created = await shadowpi(make_proxy.data_dir, "token", "create", "--user", "ci", "--description", "CI")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("spi_")
    proxy = await make_proxy()
    assert (await twine_upload(proxy, WHEEL, auth=("__token__", token))).status == 200
    listed = await shadowpi(make_proxy.data_dir, "token", "list")
    assert "ci" in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    assert (await shadowpi(make_proxy.data_dir, "token", "revoke", "1")).returncode == 0
    assert (await twine_upload(proxy, WHEEL_2, auth=("__token__", token))).status == 403
    assert (await shadowpi(make_proxy.data_dir, "token", "revoke", "1")).returncode == 1  # already revoked


async def test_yank_unyank_delete_from_the_command_line(make_proxy: ProxyFactory, upstream: Upstream):
    """yank/unyank/delete change what the running server shows, immediately."""
    await add_token(make_proxy.data_dir, "ci")
    proxy = await make_proxy()
    for wheel in (WHEEL, WHEEL_2):
        assert (await twine_upload(proxy, wheel)).status == 200

    async def files() -> dict[str, object]:
        page = json.loads(await (await proxy.get("/simple/acme-tool/", headers=JSON)).text())
        return {f["filename"]: f["yanked"] for f in page["files"]}

    yanked = await shadowpi(make_proxy.data_dir, "yank", "Acme_Tool", "2.0", "--reason", "broken")
    assert yanked.returncode == 0, yanked.stderr
    assert await files() == {WHEEL.filename: False, WHEEL_2.filename: "broken"}
    assert (await shadowpi(make_proxy.data_dir, "unyank", "acme-tool", WHEEL_2.filename)).returncode == 0
    assert await files() == {WHEEL.filename: False, WHEEL_2.filename: False}
    assert (await shadowpi(make_proxy.data_dir, "delete", "acme-tool", "1.0")).returncode == 0
    assert await files() == {WHEEL_2.filename: False}
    assert WHEEL.sha256 not in blob_files(make_proxy.data_dir)
    missing = await shadowpi(make_proxy.data_dir, "delete", "acme-tool", "9.9")
    assert missing.returncode == 1
    assert "no private file or version" in missing.stderr


async def test_cache_usage_and_purge(proxy, make_proxy: ProxyFactory, populated_upstream: Upstream, dists: SampleDists):
    """cache usage counts cached upstream files; purge drops a project's page and files (refetched later)."""
    await proxy.get("/simple/tinylib/")
    url = f"/files/tinylib/{dists.tinylib_1.sha256}/{dists.tinylib_1.filename}"
    await (await proxy.get(url)).read()
    await proxy.app[FILES].settled()  # committed: the client had its bytes a moment earlier
    usage = await shadowpi(make_proxy.data_dir, "cache", "usage")
    assert f"cached upstream files: 1 ({dists.tinylib_1.size:,} bytes" in usage.stdout
    purged = await shadowpi(make_proxy.data_dir, "cache", "purge", "TinyLib")
    assert purged.returncode == 0, purged.stderr
    assert "1 cached file(s) deleted" in purged.stdout
    assert dists.tinylib_1.sha256 not in blob_files(make_proxy.data_dir)


async def test_audit_lists_shadowed_names(make_proxy: ProxyFactory, upstream: Upstream):
    """audit says which private projects also exist upstream (and asks upstream only when run)."""
    upstream.fake.add(build_wheel("acme-tool", "99.0"))
    await add_token(make_proxy.data_dir, "ci")
    proxy = await make_proxy()
    await twine_upload(proxy, WHEEL)
    await twine_upload(proxy, build_wheel("acme-only-here", "1.0"))
    assert not any("acme" in r for r in upstream.fake.requests)
    audit = await shadowpi(make_proxy.data_dir, "audit", upstream=upstream.url)
    assert audit.returncode == 0, audit.stderr
    assert "acme-tool" in audit.stdout and "SHADOWED" in audit.stdout
    assert "acme-only-here" in audit.stdout and "private only" in audit.stdout
    assert "1 of 2 private project(s) also exist upstream." in audit.stdout
    assert TOKEN not in audit.stdout
