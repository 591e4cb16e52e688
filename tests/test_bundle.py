"""Export/import across an air gap: an online shadowpi (A) exports, a fresh data dir (B) imports and serves offline."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from proxy.backends.changes import Topic
from proxy.backends.records import PrivateFile, StoredPage
from proxy.backends.sqlite import DB_FILENAME
from proxy.bundle.command import add_bundle_parsers, export_command, import_command, run_export, run_import
from proxy.bundle.manifest import BundleError, parse_manifest, parse_time, render_manifest_sha256
from proxy.cli import config_from_args
from proxy.config_load import build_config
from proxy.keys import FILES
from proxy.simple.html import parse_index_html, parse_project_html
from proxy.simple.json import parse_project_json
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from tests.artifacts import Artifact, build_wheel
from tests.clients import run, run_pip, run_uv
from tests.conftest import SampleDists, Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import add_token, blob_files, twine_upload
from tests.stores import data_dir_backends, data_dir_meta

PRIVATE = build_wheel("acme-internal", "1.0.0")


async def fetch(proxy: TestClient, project: str, filenames: set[str]) -> None:
    """GET the project page and each named file (and its PEP 658 metadata) through shadowpi."""
    base = f"/simple/{project}/"
    page = json.loads(await (await proxy.get(base, headers=JSON)).text())
    for entry in page["files"]:
        if entry["filename"] in filenames:
            url = urljoin(base, entry["url"])
            for suffix in ("", ".metadata") if entry["core-metadata"] else ("",):
                resp = await proxy.get(url + suffix)
                assert resp.status == 200
                await resp.read()
    await proxy.app[FILES].settled()  # clients get their last byte before the commit


async def listed(proxy: TestClient, project: str) -> dict[str, dict[str, Any]]:
    resp = await proxy.get(f"/simple/{project}/", headers=JSON)
    assert resp.status == 200, await resp.text()
    return {entry["filename"]: entry for entry in json.loads(await resp.text())["files"]}


async def download(proxy: TestClient, project: str, entry: dict[str, Any], suffix: str = "") -> bytes:
    resp = await proxy.get(urljoin(f"/simple/{project}/", entry["url"]) + suffix)
    assert resp.status == 200
    return await resp.read()


async def state(data_dir: Path) -> tuple[object, ...]:
    """Everything an import may change in a data dir: blob files and every bundle-relevant table."""
    if not (data_dir / DB_FILENAME).exists():
        return (frozenset(blob_files(data_dir)),)
    async with data_dir_meta(data_dir) as db:
        return (
            frozenset(blob_files(data_dir)),
            await db.bundle_pages(),
            await db.bundle_private_files(),
            await db.bundle_deleted_files(),
            await db.bundle_upstream_files(),
            sorted(await db.bundle_blob_times()),
        )


def move_clock_past(factory: ProxyFactory, bundle: Path) -> None:
    """A's server records blobs with its injected clock: move it to an hour after the bundle was made."""
    created = parse_manifest((bundle / "manifest.json").read_bytes()).created_at
    factory.clock.now = parse_time(created).timestamp() + 3600


@dataclass
class Env:
    """Data dir A (filled through a real online shadowpi) and a fresh data dir B."""

    a: ProxyFactory
    b: ProxyFactory
    upstream: Upstream
    tmp: Path

    async def export(self, name: str = "bundle", **options: Any) -> tuple[Path, list[str]]:
        out: list[str] = []
        path = self.tmp / name
        assert await export_command(self.a.config(), path, out=out.append, **options) == 0
        return path, out

    async def import_(self, path: Path) -> list[str]:
        out: list[str] = []
        assert await import_command(self.b.config(), path, out=out.append) == 0
        return out

    async def offline_b(self) -> TestClient:
        return await self.b(upstream={"offline": True})


