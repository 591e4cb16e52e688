"""shadowpi warm end to end: a real shadowpi in front of the fake upstream, real wheels, real resolution."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
from collections import Counter
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp.test_utils import TestClient

from proxy.app import create_app
from proxy.config_load import build_config
from proxy.warm.command import add_warm_parser, load_inputs, run_warm, simple_url_of
from proxy.warm.core import WarmInputs, warm
from proxy.warm.model import WarmReport
from proxy.warm.report import ProgressBar, format_bytes, render_summary
from proxy.warm.targets import Target, build_targets
from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.conftest import Upstream
from tests.fakes import FakeIndex
from tests.proxy_fixtures import ProxyFactory
from tests.stores import data_dir_meta

LINUX, WINDOWS, MAC = build_targets(["3.11"], ["manylinux_2_28_x86_64", "win_amd64", "macosx_11_0_arm64"])
FASTLIB_LINUX = build_wheel("fastlib", "1.0", tag="cp311-cp311-manylinux_2_28_x86_64")
FASTLIB_WIN = build_wheel("fastlib", "1.0", tag="cp311-cp311-win_amd64")
APP = build_wheel("app", "1.0", requires_dist=[
    "lib>=1", "fastlib", 'winonly; sys_platform == "win32"', 'fancy; extra == "fancy"'])
LIB_1 = build_wheel("lib", "1.0", requires_dist=["base"])
LIB_2 = build_wheel("lib", "2.0", requires_dist=["base"])
LIB_3_YANKED = build_wheel("lib", "3.0", requires_dist=["base"])
LIB_4_PY312 = build_wheel("lib", "4.0", requires_dist=["base"], requires_python=">=3.12")
BASE = build_wheel("base", "1.0")
WINONLY = build_wheel("winonly", "1.0")
FANCY = build_wheel("fancy", "1.0", requires_dist=["base"])


def publish(fake: FakeIndex) -> None:
    for artifact in (FASTLIB_LINUX, FASTLIB_WIN, APP, LIB_1, LIB_2, LIB_4_PY312, BASE, WINONLY, FANCY):
        fake.add(artifact)
    fake.add(LIB_3_YANKED, yanked="broken build")


def path(artifact: Artifact) -> str:
    return f"/files/{artifact.project}/{artifact.filename}"


def file_gets(fake: FakeIndex) -> Counter[str]:
    """Upstream downloads of distribution files (not PEP 658 metadata)."""
    return Counter({p: n for p, n in fake.hits.items() if p.startswith("/files/") and not p.endswith(".metadata")})


def picked(report: WarmReport) -> dict[str, set[str]]:
    return {plan.label: {p.dist.filename for p in plan.picks} for plan in report.plans}


def counts(report: WarmReport) -> list[str]:
    """The summary table's rows, whitespace-normalized."""
    return [" ".join(line.split()) for line in render_summary(report).splitlines()[1:len(report.plans) + 2]]


@pytest.fixture
async def index(make_proxy: ProxyFactory, upstream: Upstream) -> str:
    """The /simple/ URL of a shadowpi (on 127.0.0.1) in front of the published fake upstream."""
    publish(upstream.fake)
    client: TestClient[Any, Any] = await make_proxy()
    return str(client.make_url("/simple/"))


async def run(index: str, *specifiers: str, targets: tuple[Target, ...] = (LINUX, WINDOWS),
              inputs: WarmInputs | None = None) -> WarmReport:
    wanted = inputs if inputs is not None else load_inputs(specifiers, [], [], [])
    return await warm(index, wanted, targets, jobs=4)


async def test_closure_per_target(index: str, upstream: Upstream) -> None:
    """Each target gets its transitive closure: highest usable versions, its own wheel, its marker deps."""
    report = await run(index, "app")
    assert picked(report) == {
        LINUX.label: {APP.filename, LIB_2.filename, BASE.filename, FASTLIB_LINUX.filename},
        WINDOWS.label: {APP.filename, LIB_2.filename, BASE.filename, FASTLIB_WIN.filename, WINONLY.filename},
    }
    assert file_gets(upstream.fake) == Counter({path(a): 1 for a in (
        APP, LIB_2, BASE, FASTLIB_LINUX, FASTLIB_WIN, WINONLY)})
    assert counts(report) == [f"{LINUX.label} 4 4 0 0", f"{WINDOWS.label} 5 5 0 0",
                              "all targets (distinct files) 6 6 0 0"]
    assert report.ok


