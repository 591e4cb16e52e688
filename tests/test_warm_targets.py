"""Targets (tags, marker variables) and which files of a page suit a target; plus warm's pure-module rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import parse_tag, sys_tags
from packaging.version import Version

from proxy.simple.model import DistFile
from proxy.warm.select import Release, best_file, lock_files_for, releases, why_unusable
from proxy.warm.targets import (
    TargetError,
    build_targets,
    expand_platform,
    parse_python,
    platform_environment,
    python_environment,
)

WARM = Path(__file__).parent.parent / "proxy" / "warm"
PURE = ["requirements.py", "locks.py", "targets.py", "select.py", "metadata.py", "model.py", "plan.py", "report.py"]
FORBIDDEN = {"aiohttp", "aiofiles", "aiosqlite", "yarl"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.partition(".")[0])
            if node.module.startswith("proxy.warm.") and node.module.rsplit(".", 1)[1] + ".py" not in PURE:
                roots.add(node.module)  # a pure module may only build on other pure modules
    return roots


@pytest.mark.parametrize("name", PURE)
def test_pure_warm_modules_import_no_io_library(name: str) -> None:
    """The pure warm modules import neither an I/O library nor a non-pure warm module."""
    roots = _imported_roots(WARM / name)
    assert roots & FORBIDDEN == set()
    assert {r for r in roots if r.startswith("proxy.warm.")} == set()


MANYLINUX_2_28_X86 = (
    [f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)] + ["manylinux2014_x86_64"]
    + [f"manylinux_2_{m}_x86_64" for m in range(16, 11, -1)] + ["manylinux2010_x86_64"]
    + [f"manylinux_2_{m}_x86_64" for m in range(11, 4, -1)] + ["manylinux1_x86_64"]
)


@pytest.mark.parametrize(("platform", "expected"), [
    ("manylinux_2_28_x86_64", MANYLINUX_2_28_X86),
    ("manylinux2014_x86_64", MANYLINUX_2_28_X86[MANYLINUX_2_28_X86.index("manylinux_2_17_x86_64"):]),
    ("manylinux_2_17_aarch64", ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]),
    ("manylinux_2_19_aarch64", ["manylinux_2_19_aarch64", "manylinux_2_18_aarch64", "manylinux_2_17_aarch64",
                                "manylinux2014_aarch64"]),
    ("musllinux_1_2_x86_64", ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64"]),
    ("win_amd64", ["win_amd64"]),
    ("win32", ["win32"]),
    ("linux_x86_64", ["linux_x86_64"]),
])
def test_expand_platform(platform: str, expected: list[str]) -> None:
    """A platform accepts itself, then older compatible platforms, best first (legacy aliases included)."""
    assert expand_platform(platform) == expected


def test_macos_11_accepts_older_and_universal2() -> None:
    """macOS 11 arm64 accepts arm64 and universal2 for 11, then universal2 down to 10.4, nothing x86-only."""
    tags = expand_platform("macosx_11_0_arm64")
    assert tags[:3] == ["macosx_11_0_arm64", "macosx_11_0_universal2", "macosx_10_16_universal2"]
    assert "macosx_10_9_universal2" in tags
    assert not any(t.endswith("x86_64") for t in tags)
    assert "macosx_10_9_x86_64" in expand_platform("macosx_11_0_x86_64")


@pytest.mark.parametrize("platform", ["freebsd_13_amd64", "manylinux_3_1_x86_64", "macosx_11_0_ppc", "any", ""])
def test_unknown_platform_is_an_error(platform: str) -> None:
    """A platform we cannot describe is refused with the accepted forms, not guessed."""
    with pytest.raises(TargetError, match="expected manylinux_2_X_ARCH"):
        expand_platform(platform)


@pytest.mark.parametrize(("text", "expected"), [("3.12", (3, 12)), ("3.12.4", (3, 12, 4)), (" 3.9 ", (3, 9))])
def test_parse_python(text: str, expected: tuple[int, ...]) -> None:
    """--python takes X.Y or X.Y.Z of CPython 3."""
    assert parse_python(text) == expected


@pytest.mark.parametrize("text", ["2.7", "3", "py3.12", "3.12t", "3.x"])
def test_parse_python_rejects(text: str) -> None:
    """Anything but a CPython 3 version is refused."""
    with pytest.raises(TargetError):
        parse_python(text)


@pytest.mark.parametrize(("platform", "sys_platform", "system", "os_name", "machine"), [
    ("win_amd64", "win32", "Windows", "nt", "AMD64"),
    ("win32", "win32", "Windows", "nt", "x86"),
    ("win_arm64", "win32", "Windows", "nt", "ARM64"),
    ("macosx_11_0_arm64", "darwin", "Darwin", "posix", "arm64"),
    ("macosx_10_9_x86_64", "darwin", "Darwin", "posix", "x86_64"),
    ("manylinux_2_28_aarch64", "linux", "Linux", "posix", "aarch64"),
    ("manylinux2014_x86_64", "linux", "Linux", "posix", "x86_64"),
    ("musllinux_1_2_x86_64", "linux", "Linux", "posix", "x86_64"),
])
def test_platform_environment(platform: str, sys_platform: str, system: str, os_name: str, machine: str) -> None:
    """Each platform gets the marker variables Python reports on such a machine."""
    env = platform_environment(platform)
    assert (env["sys_platform"], env["platform_system"], env["os_name"], env["platform_machine"]) == (
        sys_platform, system, os_name, machine)


@pytest.mark.parametrize(("version", "short", "full"), [((3, 12), "3.12", "3.12.0"), ((3, 11, 4), "3.11", "3.11.4")])
def test_python_environment(version: tuple[int, ...], short: str, full: str) -> None:
    """X.Y means X.Y.0 (as pip's --python-version), and the implementation is CPython."""
    env = python_environment(version)
    assert (env["python_version"], env["python_full_version"], env["implementation_name"],
            env["platform_python_implementation"]) == (short, full, "cpython", "CPython")


def test_targets_are_every_python_platform_pair() -> None:
    """Two pythons by two platforms make four targets, in argument order; duplicates collapse."""
    targets = build_targets(["3.11", "3.12", "3.11"], ["manylinux_2_28_x86_64", "win_amd64"])
    assert [t.label for t in targets] == [
        "py3.11-manylinux_2_28_x86_64", "py3.11-win_amd64", "py3.12-manylinux_2_28_x86_64", "py3.12-win_amd64"]


def test_default_target_is_this_interpreter() -> None:
    """Without --python/--platform the target is the running interpreter, with its exact tags."""
    (target,) = build_targets([], [])
    best = next(iter(sys_tags()))
    assert target.rank([best]) == 0


def test_tag_priority() -> None:
    """Tags rank as pip ranks them: exact ABI on the newest platform, abi3, platform-only, pure Python last."""
    (target,) = build_targets(["3.12"], ["manylinux_2_28_x86_64"])
    best_first = [
        "cp312-cp312-manylinux_2_28_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp312-abi3-manylinux_2_28_x86_64",
        "cp39-abi3-manylinux1_x86_64",
        "py3-none-manylinux_2_28_x86_64",
        "py3-none-any",
    ]
    ranks = [target.rank(parse_tag(t)) for t in best_first]
    assert None not in ranks
    assert ranks == sorted(set(ranks), key=lambda r: r or 0)  # strictly increasing: each tag beats the next


@pytest.mark.parametrize("tag", ["cp311-cp311-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_34_x86_64",
                                 "cp312-cp312-win_amd64", "cp312-cp312-manylinux_2_28_aarch64", "py2-none-any"])
def test_unsupported_tags(tag: str) -> None:
    """Another Python's ABI, a newer glibc, another OS or CPU, and Python 2 do not fit."""
    (target,) = build_targets(["3.12"], ["manylinux_2_28_x86_64"])
    assert target.rank(parse_tag(tag)) is None


# --- choosing files ------------------------------------------------------------------------------------------

LINUX_312 = build_targets(["3.12"], ["manylinux_2_28_x86_64"])[0]


def dist(filename: str, *, yanked: bool | str = False, requires_python: str | None = None,
         sha256: str = "") -> DistFile:
    return DistFile(filename, f"https://x/{filename}", {"sha256": sha256} if sha256 else {},
                    requires_python=requires_python, yanked=yanked)


SDIST = dist("pkg-1.0.tar.gz")
ZIP = dist("pkg-1.0.zip")
ANY = dist("pkg-1.0-py3-none-any.whl")
CP312 = dist("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
WIN = dist("pkg-1.0-cp312-cp312-win_amd64.whl")


@pytest.mark.parametrize(("files", "expected"), [
    ([SDIST, ANY, CP312, WIN], CP312),
    ([SDIST, ANY, WIN], ANY),
    ([ZIP, SDIST, WIN], SDIST),
    ([WIN], None),
    ([dist("pkg-1.0-py3-none-any.whl", requires_python=">=3.13"), SDIST], SDIST),
    ([dist("pkg-1.0-py3-none-any.whl", requires_python=">=3.13")], None),
    ([dist("pkg-1.0-py3-none-any.whl", requires_python="not a specifier")], "keep"),
])
def test_best_file(files: list[DistFile], expected: DistFile | str | None) -> None:
    """The best-ranked wheel wins, else the sdist (.tar.gz before .zip); an invalid Requires-Python is ignored."""
    assert best_file(LINUX_312, files) == (files[0] if expected == "keep" else expected)


def _versions(found: list[Release]) -> list[str]:
    return [str(r.version) for r in found]


@pytest.mark.parametrize(("files", "spec", "pre", "expected"), [
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl")], "", False, ["2.0", "1.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl")], "<2", False, ["1.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl", yanked="bad")], "", False, ["1.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl", yanked="bad")], "==2.0", False, ["2.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl", yanked=True)], "==2.*", False, []),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl", yanked=True)], ">=2", False, []),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0-py3-none-any.whl", requires_python=">=3.13")], "", False,
     ["1.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0b1-py3-none-any.whl")], "", False, ["1.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0b1-py3-none-any.whl")], "", True, ["2.0b1", "1.0"]),
    ([dist("p-1.0-py3-none-any.whl"), dist("p-2.0b1-py3-none-any.whl")], ">=2.0b1", False, ["2.0b1"]),
    ([dist("p-2.0b1-py3-none-any.whl")], "", False, ["2.0b1"]),
    ([dist("p-1.0-cp312-cp312-win_amd64.whl"), dist("p-0.9.tar.gz")], "", False, ["0.9"]),
])
def test_releases(files: list[DistFile], spec: str, pre: bool, expected: list[str]) -> None:
    """pip's candidate rules: specifier, yanked only for an exact pin, requires-python, tags, pre-releases."""
    assert _versions(releases(LINUX_312, files, SpecifierSet(spec), prereleases=pre)) == expected