@pytest.fixture
async def env(
    make_proxy: ProxyFactory, aiohttp_client: AiohttpClient, tmp_path: Path, populated_upstream: Upstream,
    dists: SampleDists,
) -> Env:
    """A holds tinylib 1.0 (wheel) and 2.0 (sdist) with metadata, a page-only depends-on-tiny, and a private wheel."""
    await add_token(make_proxy.data_dir, "ci")
    proxy = await make_proxy()
    await fetch(proxy, "tinylib", {dists.tinylib_1.filename, dists.tinylib_2_sdist.filename})
    await listed(proxy, "depends-on-tiny")  # page cached, no file: nothing of it can be served offline
    assert (await twine_upload(proxy, PRIVATE)).status == 200
    await proxy.close()
    b = ProxyFactory(aiohttp_client, tmp_path / "b", populated_upstream)
    return Env(make_proxy, b, populated_upstream, tmp_path)


async def assert_serves(proxy: TestClient, project: str, artifacts: list[Artifact]) -> None:
    """The page lists exactly these files, and they and their metadata download byte for byte."""
    files = await listed(proxy, project)
    assert sorted(files) == sorted(a.filename for a in artifacts)
    for artifact in artifacts:
        assert await download(proxy, project, files[artifact.filename]) == artifact.data
        assert await download(proxy, project, files[artifact.filename], ".metadata") == artifact.metadata


@pytest.mark.parametrize("name", ["bundle", "bundle.tar"])
async def test_round_trip_serves_exactly_the_exported_files_offline(env: Env, dists: SampleDists, name: str):
    """A bundle (directory or .tar) imported into a fresh data dir is served offline: exact pages, exact bytes,
    with the upstream files pinned against eviction."""
    path, out = await env.export(name)
    assert out[0] == "Exported 1 upstream and 1 private project(s): 6 file(s), " + out[0].split("file(s), ")[1]
    lines = await env.import_(path)
    assert lines[1].startswith("Imported 6 new file(s)")
    # Offline, an evicted upstream file could never come back: imported ones are pinned.
    async with data_dir_meta(env.b.data_dir) as db:
        usage = await db.cache_usage()
        assert (usage.files, usage.pinned_bytes) == (4, usage.bytes)
    env.upstream.fake.clear_log()
    b = await env.offline_b()
    await assert_serves(b, "tinylib", [dists.tinylib_1, dists.tinylib_2_sdist])
    await assert_serves(b, "acme-internal", [PRIVATE])
    assert (await b.get("/simple/depends-on-tiny/")).status == 404
    index = parse_index_html(await (await b.get("/simple/")).text())
    assert index.names == ("acme-internal", "tinylib")
    assert env.upstream.fake.requests == []


def flip_blob_byte(bundle: Path) -> None:
    blob = next((bundle / "blobs").iterdir())
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))


def delete_blob(bundle: Path) -> None:
    next((bundle / "blobs").iterdir()).unlink()


def add_extra_file(bundle: Path) -> None:
    (bundle / "pages" / "notes.txt").write_text("hello")


def rewrite_manifest(bundle: Path, change: Any) -> None:
    """Edit manifest.json and re-sign it, so only the edit itself can be refused."""
    doc = json.loads((bundle / "manifest.json").read_bytes())
    change(doc)
    data = json.dumps(doc).encode()
    (bundle / "manifest.json").write_bytes(data)
    (bundle / "manifest.sha256").write_bytes(render_manifest_sha256(data))


def manifest_dotdot(bundle: Path) -> None:
    (bundle.parent / "x").write_text("outside")
    sha = hashlib.sha256(b"outside").hexdigest()
    rewrite_manifest(bundle, lambda doc: doc["files"].append({"path": "../x", "size": 7, "sha256": sha}))


def manifest_absolute(bundle: Path) -> None:
    rewrite_manifest(bundle, lambda doc: doc["files"].append({"path": "/etc/hostname", "size": 1, "sha256": "0" * 64}))


def edit_manifest_unsigned(bundle: Path) -> None:
    (bundle / "manifest.json").write_bytes((bundle / "manifest.json").read_bytes().replace(b'"size": ', b'"size": 1'))


