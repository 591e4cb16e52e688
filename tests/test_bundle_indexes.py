"""Bundles and named indexes: each private file travels with its index (and its project's owners and maintainers),
`export --index` picks indexes, `export --static --index` writes that index's view, `import` restores every file
into its recorded index or refuses an index it does not know, and bundles written before indexes still import."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from pytest_aiohttp import AiohttpClient

from proxy.access.model import ROOT
from proxy.audit import operator
from proxy.backends import Backends
from proxy.backends.records import DeletedFile, PrivateFile
from proxy.bundle.indexes import map_indexes
from proxy.bundle.manifest import BundleError, Manifest, parse_manifest
from proxy.bundle.reader import VerifiedBundle
from proxy.bundle.records import PrivateProject
from proxy.simple.names import NormalizedName
from tests.artifacts import Artifact, build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.stores import data_dir_backends, data_dir_meta
from tests.test_bundle import fill_data_dir, run_cli

ROOT_LIB = build_wheel("root-lib", "1.0")
ML_TOOL = build_wheel("ml-tool", "1.0")
ML_ROOT_LIB = build_wheel("root-lib", "5.0")  # ml's own root-lib: shadows root's for ml's readers
UP_LIB = build_wheel("up-lib", "1.0")  # a cached upstream project
GONE = "ml_tool-0.9-py3-none-any.whl"  # deleted in ml
NAME = NormalizedName("x")
PRIVATE_ROW = PrivateFile("x-1.0.tar.gz", NAME, "1.0", "a" * 64, None, 3, None, None, None, "2026-11-01T00:00:00Z",
                          None)
ML_INDEX = {"bases": ["root"], "upstream": False, "read": ["*"], "upload": ["alice"]}


def write_config(tmp: Path, name: str, data_dir: Path, indexes: dict[str, dict[str, Any]]) -> Path:
    """A TOML config file for the CLI's --config: a data dir and the [indexes.*] tables."""
    lines = ["[server]", f"data_dir = {json.dumps(str(data_dir))}"]
    for index, table in indexes.items():
        lines.append(f"[indexes.{index}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def add_private(backends: Backends, artifact: Artifact, index: str) -> None:
    blob = await backends.blobs.put_bytes(artifact.data)
    await backends.meta.add_private_file(PrivateFile(
        artifact.filename, artifact.project, artifact.version, blob.sha256, None, blob.size, None, None, None,
        "2026-11-01T00:00:00.000000Z", "alice", index,
    ))


async def fill_teams(data_dir: Path) -> None:
    """root holds root-lib 1.0; ml holds ml-tool 1.0 (owner alice, maintainer group:ml, one deleted filename) and
    its own root-lib 5.0; up-lib is a cached upstream page with its file."""
    await fill_data_dir(data_dir, UP_LIB)
    async with data_dir_backends(data_dir) as backends:
        await add_private(backends, ROOT_LIB, ROOT)
        await add_private(backends, ML_TOOL, "ml")
        await add_private(backends, ML_ROOT_LIB, "ml")
        await backends.meta.add_member("ml", "ml-tool", "alice", "owner")
        await backends.meta.add_member("ml", "ml-tool", "group:ml", "maintainer")
        await backends.meta.add_deleted_file(DeletedFile(GONE, ML_TOOL.sha256, 5.0, "ml"))


async def index_state(data_dir: Path) -> dict[str, Any]:
    """Per index: private names, files (filename, sha256), deleted names, and members of each project."""
    async with data_dir_meta(data_dir) as db:
        held = await db.private_project_indexes()
        found: dict[str, Any] = {}
        for index in sorted({ROOT} | {i for i, _ in held}):
            names = await db.private_projects(index)
            found[index] = {
                "names": names,
                "files": sorted((f.filename, f.sha256) for f in await db.bundle_private_files(index)),
                "deleted": [(d.filename, d.sha256) for d in await db.bundle_deleted_files(index)],
                "members": {n: await db.project_members(index, n) for n in names},
            }
        return found


def cli(config: Path, *argv: str) -> int:
    return run_cli(*argv, "--config", str(config))


def private_records(bundle: Path) -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((bundle / "private").glob("*.json"))}


