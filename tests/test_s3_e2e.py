"""End to end on S3 storage: `shadowpi serve --storage s3://...` (a real process on SeaweedFS) with real pip, uv
and twine: installs with dependencies, a private upload, a yank; then a restart on an empty data dir with the same
bucket and database while the upstream is down; and `[storage] redirect = true`, where pip and uv follow the 302
to a presigned URL and check the hashes of what the object store sends them."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.artifacts import Artifact, build_wheel
from tests.backends.buckets import bucket_of
from tests.clients import clean_env, run, run_pip, run_uv
from tests.conftest import Upstream
from tests.engines.seaweed import S3Bucket
from tests.test_e2e_publish import client_env, twine, write_dist
from tests.test_serve import Server, serving

pytestmark = [pytest.mark.e2e, pytest.mark.engines]

PAYLOAD = 200 * 1024  # every wheel here is bigger than 64 KiB: the size from which a file is redirected
BIG = build_wheel("bigdep", "1.0", payload_size=PAYLOAD)
NEEDS_BIG = build_wheel("needs-big", "1.0", requires_dist=["bigdep>=1"], payload_size=PAYLOAD)
PRIVATE = build_wheel("acme-internal", "1.0.0", requires_dist=["bigdep>=1"], payload_size=PAYLOAD)
TAMPERED = build_wheel("bigdep", "1.0", payload_size=PAYLOAD, module_source="raise SystemExit('tampered')\n")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def installed(target: Path) -> set[str]:
    """The .dist-info directory names pip or uv wrote under `target`."""
    return {info.name for info in target.rglob("*.dist-info")}


def expected(*artifacts: Artifact) -> set[str]:
    return {f"{a.filename.split('-')[0]}-{a.filename.split('-')[1]}.dist-info" for a in artifacts}


async def pip_install(server: Server, target: Path, *reqs: str) -> set[str]:
    result = await run_pip("install", "--no-compile", "--target", str(target), "--index-url",
                           f"{server.url}/simple/", *reqs)
    assert result.returncode == 0, result.stderr
    return installed(target)


async def uv_install(server: Server, venv: Path, *reqs: str) -> set[str]:
    created = await run_uv("venv", "--python", sys.executable, str(venv))
    assert created.returncode == 0, created.stderr
    result = await run_uv("pip", "install", "--python", str(venv), "--index-url", f"{server.url}/simple/", *reqs)
    assert result.returncode == 0, result.stderr
    return installed(venv)


async def shadowpi(*args: str, common: list[str]) -> str:
    """`shadowpi ARGS` (a command-line process on the same database and storage); its stdout."""
    result = await run(sys.executable, "-m", "proxy", *args, *common, env=clean_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def yanked(server: Server, project: str) -> list[object]:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/simple/{project}/",
                                                               headers=JSON) as resp:
        assert resp.status == 200
        return [f.get("yanked", False) for f in (await resp.json(content_type=None))["files"]]


@pytest.fixture
def big_upstream(upstream: Upstream) -> Upstream:
    """The fake upstream with bigdep and needs-big (both > 64 KiB)."""
    upstream.fake.add(BIG)
    upstream.fake.add(NEEDS_BIG)
    return upstream


async def test_serve_on_s3_then_again_on_an_empty_data_dir_with_upstream_down(
    tmp_path: Path, s3_bucket: S3Bucket, big_upstream: Upstream
):
    """pip installs needs-big with its dependency through a shadowpi on S3; twine uploads a private package that
    pip and uv install; `shadowpi yank` yanks it. Then the process stops, the data dir is thrown away and the
    upstream goes down: a new process on the same bucket and database serves all of it (the private package, the
    cached upstream files) with not one request to the upstream."""
    database = f"sqlite://{tmp_path / 'meta' / 'shadowpi.sqlite3'}"
    first_dir, second_dir = tmp_path / "data-1", tmp_path / "data-2"
    common = ["--database", database, "--storage", s3_bucket.url]
    token = (await shadowpi("token", "create", "--user", "ci", "--data-dir", str(first_dir),
                            common=common)).strip().splitlines()[-1]
    async with serving(first_dir, big_upstream, *common) as server:
        assert await pip_install(server, tmp_path / "pip-1", "needs-big") == expected(NEEDS_BIG, BIG)
        uploaded = await twine("--repository-url", f"{server.url}/legacy/", "-u", "__token__", "-p", token,
                               *write_dist(tmp_path / "dist", PRIVATE), env=client_env(tmp_path / "home"))
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        assert await pip_install(server, tmp_path / "pip-2", "acme-internal") == expected(PRIVATE, BIG)
        assert await uv_install(server, tmp_path / "uv-1", "acme-internal") >= expected(PRIVATE, BIG)
        await shadowpi("yank", "acme-internal", "1.0.0", "--reason", "broken", "--data-dir", str(first_dir),
                       common=common)
        assert await yanked(server, "acme-internal") == ["broken"]
        assert await server.stop() == 0
    assert big_upstream.fake.hits[f"/files/bigdep/{BIG.filename}"] == 1
    assert "acme" not in " ".join(big_upstream.fake.requests)  # private: never asked upstream

    big_upstream.fake.down = True
    big_upstream.fake.clear_log()
    async with serving(second_dir, big_upstream, *common) as server:
        assert await pip_install(server, tmp_path / "pip-3", "needs-big") == expected(NEEDS_BIG, BIG)
        assert await pip_install(server, tmp_path / "pip-4", "acme-internal==1.0.0") == expected(PRIVATE, BIG)
        assert await uv_install(server, tmp_path / "uv-2", "acme-internal==1.0.0", "needs-big") >= expected(
            PRIVATE, NEEDS_BIG, BIG)
        assert await yanked(server, "acme-internal") == ["broken"]
        assert await server.stop() == 0
    # Only the start-up check of the upstream URL (proxy/upstream_check.py, which reports it down): no page, no file.
    assert big_upstream.fake.requests == ["/simple/"]
    assert not (second_dir / "files").exists() or not any((second_dir / "files").rglob("*.whl"))


def redirects(server: Server) -> list[str]:
    """The paths shadowpi answered with a 302, from its access log."""
    return [entry["path"].rpartition("/")[2] for entry in server.requests() if entry.get("status") == 302]


async def test_with_redirects_pip_and_uv_fetch_from_the_object_store_and_check_hashes(
    tmp_path: Path, s3_bucket: S3Bucket, big_upstream: Upstream
):
    """With `[storage] redirect = true`, a file still filling is streamed by shadowpi (the first install); a
    cached one (the second and third) is a 302 to a presigned URL that pip and uv follow. The bytes come from the
    object store: once the object is replaced by another valid wheel, pip and uv refuse it (the hash in the index
    page)."""
    config = tmp_path / "shadowpi.toml"
    config.write_text(f'[storage]\nurl = "{s3_bucket.url}"\nredirect = true\n')
    flags = ["--config", str(config), "--log-format", "json"]
    async with serving(tmp_path / "data", big_upstream, *flags) as server:
        assert await pip_install(server, tmp_path / "pip-1", "needs-big") == expected(NEEDS_BIG, BIG)
        assert redirects(server) == []
        assert await pip_install(server, tmp_path / "pip-2", "needs-big") == expected(NEEDS_BIG, BIG)
        assert sorted(redirects(server)) == sorted([BIG.filename, NEEDS_BIG.filename])
        assert await uv_install(server, tmp_path / "uv", "needs-big") >= expected(NEEDS_BIG, BIG)
        assert len(redirects(server)) == 4
        await replace_object(s3_bucket, BIG, TAMPERED.data)
        refused = await run_pip("install", "--no-compile", "--target", str(tmp_path / "pip-3"), "--index-url",
                                f"{server.url}/simple/", "bigdep")
        assert refused.returncode != 0
        assert "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stderr
        created = await run_uv("venv", "--python", sys.executable, str(tmp_path / "uv-refused"))
        assert created.returncode == 0, created.stderr
        refused = await run_uv("pip", "install", "--python", str(tmp_path / "uv-refused"), "--index-url",
                               f"{server.url}/simple/", "bigdep")
        assert refused.returncode != 0
        assert "hash mismatch" in refused.stderr.lower(), refused.stderr
        assert await server.stop() == 0
    assert big_upstream.fake.hits[f"/files/bigdep/{BIG.filename}"] == 1


async def replace_object(bucket: S3Bucket, artifact: Artifact, data: bytes) -> None:
    """Overwrite the object holding `artifact` with `data`, with the test's own S3 client (the store never would:
    its keys are content addresses)."""
    sha = hashlib.sha256(artifact.data).hexdigest()
    async with bucket_of(bucket.url) as found:
        assert found is not None
        key = f"{found.prefix}/blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}".lstrip("/")
        assert key in await found.keys()
        await found.client.put_object(Bucket=found.bucket, Key=key, Body=data)