def edit_page(bundle: Path) -> None:
    page = bundle / "pages" / "tinylib.json"
    page.write_bytes(page.read_bytes().replace(b"tinylib-1.0", b"tinylib-9.0"))


def symlinked_blob(bundle: Path) -> None:
    blob = next((bundle / "blobs").iterdir())
    blob.unlink()
    blob.symlink_to("/etc/hostname")


def to_tar(bundle: Path, extra: tarfile.TarInfo | None = None) -> Path:
    """The bundle as a tar of its contents, plus an extra (hostile) member."""
    target = bundle.with_name("hand.tar")
    with tarfile.open(target, "w") as tar:
        tar.add(bundle, arcname=".")
        if extra is not None:
            tar.addfile(extra, None)
    return target


def tar_dotdot(bundle: Path) -> Path:
    return to_tar(bundle, tarfile.TarInfo("../evil"))


def tar_symlink(bundle: Path) -> Path:
    link = tarfile.TarInfo("blobs/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return to_tar(bundle, link)


def tar_truncated(bundle: Path) -> Path:
    target = to_tar(bundle)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def tar_truncated_at_header(bundle: Path) -> Path:
    """Cut inside the header of the last member: tarfile itself would just see a shorter archive."""
    target = to_tar(bundle)
    with tarfile.open(target) as tar:
        last = tar.getmembers()[-1]
    target.write_bytes(target.read_bytes()[: last.offset + 100])
    return target


def tar_gzipped(bundle: Path) -> Path:
    target = bundle.with_name("bundle.tar")
    with tarfile.open(target, "w:gz") as tar:
        tar.add(bundle, arcname=".")
    return target


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (flip_blob_byte, r"blobs/\w+ is damaged: its sha256 is"),
        (delete_blob, r"is missing blobs/\w+"),
        (add_extra_file, "has a file its manifest does not list: pages/notes.txt"),
        (manifest_dotdot, "bundle path '../x' has an empty, '.' or '..' component"),
        (manifest_absolute, "bundle path '/etc/hostname' is absolute"),
        (edit_manifest_unsigned, "manifest.json does not match manifest.sha256"),
        (lambda b: (b / "manifest.sha256").unlink(), "has no manifest.sha256"),
        (edit_page, "pages/tinylib.json is damaged"),
        (symlinked_blob, "is not a regular file"),
        (tar_dotdot, "bundle path '../evil' has an empty, '.' or '..' component"),
        (tar_symlink, "blobs/link is not a regular file"),
        (tar_truncated, r"hand.tar is truncated"),
        (tar_truncated_at_header, r"hand.tar is truncated \(it has no end-of-archive marker\)"),
        (tar_gzipped, "not a readable uncompressed tar"),
        (lambda b: b.with_name("nowhere"), "no such bundle"),
    ],
)
async def test_damaged_bundles_are_refused_and_change_nothing(env: Env, damage: Any, message: str):
    """A damaged or hostile bundle is refused with one line naming the problem, and B is not even created."""
    bundle, _out = await env.export()
    target = damage(bundle) or bundle
    with pytest.raises(BundleError, match=message) as caught:
        await env.import_(target)
    assert "\n" not in str(caught.value)
    assert not env.b.data_dir.exists()


async def test_second_import_changes_nothing_and_says_so(env: Env):
    """Importing the same bundle twice: the second import changes nothing and reports that."""
    bundle, _out = await env.export()
    await env.import_(bundle)
    before = await state(env.b.data_dir)
    lines = await env.import_(bundle)
    assert lines[1] == f"Nothing to do: everything in {bundle} is already in {env.b.data_dir}."
    assert await state(env.b.data_dir) == before