def test_round_trip_keeps_each_file_in_its_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A bundle of every index imports into a server defining the same indexes with every private file, deleted
    name, owner and maintainer in its own index; root's files stay root's; a second import changes nothing."""
    asyncio.run(fill_teams(tmp_path / "a"))
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    b = write_config(tmp_path, "b", tmp_path / "b", {"ml": ML_INDEX})
    bundle = tmp_path / "bundle"
    assert cli(a, "export", str(bundle)) == 0
    assert parse_manifest((bundle / "manifest.json").read_bytes()).format_version == 2
    capsys.readouterr()
    assert cli(b, "import", str(bundle)) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(
        "3 new private project(s), private files: 3 added, 0 updated, 0 removed; 1 deleted filename(s) recorded;"
        " 2 owner(s) or maintainer(s) set.")
    expected = asyncio.run(index_state(tmp_path / "a"))
    assert expected["ml"]["files"] == sorted([(ML_TOOL.filename, ML_TOOL.sha256),
                                              (ML_ROOT_LIB.filename, ML_ROOT_LIB.sha256)])
    assert asyncio.run(index_state(tmp_path / "b")) == expected
    capsys.readouterr()
    assert cli(b, "import", str(bundle)) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"Nothing to do: everything in {bundle} is already in {tmp_path / 'b'}.")
    assert asyncio.run(index_state(tmp_path / "b")) == expected


async def import_log(data_dir: Path) -> list[tuple[str, str, str, str | None, str | None, str | None, dict[str, Any]]]:
    """The audit log as `shadowpi log` and the API read it: (actor, via, action, index, project, target, detail),
    oldest first."""
    async with data_dir_meta(data_dir) as db:
        entries = await db.audit_entries()
    return [(e.actor, e.via, e.action, e.index, e.project, e.target, json.loads(e.detail) if e.detail else {})
            for e in reversed(entries)]


async def change_source(data_dir: Path) -> None:
    """At the source: root's root-lib 1.0 yanked, ml's root-lib 5.0 deleted."""
    async with data_dir_meta(data_dir) as db:
        assert await db.set_yanked([ROOT_LIB.filename], "broken", ROOT) == 1
        gone = await db.private_file(ML_ROOT_LIB.filename, "ml")
        assert gone is not None
        await db.delete_private_files([gone])


def test_import_records_one_audit_entry_per_private_project_it_changes(tmp_path: Path):
    """Importing a bundle records, per index and private project it adds files to, one "import" entry by the
    operator at the shell (as push does) naming the bundle file and the files, and one "owner-add" per owner or
    maintainer it sets (as `shadowpi owner add` does); importing it again records nothing; a later bundle's yank and
    deletion are recorded as updated and removed files."""
    asyncio.run(fill_teams(tmp_path / "a"))
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    b = write_config(tmp_path, "b", tmp_path / "b", {"ml": ML_INDEX})
    first, second = tmp_path / "teams.tar", tmp_path / "teams-2.tar"
    assert cli(a, "export", str(first)) == 0
    assert cli(b, "import", str(first)) == 0
    who = operator()
    added = [
        (who.user, "cli", "import", "ml", "ml-tool", None, {"bundle": "teams.tar", "files": [ML_TOOL.filename]}),
        (who.user, "cli", "import", "ml", "root-lib", None, {"bundle": "teams.tar", "files": [ML_ROOT_LIB.filename]}),
        (who.user, "cli", "import", ROOT, "root-lib", None, {"bundle": "teams.tar", "files": [ROOT_LIB.filename]}),
        (who.user, "cli", "owner-add", "ml", "ml-tool", "alice", {"bundle": "teams.tar", "role": "owner"}),
        (who.user, "cli", "owner-add", "ml", "ml-tool", "group:ml", {"bundle": "teams.tar", "role": "maintainer"}),
    ]
    assert asyncio.run(import_log(tmp_path / "b")) == added
    assert cli(b, "import", str(first)) == 0
    assert asyncio.run(import_log(tmp_path / "b")) == added
    asyncio.run(change_source(tmp_path / "a"))
    assert cli(a, "export", str(second)) == 0
    assert cli(b, "import", str(second)) == 0
    assert asyncio.run(import_log(tmp_path / "b")) == [*added, (
        who.user, "cli", "import", "ml", "root-lib", None, {"bundle": "teams-2.tar", "files": [],
                                                            "removed": [ML_ROOT_LIB.filename]}), (
        who.user, "cli", "import", ROOT, "root-lib", None, {"bundle": "teams-2.tar", "files": [],
                                                            "updated": [ROOT_LIB.filename]}),
    ]


def test_export_index_carries_only_that_index(tmp_path: Path):
    """`export --index ml`: ml's private projects, files, members and deleted names; root's private files stay
    out; cached upstream pages travel as always. Imported, nothing lands in root."""
    asyncio.run(fill_teams(tmp_path / "a"))
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    bundle = tmp_path / "bundle"
    assert cli(a, "export", str(bundle), "--index", "ml") == 0
    records = private_records(bundle)
    assert sorted(records) == ["ml-tool", "root-lib"]
    assert [(f["filename"], f["index"]) for f in records["root-lib"]["files"]] == [(ML_ROOT_LIB.filename, "ml")]
    assert records["root-lib"]["indexes"] == ["ml"]
    assert records["ml-tool"]["members"] == [{"index": "ml", "principal": "alice", "role": "owner"},
                                             {"index": "ml", "principal": "group:ml", "role": "maintainer"}]
    assert json.loads((bundle / "deleted.json").read_text())["deleted"] == [
        {"filename": GONE, "sha256": ML_TOOL.sha256, "deleted_at": 5.0, "index": "ml"}]
    assert sorted(p.stem for p in (bundle / "pages").glob("*.json")) == ["up-lib"]
    assert not (bundle / "blobs" / ROOT_LIB.sha256).exists()
    b = write_config(tmp_path, "b", tmp_path / "b", {"ml": ML_INDEX})
    assert cli(b, "import", str(bundle)) == 0
    state = asyncio.run(index_state(tmp_path / "b"))
    assert state[ROOT]["files"] == [] and state[ROOT]["names"] == []
    assert state["ml"] == asyncio.run(index_state(tmp_path / "a"))["ml"]


def test_import_refuses_an_index_the_server_lacks_and_index_map_renames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Importing ml's files into a server without [indexes.ml] exits 1 with one line naming ml, and creates no
    data dir; `--index-map ml=team` puts them into index team instead."""
    asyncio.run(fill_teams(tmp_path / "a"))
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    bundle = tmp_path / "bundle"
    assert cli(a, "export", str(bundle)) == 0
    b = write_config(tmp_path, "b", tmp_path / "b", {"team": ML_INDEX})
    capsys.readouterr()
    assert cli(b, "import", str(bundle)) == 1
    assert capsys.readouterr().err.splitlines() == [
        "shadowpi: the bundle holds private projects of index 'ml', which this server does not define"
        " (add [indexes.ml] to the config, or import with --index-map ml=NAME)"]
    assert not (tmp_path / "b").exists()
    assert cli(b, "import", str(bundle), "--index-map", "ml=team") == 0
    state = asyncio.run(index_state(tmp_path / "b"))
    assert state["team"] == asyncio.run(index_state(tmp_path / "a"))["ml"]
    assert state[ROOT]["files"] == [(ROOT_LIB.filename, ROOT_LIB.sha256)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("export", "{out}", "--index", "nope"), "shadowpi: --index: no index named 'nope' (known: root, ml)"),
        (("export", "{out}", "--index", "ml", "--index", "root", "--static", "{static}"),
         "shadowpi: --static writes one index's view: give at most one --index with it"),
        (("import", "{bundle}", "--index-map", "ml"),
         "shadowpi: --index-map 'ml': expected OLD=NEW (an index of the bundle, one of this server)"),
        (("import", "{bundle}", "--index-map", "ml=nope"),
         "shadowpi: --index-map 'ml=nope': no index named 'nope' here (known: root, ml)"),
    ],
)
def test_bad_index_arguments_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
):
    """An unknown --index, --static with two indexes, or a bad --index-map: exit 1, one line, nothing written."""
    asyncio.run(fill_teams(tmp_path / "a"))
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    assert cli(a, "export", str(tmp_path / "bundle")) == 0
    before = asyncio.run(index_state(tmp_path / "a"))
    paths = {"out": tmp_path / "out", "static": tmp_path / "static", "bundle": tmp_path / "bundle"}
    capsys.readouterr()
    assert cli(a, *(arg.format(**paths) for arg in argv)) == 1
    assert capsys.readouterr().err.splitlines() == [message]
    assert not (tmp_path / "out").exists() and not (tmp_path / "static").exists()
    assert asyncio.run(index_state(tmp_path / "a")) == before


