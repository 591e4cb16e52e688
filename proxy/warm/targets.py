"""Target environments (Python version x platform): their wheel tags in priority order and marker variables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.markers import default_environment
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms, platform_tags, sys_tags

__all__ = ["Target", "TargetError", "build_targets", "expand_platform", "host_target", "parse_python"]


class TargetError(ValueError):
    """A --python or --platform value that names no environment we can target."""


@dataclass(frozen=True, slots=True)
class Target:
    """One environment to warm for: a label, the marker variables and wheel tags ranked best first."""

    label: str
    environment: Mapping[str, str]  # PEP 508 marker variables (without `extra`)
    priority: Mapping[Tag, int] = field(repr=False, compare=False)  # tag -> rank, 0 = best

    @property
    def python_full_version(self) -> str:
        return self.environment["python_full_version"]

    def rank(self, tags: Iterable[Tag]) -> int | None:
        """The best rank among `tags` (a wheel's tag set), None when no tag is supported."""
        ranks = [r for t in tags if (r := self.priority.get(t)) is not None]
        return min(ranks) if ranks else None


# Oldest glibc each architecture's manylinux wheels can target (PEP 600; x86 goes back to manylinux1).
_OLDEST_GLIBC = {"x86_64": 5, "i686": 5}
_OLDEST_GLIBC_OTHER = 17
# PEP 599/571/513 aliases: manylinux2014 = 2_17, manylinux2010 = 2_12, manylinux1 = 2_5.
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_LEGACY_ARCHES = {
    17: {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"},
    12: {"x86_64", "i686"},
    5: {"x86_64", "i686"},
}
_LEGACY_INPUT = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
_WINDOWS = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}
_MANYLINUX = re.compile(r"manylinux_2_(\d+)_(\w+)")
_MUSLLINUX = re.compile(r"musllinux_1_(\d+)_(\w+)")
_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(arm64|x86_64)")
_PYTHON = re.compile(r"3\.(\d+)(?:\.(\d+))?")


def parse_python(text: str) -> tuple[int, ...]:
    """'3.12' -> (3, 12); '3.12.4' -> (3, 12, 4). Raises TargetError for anything else (CPython 3 only)."""
    match = _PYTHON.fullmatch(text.strip())
    if match is None:
        raise TargetError(f"--python {text!r}: expected a CPython version such as 3.12 or 3.12.4")
    return (3, *(int(part) for part in match.groups() if part is not None))


def expand_platform(platform: str) -> list[str]:
    """Every platform tag a machine of this platform accepts, best first (pip/uv semantics).

    manylinux_2_28 also accepts older glibc tags and the legacy manylinux2014/2010/1 aliases; macOS 11 also
    accepts older macOS tags and universal2. Raises TargetError for a platform we cannot describe.
    """
    legacy, _, arch = platform.partition("_")
    if legacy in _LEGACY_INPUT and arch:
        return _manylinux(_LEGACY_INPUT[legacy], arch)
    if match := _MANYLINUX.fullmatch(platform):
        return _manylinux(int(match[1]), match[2])
    if match := _MUSLLINUX.fullmatch(platform):
        return [f"musllinux_1_{minor}_{match[2]}" for minor in range(int(match[1]), -1, -1)]
    if match := _MACOS.fullmatch(platform):
        return list(mac_platforms((int(match[1]), int(match[2])), match[3]))
    if platform in _WINDOWS or re.fullmatch(r"linux_\w+", platform):
        return [platform]
    raise TargetError(
        f"--platform {platform!r}: expected manylinux_2_X_ARCH, musllinux_1_X_ARCH, macosx_X_Y_(arm64|x86_64), "
        "win_amd64, win32, win_arm64 or linux_ARCH"
    )


def _manylinux(glibc_minor: int, arch: str) -> list[str]:
    oldest = _OLDEST_GLIBC.get(arch, _OLDEST_GLIBC_OTHER)
    tags: list[str] = []
    for minor in range(glibc_minor, min(oldest, glibc_minor) - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY and arch in _LEGACY_ARCHES[minor]:
            tags.append(f"{_LEGACY[minor]}_{arch}")
    return tags


def platform_environment(platform: str) -> dict[str, str]:
    """The platform half of the marker variables for a platform tag (see expand_platform for the forms)."""
    if platform in _WINDOWS:
        return _platform_env("win32", "Windows", "nt", _WINDOWS[platform])
    if match := _MACOS.fullmatch(platform):
        return _platform_env("darwin", "Darwin", "posix", match[3])
    arch = re.sub(r"^(manylinux_2_\d+|musllinux_1_\d+|manylinux\d+|linux)_", "", platform)
    return _platform_env("linux", "Linux", "posix", arch)


def _platform_env(sys_platform: str, system: str, os_name: str, machine: str) -> dict[str, str]:
    # platform_release/platform_version describe one machine's kernel; a cross target has none to offer.
    return {"sys_platform": sys_platform, "platform_system": system, "os_name": os_name,
            "platform_machine": machine, "platform_release": "", "platform_version": ""}


def python_environment(version: tuple[int, ...]) -> dict[str, str]:
    """The Python half of the marker variables; X.Y means X.Y.0, as pip's --python-version does."""
    full = ".".join(str(part) for part in (*version, 0, 0)[:3])
    return {"python_version": f"{version[0]}.{version[1]}", "python_full_version": full,
            "implementation_name": "cpython", "implementation_version": full,
            "platform_python_implementation": "CPython"}


def _ranked(tags: Iterable[Tag]) -> dict[Tag, int]:
    ranks: dict[Tag, int] = {}
    for tag in tags:
        ranks.setdefault(tag, len(ranks))
    return ranks


def make_target(version: tuple[int, ...], platforms: Sequence[str], platform_env: Mapping[str, str]) -> Target:
    """A CPython `version` target accepting the already-expanded `platforms` (best first)."""
    short = version[:2]
    nodot = f"{short[0]}{short[1]}"
    tags = [*cpython_tags(short, abis=[f"cp{nodot}"], platforms=platforms),
            *compatible_tags(short, interpreter=f"cp{nodot}", platforms=platforms)]
    label = f"py{'.'.join(map(str, version))}-{platforms[0]}"
    return Target(label, {**platform_env, **python_environment(version)}, _ranked(tags))


def host_target() -> Target:
    """The running interpreter, exactly as pip would see it here."""
    env = {k: str(v) for k, v in default_environment().items()}
    first = next(iter(sys_tags())).platform
    return Target(f"py{env['python_version']}-{first}", env, _ranked(sys_tags()))


def build_targets(pythons: Sequence[str], platforms: Sequence[str]) -> tuple[Target, ...]:
    """Every (python, platform) pair; a missing side defaults to this interpreter. Raises TargetError."""
    if not pythons and not platforms:
        return (host_target(),)
    host_env = {k: str(v) for k, v in default_environment().items()}
    versions = [parse_python(p) for p in pythons] or [tuple(int(x) for x in host_env["python_version"].split("."))]
    if platforms:
        expanded = [(expand_platform(p), platform_environment(p)) for p in dict.fromkeys(platforms)]
    else:
        keys = ("sys_platform", "platform_system", "os_name", "platform_machine", "platform_release",
                "platform_version")
        expanded = [(list(platform_tags()), {k: host_env[k] for k in keys})]
    return tuple(make_target(v, plats, env) for v in dict.fromkeys(versions) for plats, env in expanded)