async def test_incremental_bundle_carries_only_new_blobs(env: Env, dists: SampleDists):
    """--since a previous manifest: only the new blob, the full current page; imports apply in order only."""
    first, _out = await env.export("first")
    move_clock_past(env.a, first)
    proxy = await env.a()
    await fetch(proxy, "tinylib", {dists.tinylib_2.filename})  # its METADATA equals the sdist's: not new
    await proxy.close()
    second, out = await env.export("second", since=str(first / "manifest.json"))
    manifest = parse_manifest((second / "manifest.json").read_bytes())
    assert set(manifest.blobs) == {dists.tinylib_2.sha256}
    assert {f.path for f in manifest.files} == {
        "deleted.json", "pages/tinylib.json", "private/acme-internal.json", f"blobs/{dists.tinylib_2.sha256}"
    }
    assert out[1].startswith("Incremental: only files new since ")
    page = json.loads((second / "pages" / "tinylib.json").read_bytes())["page"]
    assert len(page["files"]) == 3

    with pytest.raises(BundleError, match="import the earlier bundles first"):
        await env.import_(second)
    assert not env.b.data_dir.exists()  # a failed import into a new data dir leaves nothing behind
    await env.import_(first)
    await env.import_(second)
    b = await env.offline_b()
    await assert_serves(b, "tinylib", [dists.tinylib_1, dists.tinylib_2, dists.tinylib_2_sdist])


@pytest.mark.parametrize(("since", "blobs"), [("1970-01-01", 6), ("2999-01-01T00:00Z", 0)])
async def test_since_a_date(env: Env, since: str, blobs: int):
    """--since DATE: blobs recorded (or private files uploaded) after that UTC time (A's test clock is 1970)."""
    bundle, _out = await env.export(since=since)
    manifest = parse_manifest((bundle / "manifest.json").read_bytes())
    assert len(manifest.blobs) == blobs
    pages = {f.path for f in manifest.files if f.path.startswith("pages/")}
    assert pages == ({"pages/tinylib.json"} if blobs else set())
    assert manifest.entry("private/acme-internal.json") is not None  # private records always travel


async def test_project_filter(env: Env):
    """--project limits the export; an unknown name is refused."""
    bundle, _out = await env.export(projects=["TinyLib"])
    assert {p.name for p in (bundle / "pages").iterdir()} == {"tinylib.json"}
    assert not (bundle / "private").exists()
    with pytest.raises(BundleError, match="no cached or private project named nope"):
        await env.export("other", projects=["nope"])


async def test_private_clash_is_refused_and_changes_nothing(env: Env):
    """B's own acme-internal 1.0.0 with other bytes: the import is refused and B stays as it was."""
    await add_token(env.b.data_dir, "ci")
    b = await env.b()
    assert (await twine_upload(b, build_wheel("acme-internal", "1.0.0", module_source="X = 1\n"))).status == 200
    await b.close()
    bundle, _out = await env.export()
    before = await state(env.b.data_dir)
    with pytest.raises(BundleError, match=f"private file {PRIVATE.filename} already exists here with other bytes"):
        await env.import_(bundle)
    assert await state(env.b.data_dir) == before


async def test_deletions_travel(env: Env):
    """A private file deleted at A is removed from B by the next bundle; its name and filename stay reserved."""
    first, _out = await env.export("first")
    await env.import_(first)
    async with data_dir_meta(env.a.data_dir) as db:
        await db.delete_private_files(await db.private_files(NormalizedName("acme-internal")))
    second, _out = await env.export("second")
    lines = await env.import_(second)
    assert "1 removed; 1 deleted filename(s) recorded" in lines[1]
    b = await env.offline_b()
    assert (await b.get("/simple/acme-internal/")).status == 404
    async with data_dir_meta(env.b.data_dir) as db:
        assert await db.deleted_sha256(PRIVATE.filename) == PRIVATE.sha256
    fresh = ProxyFactory(env.b.client_factory, env.tmp / "c", env.upstream)
    assert await import_command(fresh.config(), second, out=lambda _line: None) == 0
    async with data_dir_meta(fresh.data_dir) as db:  # the name, now without files, stays private on a fresh side too
        assert NormalizedName("acme-internal") in await db.private_projects()
        assert await db.deleted_sha256(PRIVATE.filename) == PRIVATE.sha256