def static_projects(static: Path) -> dict[str, list[str]]:
    """Project -> filenames listed by a static tree's JSON pages."""
    names = json.loads((static / "simple" / "index.json").read_text())["projects"]
    pages = {p["name"]: json.loads((static / "simple" / p["name"] / "index.json").read_text()) for p in names}
    return {name: [f["filename"] for f in page["files"]] for name, page in pages.items()}


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        # ml's view: its own root-lib shadows root's, ml-tool; no upstream (upstream = false)
        ("ml", {"ml-tool": [ML_TOOL.filename], "root-lib": [ML_ROOT_LIB.filename]}),
        # root's view (the default): root-lib 1.0 and the cached upstream project; ml's projects are not there
        (None, {"root-lib": [ROOT_LIB.filename], "up-lib": [UP_LIB.filename]}),
    ],
)
def test_static_index_is_one_index_view(tmp_path: Path, index: str | None, expected: dict[str, list[str]]):
    """`export --static DIR [--index NAME]` writes what that index's readers see through its chain, with the bytes
    of every listed file."""
    asyncio.run(fill_teams(tmp_path / "a"))
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    static = tmp_path / "static"
    argv = ["export", str(tmp_path / "bundle"), "--static", str(static)] + (["--index", index] if index else [])
    assert cli(a, *argv) == 0
    assert static_projects(static) == expected
    artifacts = {a.filename: a for a in (ROOT_LIB, ML_TOOL, ML_ROOT_LIB, UP_LIB)}
    for filenames in expected.values():
        for filename in filenames:
            artifact = artifacts[filename]
            assert (static / "files" / artifact.sha256 / filename).read_bytes() == artifact.data


