"""Lock files: pylock.toml (PEP 751) and uv.lock parsing, and which locked files each target needs."""

from __future__ import annotations

import pytest
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from proxy.simple.model import DistFile, ProjectPage
from proxy.warm.locks import LockedFile, LockedPackage, LockError, LockFile, parse_lock
from proxy.warm.model import Pick, TargetPlan
from proxy.warm.plan import plan_lock
from proxy.warm.targets import Target, build_targets

SHA = {c: c * 64 for c in "abcdef"}

PYLOCK = f"""
lock-version = "1.0"
requires-python = ">=3.10"
environments = ["sys_platform == 'linux'", "sys_platform == 'win32'"]
extras = ["fast"]
dependency-groups = ["dev"]
created-by = "hand"

[[packages]]
name = "Fast_Lib"
version = "1.0"
marker = "'fast' in extras"
[[packages.wheels]]
name = "fast_lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
url = "https://elsewhere.invalid/fast_lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
hashes = {{sha256 = "{SHA['a']}"}}
[[packages.wheels]]
url = "https://elsewhere.invalid/files/fast_lib-1.0-cp312-cp312-win_amd64.whl"
hashes = {{sha256 = "{SHA['b']}", sha512 = "{'c' * 128}"}}
[packages.sdist]
url = "https://elsewhere.invalid/fast_lib-1.0.tar.gz"
hashes = {{sha256 = "{SHA['c']}"}}

[[packages]]
name = "winonly"
version = "2.0"
marker = "sys_platform == 'win32'"
requires-python = ">=3.11"
wheels = [{{ path = "wheels/winonly-2.0-py3-none-any.whl", hashes = {{ sha256 = "{SHA['d'].upper()}" }} }}]

[[packages]]
name = "from-git"
vcs = {{ type = "git", url = "https://example.invalid/x.git", commit-id = "abc" }}
"""

UV_LOCK = f"""
version = 1
requires-python = ">=3.11"

[[package]]
name = "myproject"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "base" }}]

[[package]]
name = "base"
version = "1.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.invalid/packages/base-1.0.tar.gz", hash = "sha256:{SHA['e']}", size = 10 }}
wheels = [
    {{ url = "https://files.invalid/packages/base-1.0-py3-none-any.whl", hash = "sha256:{SHA['f']}", size = 5 }},
]

[[package]]
name = "tool"
version = "0.3"
source = {{ git = "https://example.invalid/tool.git?rev=main#abc" }}
"""


def test_pylock_is_read() -> None:
    """pylock.toml: packages with wheels and sdist (names from `name`, url or path), markers, limits."""
    lock = parse_lock(PYLOCK, "pylock.toml")
    assert lock == LockFile(
        origin="pylock.toml",
        packages=(
            LockedPackage(canonicalize_name("fast-lib"), "1.0", (
                LockedFile("fast_lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", {"sha256": SHA["a"]}),
                LockedFile("fast_lib-1.0-cp312-cp312-win_amd64.whl", {"sha256": SHA["b"], "sha512": "c" * 128}),
                LockedFile("fast_lib-1.0.tar.gz", {"sha256": SHA["c"]}),
            ), Marker("'fast' in extras")),
            LockedPackage(canonicalize_name("winonly"), "2.0", (
                LockedFile("winonly-2.0-py3-none-any.whl", {"sha256": SHA["d"]}),
            ), Marker("sys_platform == 'win32'"), SpecifierSet(">=3.11")),
        ),
        requires_python=SpecifierSet(">=3.10"),
        environments=(Marker("sys_platform == 'linux'"), Marker("sys_platform == 'win32'")),
        extras=frozenset({"fast"}),
        groups=frozenset({"dev"}),
        unsupported=("pylock.toml: packages[2]: from-git comes from a vcs source, not an index",),
    )


def test_uv_lock_is_read() -> None:
    """uv.lock: registry packages with sdist and wheels; the project itself skipped, git sources unsupported."""
    lock = parse_lock(UV_LOCK, "uv.lock")
    assert lock == LockFile(
        origin="uv.lock",
        packages=(LockedPackage(canonicalize_name("base"), "1.0", (
            LockedFile("base-1.0-py3-none-any.whl", {"sha256": SHA["f"]}),
            LockedFile("base-1.0.tar.gz", {"sha256": SHA["e"]}),
        )),),
        requires_python=SpecifierSet(">=3.11"),
        unsupported=("uv.lock: package[2]: tool comes from git https://example.invalid/tool.git?rev=main#abc, "
                     "not an index",),
        skipped=("myproject (editable .)",),
    )