async def test_import_under_a_running_offline_server(env: Env, dists: SampleDists):
    """With B's offline server running, a project it did not know is served right after the import."""
    bundle, _out = await env.export()
    b = await env.offline_b()
    assert (await b.get("/simple/tinylib/")).status == 404
    await env.import_(bundle)
    await assert_serves(b, "tinylib", [dists.tinylib_1, dists.tinylib_2_sdist])


async def test_running_offline_server_sees_a_page_merged_by_import(env: Env, dists: SampleDists):
    """With B's offline server running, an incremental import adds files to a page it has already served."""
    first, _out = await env.export("first")
    await env.import_(first)
    b = await env.offline_b()
    assert len(await listed(b, "tinylib")) == 2
    move_clock_past(env.a, first)
    proxy = await env.a()
    await fetch(proxy, "tinylib", {dists.tinylib_2.filename})
    await proxy.close()
    second, _out = await env.export("second", since=str(first))
    await env.import_(second)
    assert len(await listed(b, "tinylib")) == 3


async def test_import_changes_stamps_other_connections_see(env: Env):
    """An import that adds pages and private files (in another process) changes both change stamps a running server
    on that data dir watches."""
    bundle, _out = await env.export()
    async with data_dir_backends(env.b.data_dir) as backends:
        watched = (Topic.PRIVATE, Topic.PAGES)
        before = {topic: backends.changes.stamp(topic) for topic in watched}
        await env.import_(bundle)
        assert all(backends.changes.stamp(topic) != before[topic] for topic in watched)


async def test_static_index(env: Env, dists: SampleDists):
    """--static writes PEP 503/691 pages whose relative links reach files with the listed sha256."""
    _bundle, out = await env.export(static=env.tmp / "static")
    assert out[-1].startswith(f"Static index: {env.tmp / 'static'} (")
    expected = {"acme-internal": [PRIVATE], "tinylib": [dists.tinylib_1, dists.tinylib_2_sdist]}
    check_static(env.tmp / "static" / "simple", expected)


async def test_static_index_leaves_out_a_filename_too_long_to_store(env: Env, dists: SampleDists):
    """A private file stored before uploads limited filename length (325 characters) is left out of --static with
    a warning naming it; everything else is written, and the bundle itself carries it."""
    long_name = "acme_internal-2.0.0-py3-none-linux_" + "x" * 286 + ".whl"
    assert len(long_name) == 325
    async with data_dir_backends(env.a.data_dir) as backends:
        blob = await backends.blobs.put_bytes(PRIVATE.data)
        await backends.meta.add_private_file(PrivateFile(
            filename=long_name, project=NormalizedName("acme-internal"), version="2.0.0", sha256=blob.sha256,
            blake2_256=None, size=blob.size, requires_python=None, metadata_sha256=None, yanked=None,
            upload_time="2024-01-01T00:00:00.000000Z", uploaded_by="ci",
        ))
    bundle, out = await env.export(static=env.tmp / "static")
    shown = f"{long_name[:40]}...{long_name[-40:]}"
    assert out[-2] == (
        f"warning: static index: left out acme-internal/{shown}: the filename is too long "
        "(325 bytes; at most 246 fit in a file name beside '.metadata')"
    )
    assert out[-1].startswith(f"Static index: {env.tmp / 'static'} (")
    expected = {"acme-internal": [PRIVATE], "tinylib": [dists.tinylib_1, dists.tinylib_2_sdist]}
    check_static(env.tmp / "static" / "simple", expected)
    assert long_name in (bundle / "private" / "acme-internal.json").read_text()  # the bundle keeps it


def check_static(simple: Path, expected: dict[str, list[Artifact]]) -> None:
    """Each page (HTML and JSON alike) lists exactly the artifacts; links resolve to their bytes and metadata."""
    assert parse_index_html((simple / "index.html").read_text()).names == tuple(sorted(expected))
    for project, artifacts in expected.items():
        page_url = (simple / project).as_uri() + "/"
        name = NormalizedName(project)
        html_page = parse_project_html((simple / project / "index.html").read_text(), page_url, name)
        json_page = parse_project_json((simple / project / "index.json").read_text(), page_url, name)
        assert [f.url for f in json_page.files] == [f.url for f in html_page.files]
        by_name = {a.filename: a for a in artifacts}
        assert sorted(f.filename for f in html_page.files) == sorted(by_name)
        for dist in html_page.files:
            path = Path(unquote(urlsplit(dist.url).path))
            assert path.read_bytes() == by_name[dist.filename].data
            assert dist.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
            assert path.with_name(path.name + ".metadata").read_bytes() == by_name[dist.filename].metadata