def write_v1_bundle(path: Path, artifact: Artifact, deleted: str) -> None:
    """A bundle exactly as shadowpi wrote it before indexes (format version 1, main at f8350b0): private records
    and deleted names without an index."""
    name = artifact.project
    record = {"project": name, "files": [{
        "filename": artifact.filename, "version": artifact.version, "sha256": artifact.sha256, "blake2_256": None,
        "size": artifact.size, "requires_python": None, "metadata_sha256": None, "yanked": None,
        "upload_time": "2026-11-01T00:00:00.000000Z",
    }]}
    files: dict[str, bytes] = {
        "deleted.json": (json.dumps({"deleted": [{"filename": deleted, "sha256": artifact.sha256, "deleted_at": 5.0}]},
                                    indent=1) + "\n").encode(),
        f"private/{name}.json": (json.dumps(record, indent=1) + "\n").encode(),
        f"blobs/{artifact.sha256}": artifact.data,
    }
    for relative, data in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_bytes(data)
    manifest = {
        "format": "shadowpi-bundle", "format_version": 1, "created_at": "2026-11-01T00:00:00.000000Z",
        "shadowpi_version": "0.1.0", "source": "old:/data", "since": None,
        "files": [
            {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in sorted(files.items())
        ],
    }
    data = (json.dumps(manifest, indent=1) + "\n").encode()
    (path / "manifest.json").write_bytes(data)
    (path / "manifest.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")


def test_bundle_written_before_indexes_imports_into_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A format 1 bundle imports into a server with named indexes: its private files and deleted names belong to
    root, none to ml; importing it again changes nothing."""
    bundle = tmp_path / "old"
    write_v1_bundle(bundle, ROOT_LIB, "root_lib-0.9-py3-none-any.whl")
    b = write_config(tmp_path, "b", tmp_path / "b", {"ml": ML_INDEX})
    assert cli(b, "import", str(bundle)) == 0
    state = asyncio.run(index_state(tmp_path / "b"))
    assert state == {ROOT: {
        "names": [NormalizedName("root-lib")], "files": [(ROOT_LIB.filename, ROOT_LIB.sha256)],
        "deleted": [("root_lib-0.9-py3-none-any.whl", ROOT_LIB.sha256)], "members": {"root-lib": []},
    }}
    capsys.readouterr()
    assert cli(b, "import", str(bundle)) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("Nothing to do:")
    assert asyncio.run(index_state(tmp_path / "b")) == state


async def test_imported_index_serves_offline_and_root_does_not_leak(
    aiohttp_client: AiohttpClient, tmp_path: Path, upstream: Upstream
):
    """After the import an offline server answers /index/ml/simple/ml-tool/ with ml's file byte for byte, and
    /simple/ml-tool/ (root) does not list it."""
    await fill_teams(tmp_path / "a")
    a = write_config(tmp_path, "a", tmp_path / "a", {"ml": ML_INDEX})
    b = write_config(tmp_path, "b", tmp_path / "b", {"ml": ML_INDEX})
    bundle = tmp_path / "bundle"
    assert await asyncio.to_thread(cli, a, "export", str(bundle), "--index", "ml") == 0
    assert await asyncio.to_thread(cli, b, "import", str(bundle)) == 0
    proxy = await ProxyFactory(aiohttp_client, tmp_path / "b", upstream)(upstream={"offline": True},
                                                                         indexes={"ml": ML_INDEX})
    resp = await proxy.get("/index/ml/simple/ml-tool/", headers=JSON)
    assert resp.status == 200
    files = json.loads(await resp.text())["files"]
    assert [f["filename"] for f in files] == [ML_TOOL.filename]
    download = await proxy.get(urljoin("/index/ml/simple/ml-tool/", files[0]["url"]))
    assert download.status == 200 and await download.read() == ML_TOOL.data
    assert (await proxy.get("/simple/ml-tool/", headers=JSON)).status == 404


def test_index_map_onto_one_index_keeps_a_promoted_file_once_and_refuses_a_clash():
    """Mapping two indexes onto one: a file promoted to both (same bytes) lands once; two different files of one
    filename are refused, naming it, before anything is written."""
    promoted = [replace(PRIVATE_ROW, index="ml"), replace(PRIVATE_ROW, index="web")]
    bundle = VerifiedBundle(Manifest("t", "v", "s", None, ()), "0" * 64, (), {NAME: promoted}, (),
                            {NAME: PrivateProject(("ml", "web"))})
    mapped = map_indexes(bundle, {"ml": ROOT, "web": ROOT}, {ROOT})
    assert mapped.private == {NAME: [replace(PRIVATE_ROW, index=ROOT)]}
    assert mapped.projects == {NAME: PrivateProject((ROOT,))}
    clash = replace(bundle, private={NAME: [promoted[0], replace(promoted[1], sha256="b" * 64)]})
    with pytest.raises(BundleError, match=f"^--index-map puts two different files named {PRIVATE_ROW.filename}"
                                          " into index root$"):
        map_indexes(clash, {"ml": ROOT, "web": ROOT}, {ROOT})