async def test_rerun_is_all_cached(index: str, upstream: Upstream) -> None:
    """A second warm finds everything in shadowpi's cache and sends no file request upstream."""
    await run(index, "app[fancy]")
    upstream.fake.clear_log()
    report = await run(index, "app[fancy]")
    assert counts(report)[-1] == "all targets (distinct files) 7 0 7 0"
    assert not any(p.startswith("/files/") for p in upstream.fake.hits)
    assert report.ok


async def test_extras_pull_their_dependencies(index: str) -> None:
    """app[fancy] adds fancy (and what fancy needs) on every target."""
    report = await run(index, "app[fancy]", targets=(LINUX,))
    assert picked(report)[LINUX.label] == {APP.filename, LIB_2.filename, BASE.filename, FASTLIB_LINUX.filename,
                                           FANCY.filename}


async def test_exact_pin_may_choose_a_yanked_release(index: str) -> None:
    """A yanked release is skipped by ranges but chosen when pinned with == (PEP 592, as pip does)."""
    assert picked(await run(index, "lib>=2", targets=(LINUX,)))[LINUX.label] == {LIB_2.filename, BASE.filename}
    assert picked(await run(index, "lib==3.0", targets=(LINUX,)))[LINUX.label] == {LIB_3_YANKED.filename,
                                                                                    BASE.filename}


async def test_requires_python_follows_the_target(index: str) -> None:
    """lib 4.0 needs Python 3.12: a 3.11 target gets lib 2.0, a 3.12 target gets lib 4.0."""
    (py312,) = build_targets(["3.12"], ["manylinux_2_28_x86_64"])
    report = await run(index, "lib", targets=(LINUX, py312))
    assert picked(report) == {LINUX.label: {LIB_2.filename, BASE.filename},
                              py312.label: {LIB_4_PY312.filename, BASE.filename}}


async def test_target_without_a_compatible_wheel_is_reported(index: str) -> None:
    """macOS has no fastlib wheel and there is no sdist: reported per target, other targets still warmed."""
    report = await run(index, "app", targets=(LINUX, MAC))
    assert report.plans[1].no_compatible == ("fastlib 1.0 (no wheel for this platform and no sdist)",)
    assert picked(report)[LINUX.label] == {APP.filename, LIB_2.filename, BASE.filename, FASTLIB_LINUX.filename}
    summary = render_summary(report)
    assert f"no compatible file for {MAC.label}: fastlib 1.0 (no wheel for this platform and no sdist)" in summary
    assert summary.endswith("result: INCOMPLETE (see above)")
    assert not report.ok


@pytest.mark.parametrize(("specifier", "error"), [
    ("lib>=9", "lib>=9 (requested): no version matches >=9 (latest listed: 1.0, 2.0, 3.0, 4.0)"),
    ("nosuchproject", "nosuchproject (requested): no project named 'nosuchproject' on the index"),
])
async def test_unresolvable_requirement_is_explained(index: str, specifier: str, error: str) -> None:
    """ResolutionImpossible becomes one line per cause, and the run is not OK."""
    report = await run(index, specifier, targets=(LINUX,))
    assert report.plans[0].errors == (error,)
    assert f"cannot resolve for {LINUX.label}: {error}" in render_summary(report)
    assert not report.ok


async def test_conflict_is_explained(index: str, upstream: Upstream) -> None:
    """Two parents wanting incompatible versions are named in the explanation."""
    upstream.fake.add(build_wheel("old-user", "1.0", requires_dist=["lib<2"]))
    upstream.fake.add(build_wheel("new-user", "1.0", requires_dist=["lib>=2"]))
    report = await run(index, "old-user", "new-user", "lib!=3.0", targets=(LINUX,))
    (error,) = report.plans[0].errors
    assert error.startswith("conflicting requirements on lib: ")
    assert "lib>=2 (required by new-user 1.0)" in error


async def test_constraints_and_root_markers(index: str, tmp_path: Path) -> None:
    """-c constraints narrow versions without adding projects; a root marker limits a requirement to its targets."""
    (tmp_path / "constraints.txt").write_text("lib<2\nfancy==1.0\n")
    (tmp_path / "requirements.txt").write_text('-c constraints.txt\nlib\nwinonly ; sys_platform == "win32"\n')
    report = await run(index, inputs=load_inputs([], [tmp_path / "requirements.txt"], [], []))
    assert picked(report) == {LINUX.label: {LIB_1.filename, BASE.filename},
                              WINDOWS.label: {LIB_1.filename, BASE.filename, WINONLY.filename}}