@pytest.mark.parametrize(("text", "message"), [
    ("lock-version = ", "invalid TOML"),
    ("[tool]\nx = 1\n", "neither a pylock.toml"),
    ('lock-version = "2.0"\n', "unsupported lock-version '2.0'"),
    ('lock-version = "1.0"\n[[packages]]\nversion = "1"\n', r"packages\[0\]: no name"),
    ('lock-version = "1.0"\n[[packages]]\nname = "a b"\n', "invalid project name"),
    ('lock-version = "1.0"\n[[packages]]\nname = "a"\nmarker = "os_name =="\n', "invalid marker"),
    ('lock-version = "1.0"\n[[packages]]\nname = "a"\n[[packages.wheels]]\nhashes = {}\n', "no file name"),
    ('version = 1\n[[package]]\nname = "a"\nwheels = [{ url = "https://x.invalid/a-1-py3-none-any.whl", '
     'hash = "deadbeef" }]\n', "hash must look like"),
    ('lock-version = "1.0"\npackages = "nope"\n', "packages must be an array of tables"),
])
def test_bad_lock_files(text: str, message: str) -> None:
    """A lock file warm cannot trust stops the run, naming the file and the entry."""
    with pytest.raises(LockError, match=message):
        parse_lock(text, "lockfile")


# --- which files a target needs --------------------------------------------------------------------------------

LINUX = build_targets(["3.12"], ["manylinux_2_28_x86_64"])[0]
WINDOWS = build_targets(["3.12"], ["win_amd64"])[0]
MAC = build_targets(["3.12"], ["macosx_11_0_arm64"])[0]
OLD_WINDOWS = build_targets(["3.10"], ["win_amd64"])[0]
OLD_PYTHON = build_targets(["3.9"], ["manylinux_2_28_x86_64"])[0]


def page(name: str, *filenames: str) -> ProjectPage:
    return ProjectPage(canonicalize_name(name), tuple(
        DistFile(f, f"http://127.0.0.1/files/{name}/{f}", {"sha256": "0" * 64}) for f in filenames))


PAGES = {
    canonicalize_name("fast-lib"): page("fast-lib", "fast_lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                                        "fast_lib-1.0-cp312-cp312-win_amd64.whl", "fast_lib-1.0.tar.gz"),
    canonicalize_name("winonly"): page("winonly", "winonly-2.0-py3-none-any.whl"),
}


def _files(plan: TargetPlan) -> list[str]:
    return [p.dist.filename for p in plan.picks]


@pytest.mark.parametrize(("target", "files"), [
    (LINUX, ["fast_lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"]),
    (WINDOWS, ["fast_lib-1.0-cp312-cp312-win_amd64.whl", "winonly-2.0-py3-none-any.whl"]),
    (OLD_WINDOWS, ["fast_lib-1.0.tar.gz"]),
])
def test_lock_files_per_target(target: Target, files: list[str]) -> None:
    """Per target: the wheels it supports (else the sdist), of the packages whose marker/requires-python admit it."""
    plan = plan_lock(parse_lock(PYLOCK, "pylock.toml"), target, PAGES)
    assert (_files(plan), plan.no_compatible, plan.errors) == (files, (), ())


def test_lock_hashes_travel_with_the_pick() -> None:
    """A locked file's hashes (all its algorithms together) are what its download must match."""
    plan = plan_lock(parse_lock(PYLOCK, "pylock.toml"), WINDOWS, PAGES)
    assert plan.picks[0] == Pick(canonicalize_name("fast-lib"), "1.0", PAGES[canonicalize_name("fast-lib")].files[1],
                                 ({"sha256": SHA["b"], "sha512": "c" * 128},))


@pytest.mark.parametrize(("target", "error"), [
    (MAC, "pylock.toml lists environments that exclude this target"),
    (OLD_PYTHON, "pylock.toml requires Python >=3.10; the lock does not cover this target"),
])
def test_lock_that_excludes_the_target(target: Target, error: str) -> None:
    """A target outside the lock's environments or requires-python is reported, not silently skipped."""
    assert plan_lock(parse_lock(PYLOCK, "pylock.toml"), target, PAGES) == TargetPlan(target.label, errors=(error,))


def test_uv_lock_without_a_fitting_file_is_reported() -> None:
    """A locked package with no file for the target is a 'no compatible file' line."""
    text = UV_LOCK.replace("base-1.0-py3-none-any.whl", "base-1.0-cp311-cp311-win_amd64.whl").replace(
        'sdist = { url = "https://files.invalid/packages/base-1.0.tar.gz"', "# no sdist")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("# no sdist"))
    plan = plan_lock(parse_lock(text, "uv.lock"), LINUX, {})
    assert plan.no_compatible == ("base 1.0 (no listed file fits; uv.lock)",)


def test_locked_file_missing_from_the_index_is_an_error() -> None:
    """A file the lock pins that shadowpi's page does not list is an error; an unreadable page is skipped."""
    lock = parse_lock(UV_LOCK, "uv.lock")
    assert plan_lock(lock, LINUX, {canonicalize_name("base"): page("base", "base-1.0.tar.gz")}).errors == (
        "uv.lock: base-1.0-py3-none-any.whl is not on the index under 'base'",)
    assert plan_lock(lock, LINUX, {canonicalize_name("base"): None}).errors == (
        "uv.lock: base-1.0-py3-none-any.whl is not on the index under 'base'",)
    assert plan_lock(lock, LINUX, {}) == TargetPlan(LINUX.label)