async def test_tar_made_by_hand_is_accepted(env: Env, dists: SampleDists):
    """A tar of the bundle directory made with `tar -C bundle .` (./ prefixes, directory entries) imports."""
    bundle, _out = await env.export()
    shutil.move(to_tar(bundle), env.tmp / "hand-made.tar")
    await env.import_(env.tmp / "hand-made.tar")
    b = await env.offline_b()
    await assert_serves(b, "tinylib", [dists.tinylib_1, dists.tinylib_2_sdist])


async def test_existing_or_unwritable_bundle_path_is_refused(env: Env):
    """export never overwrites an existing OUT, and an unwritable one is one line, not a traceback."""
    bundle, _out = await env.export()
    with pytest.raises(BundleError, match="already exists"):
        await env.export(bundle.name)
    with pytest.raises(BundleError, match=r"cannot write .*manifest\.json/inside"):
        await env.export("bundle/manifest.json/inside")


@pytest.mark.e2e
async def test_pip_and_uv_install_offline_from_an_imported_bundle(env: Env, dists: SampleDists):
    """What pip and uv fetched through A installs through B, offline, with upstream down, private package included."""
    proxy = await env.a()
    url = str(proxy.make_url("/simple/"))
    fetched = await run_pip("download", "--dest", str(env.tmp / "dl"), "--index-url", url, "depends-on-tiny")
    assert fetched.returncode == 0, fetched.stderr
    await proxy.close()
    bundle, _out = await env.export("bundle.tar")
    await env.import_(bundle)
    env.upstream.fake.down = True
    env.upstream.fake.clear_log()
    b = await env.offline_b()
    url = str(b.make_url("/simple/"))
    target = env.tmp / "pip-target"
    pip = await run_pip("install", "--target", str(target), "--index-url", url, "depends-on-tiny", "acme-internal")
    assert pip.returncode == 0, pip.stderr
    assert {p.name for p in target.glob("*.dist-info")} == {
        "depends_on_tiny-1.0.dist-info", "tinylib-2.0.dist-info", "acme_internal-1.0.0.dist-info"
    }
    venv = env.tmp / "venv"
    assert (await run_uv("venv", "--python", sys.executable, str(venv))).returncode == 0
    uv = await run_uv("pip", "install", "--python", str(venv), "--index-url", url, "depends-on-tiny", "acme-internal")
    assert uv.returncode == 0, uv.stderr
    assert env.upstream.fake.requests == []


# --- the commands as the CLI runs them (asyncio.run inside), with exit codes and output ---


def bundle_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shadowpi")
    add_bundle_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


async def fill_data_dir(data_dir: Path, artifact: Artifact, versions: tuple[str, ...] = ()) -> None:
    """A data dir holding one cached upstream page and its one file, written directly (no server). The page
    lists `versions` (in that order, as upstream may) besides the artifact's own."""
    async with data_dir_backends(data_dir) as backends:
        blob = await backends.blobs.put_bytes(artifact.data)
        await backends.meta.record_blob(blob.sha256, blob.size)
        dist = DistFile(artifact.filename, f"https://up.example/{artifact.filename}", {"sha256": blob.sha256})
        page = ProjectPage(artifact.project, (dist,), versions or (artifact.version,))
        await backends.meta.put_page(artifact.project, StoredPage(page, '"etag"', None, 1.0))


def run_cli(*argv: str) -> int:
    args = bundle_parser().parse_args(argv)
    config = config_from_args(args)
    return run_export(args, config) if args.command == "export" else run_import(args, config)