async def test_hash_mismatch_is_a_failure(index: str, tmp_path: Path, upstream: Upstream) -> None:
    """A file that matches no --hash of its requirement is reported as failed; matching ones pass."""
    wrong = "0" * 64
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"base==1.0 --hash=sha256:{wrong}\nwinonly==1.0 --hash=sha256:{WINONLY.sha256}\n")
    report = await run(index, targets=(LINUX,), inputs=load_inputs([], [reqs], [], []))
    assert [(pick.dist.filename, error) for pick, error in report.failures()] == [
        (BASE.filename, f"hash mismatch: got sha256:{BASE.sha256}, expected sha256:{wrong}")]
    assert counts(report)[0] == f"{LINUX.label} 2 1 0 1"
    assert not report.ok


async def test_upstream_hash_lie_is_a_failure(index: str, upstream: Upstream, make_proxy: ProxyFactory) -> None:
    """When upstream's bytes do not match its own hash, shadowpi cuts the transfer: a failure, nothing cached."""
    upstream.fake.add(build_wheel("liar", "1.0"), declared_sha256="1" * 64)
    report = await run(index, "liar", targets=(LINUX,))
    ((pick, error),) = report.failures()
    assert pick.dist.filename == "liar-1.0-py3-none-any.whl"
    assert error.startswith("the transfer was cut off")
    liar = build_wheel("liar", "1.0")
    assert upstream.fake.hits[path(liar)] == 1
    assert not list((make_proxy.data_dir / "blobs").rglob(liar.sha256))


async def test_metadata_from_the_archive_when_not_offered(index: str, upstream: Upstream) -> None:
    """Without PEP 658 metadata the wheel is downloaded (once) and its METADATA read; sdists need metadata 2.2."""
    upstream.fake.add(build_wheel("plainwheel", "1.0", requires_dist=["base"]), serve_metadata=False)
    upstream.fake.add(build_sdist("oldsdist", "1.0", requires_dist=["winonly"]), serve_metadata=False)
    report = await run(index, "plainwheel", "oldsdist", targets=(LINUX,))
    assert picked(report)[LINUX.label] == {"plainwheel-1.0-py3-none-any.whl", "oldsdist-1.0.tar.gz", BASE.filename}
    assert upstream.fake.hits["/files/plainwheel/plainwheel-1.0-py3-none-any.whl"] == 1
    assert counts(report)[0] == f"{LINUX.label} 3 3 0 0"
    assert report.warnings == ("cannot determine dependencies of sdist oldsdist-1.0.tar.gz (metadata 2.1; they are "
                               "computed at build time): its dependencies were not warmed",)


PYLOCK = """
lock-version = "1.0"
created-by = "tests"
[[packages]]
name = "fastlib"
version = "1.0"
wheels = [
  {{ url = "https://pypi.invalid/f/{linux}", hashes = {{ sha256 = "{linux_sha}" }} }},
  {{ url = "https://pypi.invalid/f/{win}", hashes = {{ sha256 = "{win_sha}" }} }},
]
[[packages]]
name = "winonly"
version = "1.0"
marker = "sys_platform == 'win32'"
wheels = [{{ name = "{winonly}", url = "https://pypi.invalid/w", hashes = {{ sha256 = "{winonly_sha}" }} }}]
"""

UV_LOCK = """
version = 1
[[package]]
name = "me"
version = "0.1"
source = {{ virtual = "." }}
[[package]]
name = "base"
version = "1.0"
source = {{ registry = "https://pypi.invalid/simple" }}
wheels = [{{ url = "https://pypi.invalid/b/{base}", hash = "sha256:{base_sha}" }}]
"""


async def test_lock_files(index: str, tmp_path: Path, upstream: Upstream) -> None:
    """pylock.toml and uv.lock files are warmed as listed (by filename), per target, checked against their hashes."""
    pylock = tmp_path / "pylock.toml"
    pylock.write_text(PYLOCK.format(linux=FASTLIB_LINUX.filename, linux_sha=FASTLIB_LINUX.sha256,
                                    win=FASTLIB_WIN.filename, win_sha="f" * 64,
                                    winonly=WINONLY.filename, winonly_sha=WINONLY.sha256))
    uvlock = tmp_path / "uv.lock"
    uvlock.write_text(UV_LOCK.format(base=BASE.filename, base_sha=BASE.sha256))
    report = await run(index, inputs=load_inputs([], [], [], [pylock, uvlock]))
    assert picked(report) == {LINUX.label: {FASTLIB_LINUX.filename, BASE.filename},
                              WINDOWS.label: {FASTLIB_WIN.filename, WINONLY.filename, BASE.filename}}
    assert file_gets(upstream.fake) == Counter({path(a): 1 for a in (FASTLIB_LINUX, FASTLIB_WIN, WINONLY, BASE)})
    assert [(p.dist.filename, e.split(",")[0]) for p, e in report.failures()] == [
        (FASTLIB_WIN.filename, f"hash mismatch: got sha256:{FASTLIB_WIN.sha256}")]
    assert f"{uvlock}: skipped local package me (virtual .)" in report.warnings