def test_releases_prefer_files_with_a_pinned_hash() -> None:
    """With --hash values, only files carrying one of them are candidates (if any file does)."""
    files = [dist("p-1.0-py3-none-any.whl", sha256="aa"), dist("p-2.0-py3-none-any.whl", sha256="bb")]
    assert _versions(releases(LINUX_312, files, SpecifierSet(), hashes={"sha256:aa"})) == ["1.0"]
    assert _versions(releases(LINUX_312, files, SpecifierSet(), hashes={"sha256:cc"})) == ["2.0", "1.0"]


def test_release_files_best_first() -> None:
    """Each release lists its usable files best first, so `best` is what pip would download."""
    (release,) = releases(LINUX_312, [SDIST, ANY, CP312, WIN], SpecifierSet())
    assert release == Release(Version("1.0"), (CP312, ANY, SDIST))


@pytest.mark.parametrize(("files", "spec", "expected"), [
    ([WIN], "", (Version("1.0"), "no wheel for this platform and no sdist")),
    ([dist("pkg-1.0-py3-none-any.whl", requires_python=">=3.13")], "", (Version("1.0"), "requires Python >=3.13")),
    ([dist("pkg-1.0-py3-none-any.whl", yanked=True)], ">=1", (Version("1.0"), "all its files are yanked")),
    ([ANY], ">=2", None),
])
def test_why_unusable(files: list[DistFile], spec: str, expected: tuple[Version, str] | None) -> None:
    """An empty candidate list is explained: platform, Python, yanked, or (None) simply no such version."""
    assert why_unusable(LINUX_312, files, SpecifierSet(spec)) == expected


@pytest.mark.parametrize(("files", "expected"), [
    ([SDIST, ANY, CP312, WIN], [CP312, ANY]),
    ([SDIST, WIN], [SDIST]),
    ([WIN], []),
])
def test_lock_files_for(files: list[DistFile], expected: list[DistFile]) -> None:
    """From a lock: every wheel the target supports (best first), else the sdist."""
    assert lock_files_for(LINUX_312, files) == expected