def test_commands_print_summaries_and_fail_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """export/import exit 0 with a summary; a damaged bundle exits 1 with one 'shadowpi: …' line on stderr."""
    wheel = build_wheel("cli-pkg", "1.0")
    asyncio.run(fill_data_dir(tmp_path / "a", wheel))
    tar = tmp_path / "out.tar"
    assert run_cli("export", str(tar), "--data-dir", str(tmp_path / "a")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Exported 1 upstream and 0 private project(s): 1 file(s), {wheel.size} bytes."
    assert out[1] == f"Bundle: {tar} (5 files including the manifest)"
    assert run_cli("import", str(tar), "--data-dir", str(tmp_path / "b")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Verified {tar}: manifest and 3 files, ")
    assert out[1].startswith(f"Imported 1 new file(s) of {wheel.size} bytes, 1 upstream page(s) added or updated,")

    with tarfile.open(tar) as archive:
        blob = next(m for m in archive.getmembers() if m.name.startswith("blobs/"))
    data = bytearray(tar.read_bytes())
    data[blob.offset_data] ^= 0xFF
    tar.write_bytes(bytes(data))
    assert run_cli("import", str(tar), "--data-dir", str(tmp_path / "c")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(rf"shadowpi: {blob.name} is damaged: its sha256 is \w+, the manifest says \w+\n", captured.err)
    assert not (tmp_path / "c").exists()


def test_reimport_reports_nothing_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Importing the same bundle again is a no-op, as the README promises: "Nothing to do" and an unchanged data
    dir, also for a page whose versions upstream listed in its own order (they used to be re-sorted, so every
    page counted as "added or updated" again)."""
    wheel = build_wheel("cli-pkg", "1.0")
    asyncio.run(fill_data_dir(tmp_path / "a", wheel, versions=("2.0", "1.0", "0.9")))
    tar = tmp_path / "out.tar"
    assert run_cli("export", str(tar), "--data-dir", str(tmp_path / "a")) == 0
    assert run_cli("import", str(tar), "--data-dir", str(tmp_path / "b")) == 0
    before = asyncio.run(state(tmp_path / "b"))
    capsys.readouterr()
    assert run_cli("import", str(tar), "--data-dir", str(tmp_path / "b")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"Nothing to do: everything in {tar} is already in {tmp_path / 'b'}."
    assert asyncio.run(state(tmp_path / "b")) == before


def test_export_shows_progress_a_line_per_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Where stderr is not a terminal, export prints a line per step on stderr (stdout keeps the summary)."""
    wheel = build_wheel("cli-pkg", "1.0")
    asyncio.run(fill_data_dir(tmp_path / "a", wheel))
    assert run_cli("export", str(tmp_path / "out"), "--data-dir", str(tmp_path / "a")) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == ["exporting: reading the data dir", "exporting: 3 files"]
    assert [line.split(",")[0] for line in err[2:]] == [f"exporting: {n}/3 files" for n in (1, 2, 3)]


async def test_failed_cli_import_leaves_no_data_dir(tmp_path: Path):
    """`shadowpi import` of a damaged bundle into a data dir that does not exist yet: exit 1, one line, and no
    empty data dir is left behind (the command used to create it before verifying the bundle)."""
    wheel = build_wheel("cli-pkg", "1.0")
    await fill_data_dir(tmp_path / "a", wheel)
    bundle = tmp_path / "bundle"
    assert await export_command(build_config({"server": {"data_dir": str(tmp_path / "a")}}), bundle,
                                out=lambda _line: None) == 0
    flip_blob_byte(bundle)
    fresh = tmp_path / "fresh"
    result = await run(sys.executable, "-m", "proxy", "import", str(bundle), "--data-dir", str(fresh))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"shadowpi: data dir {fresh} (--data-dir)"
    assert re.fullmatch(r"shadowpi: blobs/\w+ is damaged: its sha256 is \w+, the manifest says \w+",
                        result.stderr.splitlines()[1])
    assert not fresh.exists()