async def test_credentials_in_the_url_reach_pages_and_files(make_proxy: ProxyFactory, upstream: Upstream,
                                                             tmp_path: Path) -> None:
    """With read auth on, user:password in --server's URL is sent with every page, metadata and file request."""
    publish(upstream.fake)
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    client: TestClient[Any, Any] = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True})
    anonymous = await run(str(client.make_url("/simple/")), "base", targets=(LINUX,))
    assert "HTTP 401" in anonymous.plans[0].errors[0]
    url = str(client.make_url("/simple/").with_user("alice").with_password("pw"))
    report = await run(url, "lib", targets=(LINUX,))
    assert report.ok
    assert counts(report)[0] == f"{LINUX.label} 2 2 0 0"


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shadowpi")
    add_warm_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["warm", *argv])


async def test_in_process_warm_fills_the_data_dir(upstream: Upstream, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Without --server, run_warm starts its own shadowpi on the data dir: the blobs land under <data>/blobs/."""
    publish(upstream.fake)
    data = tmp_path / "data"
    config = build_config({"server": {"data_dir": str(data)}, "upstream": {"url": upstream.url}})
    args = parse_args("app", "--python", "3.11", "--platform", "manylinux_2_28_x86_64", "--jobs", "2")
    assert await asyncio.to_thread(run_warm, args, config, make_app=create_app) == 0
    blobs = {p.name for p in (data / "blobs").rglob("*") if p.is_file()}
    assert {a.sha256 for a in (APP, LIB_2, BASE, FASTLIB_LINUX)} <= blobs
    out = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert "py3.11-manylinux_2_28_x86_64 4 4 0 0" in out
    assert out[-1] == "result: OK"


async def test_warm_without_a_terminal_prints_a_line_per_step(upstream: Upstream, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """With stderr not a terminal (CI, a pipe), warm prints a line per step there instead of nothing: the data dir,
    each phase, the number of files, and one line per tenth of the files (here each of the four)."""
    publish(upstream.fake)
    config = build_config({"server": {"data_dir": str(tmp_path / "data")}, "upstream": {"url": upstream.url}})
    args = parse_args("app", "--python", "3.11", "--platform", "manylinux_2_28_x86_64", "--jobs", "1")
    assert await asyncio.to_thread(run_warm, args, config, make_app=create_app) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == ["warming: resolving for 1 target(s)", "warming: 4 files"]
    assert [line.split(",")[0] for line in err[2:]] == [f"warming: {n}/4 files" for n in (1, 2, 3, 4)]
    assert err[-1].endswith(f", {format_bytes(sum(a.size for a in (APP, LIB_2, BASE, FASTLIB_LINUX)))}")


async def test_pin_exempts_warmed_files_from_eviction(upstream: Upstream, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--pin marks every warmed file pinned, so the cache janitor never evicts them."""
    publish(upstream.fake)
    data = tmp_path / "data"
    config = build_config({"server": {"data_dir": str(data)}, "upstream": {"url": upstream.url}})
    args = parse_args("app", "--python", "3.11", "--platform", "manylinux_2_28_x86_64", "--pin")
    assert await asyncio.to_thread(run_warm, args, config, make_app=create_app) == 0
    assert "pinned: 8 file(s) exempt from cache eviction" in capsys.readouterr().out  # 4 files + 4 .metadata
    async with data_dir_meta(data) as db:
        usage = await db.cache_usage()
        assert usage.files == 8
        assert usage.pinned_bytes == usage.bytes > 0
        assert await db.eviction_candidates(accessed_before=float("inf")) == []


async def test_run_warm_through_a_running_server(index: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--server warms through that server; a target left without a compatible file makes the exit code 1."""
    config = build_config({})
    ok = parse_args("app", "--server", index, "--python", "3.11", "--platform", "win_amd64")
    assert await asyncio.to_thread(run_warm, ok, config, make_app=create_app) == 0
    incomplete = parse_args("app", "--server", index.removesuffix("simple/"), "--platform", "macosx_11_0_arm64",
                            "--python", "3.11")
    assert await asyncio.to_thread(run_warm, incomplete, config, make_app=create_app) == 1
    out = capsys.readouterr().out
    assert f"no compatible file for {MAC.label}: fastlib 1.0 (no wheel for this platform and no sdist)" in out


async def test_in_process_server_refuses_strangers(upstream: Upstream, tmp_path: Path) -> None:
    """The in-process shadowpi answers only requests carrying this run's secret header."""
    import aiohttp

    from proxy.warm.command import in_process_server

    config = build_config({"server": {"data_dir": str(tmp_path)}, "upstream": {"url": upstream.url},
                           "auth": {"read": True}})
    async with in_process_server(config, create_app) as (url, headers), aiohttp.ClientSession() as session:
        async with session.get(url.replace("/simple/", "/health")) as stranger:
            assert stranger.status == 403
        async with session.get(url.replace("/simple/", "/health"), headers=headers) as ours:
            assert ours.status == 200


@pytest.mark.parametrize(("argv", "message"), [
    ((), "nothing to warm"),
    (("x", "--platform", "solaris"), "--platform 'solaris'"),
    (("x", "--python", "2.7"), "--python '2.7'"),
    (("-r", "/nonexistent/requirements.txt"), "cannot read requirements file"),
    (("x", "--server", "ftp://host/"), "--server: expected an http(s) URL"),
])
def test_bad_input_exits_2(argv: tuple[str, ...], message: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Bad arguments or unreadable inputs stop before any network traffic, with exit code 2."""
    config = build_config({"server": {"data_dir": str(tmp_path)}})
    assert run_warm(parse_args(*argv), config, make_app=create_app) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("server", "expected"), [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/simple/"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/simple/"),
    ("http://127.0.0.1:8080/simple", "http://127.0.0.1:8080/simple/"),
    ("https://u:p@127.0.0.1/pypi/simple/", "https://u:p@127.0.0.1/pypi/simple/"),
    ("http://127.0.0.1/prefix", "http://127.0.0.1/prefix/simple/"),
])
def test_simple_url_of(server: str, expected: str) -> None:
    """--server takes shadowpi's base URL or its /simple/ URL (credentials and a path prefix kept)."""
    assert simple_url_of(server) == expected


def test_progress_bar_line() -> None:
    """The bar redraws one line with files done/total and bytes, throttled by the clock, and erases itself."""
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, clock=lambda: now[0])
    bar.start(4)
    bar.add_bytes(1536)  # throttled: drawn only 0.1 s later
    assert out.getvalue().count("\r") == 1
    now[0] = 1.0
    bar.file_done()
    bar.add_bytes(0)
    assert bar.line() == "warming [######------------------] 1/4 files  1.5 KiB"
    assert out.getvalue().endswith(bar.line())
    bar.finish()
    assert out.getvalue().endswith("\r")


def test_pick_hash_requirement_names_all_alternatives() -> None:
    """The mismatch message lists every acceptable hash."""
    from proxy.warm.model import FetchResult, verify_hashes

    result = FetchResult("f.whl", "fetched", 3, {"sha256": hashlib.sha256(b"abc").hexdigest()})
    assert verify_hashes(result, ({"sha256": "1"}, {"sha256": "2"})) == (
        f"hash mismatch: got sha256:{result.digests['sha256']}, expected sha256:1 or sha256:2")
    assert verify_hashes(result, ({"sha256": result.digests["sha256"]},)) is None


@pytest.mark.parametrize(("upstream_flag", "status"), [(True, 0), (False, 1)])
async def test_in_process_warm_through_a_named_index(upstream: Upstream, tmp_path: Path, upstream_flag: bool,
                                                     status: int, capsys: pytest.CaptureFixture[str]) -> None:
    """--index NAME warms through that index's chain (issue 14): with upstream = true it fills the data dir; with
    upstream = false upstream names are missing there (1), and upstream is never asked; an unknown index is 2."""
    publish(upstream.fake)
    data = tmp_path / "data"
    config = build_config({"server": {"data_dir": str(data)}, "upstream": {"url": upstream.url},
                           "indexes": {"ml": {"bases": ["root"], "upstream": upstream_flag, "read": ["alice"]}}})
    args = parse_args("app", "--python", "3.11", "--platform", "manylinux_2_28_x86_64", "--index", "ml")
    assert await asyncio.to_thread(run_warm, args, config, make_app=create_app) == status
    blobs = {p.name for p in (data / "blobs").rglob("*") if p.is_file()} if (data / "blobs").exists() else set()
    assert (APP.sha256 in blobs) is upstream_flag
    assert bool(upstream.fake.requests) is upstream_flag
    unknown = parse_args("app", "--index", "nope")
    assert await asyncio.to_thread(run_warm, unknown, config, make_app=create_app) == 2
    assert "--index: no index named 'nope'" in capsys.readouterr().err
