"""Read lock files (PEP 751 pylock.toml, uv.lock) into the packages and files they pin; no I/O."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, NormalizedName, canonicalize_name

__all__ = ["LockError", "LockFile", "LockedFile", "LockedPackage", "parse_lock"]


class LockError(ValueError):
    """A lock file that is not valid TOML or lacks what a lock file must have; names the file and entry."""


@dataclass(frozen=True, slots=True)
class LockedFile:
    """A distribution file a lock pins: matched to the index by filename, checked against these hashes."""

    filename: str
    hashes: Mapping[str, str]  # algorithm -> lower-case hex


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: NormalizedName
    version: str | None
    files: tuple[LockedFile, ...]  # wheels and sdist alike
    marker: Marker | None = None  # pylock: when the package applies
    requires_python: SpecifierSet | None = None


@dataclass(frozen=True, slots=True)
class LockFile:
    """The fetchable packages of one lock file and the environment limits it declares."""

    origin: str
    packages: tuple[LockedPackage, ...]
    requires_python: SpecifierSet | None = None
    environments: tuple[Marker, ...] = ()  # pylock: the lock is valid only where one of these holds
    extras: frozenset[str] = frozenset()  # pylock: every extra/group, so markers admit all of them
    groups: frozenset[str] = frozenset()
    unsupported: tuple[str, ...] = ()  # VCS, direct URLs, local archives: not in any index
    skipped: tuple[str, ...] = ()  # the project's own editable/virtual entries


def parse_lock(text: str, origin: str) -> LockFile:
    """A pylock.toml (has `lock-version`) or uv.lock (has `[[package]]`). Raises LockError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{origin}: invalid TOML: {exc}") from None
    if "lock-version" in doc:
        return _parse_pylock(doc, origin)
    if "package" in doc or "version" in doc:
        return _parse_uv_lock(doc, origin)
    raise LockError(f"{origin}: neither a pylock.toml (no lock-version) nor a uv.lock (no [[package]])")


# --- pylock.toml (PEP 751) ---------------------------------------------------------------------------------


def _parse_pylock(doc: Mapping[str, Any], origin: str) -> LockFile:
    version = str(doc.get("lock-version", ""))
    if version.partition(".")[0] != "1":
        raise LockError(f"{origin}: unsupported lock-version {version!r} (need 1.x)")
    packages: list[LockedPackage] = []
    unsupported: list[str] = []
    for index, entry in enumerate(_tables(doc, "packages", origin)):
        where = f"{origin}: packages[{index}]"
        name = _name(entry, where)
        direct = next((k for k in ("vcs", "directory", "archive") if k in entry), None)
        if direct is not None:
            unsupported.append(f"{where}: {name} comes from a {direct} source, not an index")
            continue
        files = [_pylock_file(e, f"{where}.wheels[{i}]") for i, e in enumerate(_tables(entry, "wheels", where))]
        if isinstance(entry.get("sdist"), dict):
            files.append(_pylock_file(entry["sdist"], f"{where}.sdist"))
        packages.append(LockedPackage(name, _opt_str(entry, "version", where), tuple(files),
                                      _marker(entry.get("marker"), where), _specifier(entry, where)))
    return LockFile(
        origin,
        tuple(packages),
        requires_python=_specifier(doc, origin),
        environments=tuple(m for raw in _strings(doc, "environments", origin) if (m := _marker(raw, origin))),
        extras=frozenset(_strings(doc, "extras", origin)),
        groups=frozenset(_strings(doc, "dependency-groups", origin)),
        unsupported=tuple(unsupported),
    )


def _pylock_file(entry: Mapping[str, Any], where: str) -> LockedFile:
    filename = entry.get("name") or _last_segment(entry.get("url") or entry.get("path"))
    if not isinstance(filename, str) or not filename:
        raise LockError(f"{where}: no file name (needs name, url or path)")
    hashes = entry.get("hashes", {})
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise LockError(f"{where}: hashes must be a table of algorithm = \"hex\"")
    return LockedFile(filename, {str(k).lower(): v.lower() for k, v in hashes.items()})


# --- uv.lock ------------------------------------------------------------------------------------------------

_UV_LOCAL = ("editable", "virtual", "directory", "path")
_UV_DIRECT = ("git", "url")


def _parse_uv_lock(doc: Mapping[str, Any], origin: str) -> LockFile:
    packages: list[LockedPackage] = []
    unsupported: list[str] = []
    skipped: list[str] = []
    for index, entry in enumerate(_tables(doc, "package", origin)):
        where = f"{origin}: package[{index}]"
        name = _name(entry, where)
        source = entry.get("source", {})
        kind = next(iter(source), "registry") if isinstance(source, dict) and source else "registry"
        if kind in _UV_LOCAL:
            skipped.append(f"{name} ({kind} {source[kind]})")
            continue
        if kind in _UV_DIRECT:
            unsupported.append(f"{where}: {name} comes from {kind} {source[kind]}, not an index")
            continue
        files = [_uv_file(e, f"{where}.wheels[{i}]") for i, e in enumerate(_tables(entry, "wheels", where))]
        if isinstance(entry.get("sdist"), dict):
            files.append(_uv_file(entry["sdist"], f"{where}.sdist"))
        packages.append(LockedPackage(name, _opt_str(entry, "version", where), tuple(files)))
    return LockFile(origin, tuple(packages), requires_python=_specifier(doc, origin),
                    unsupported=tuple(unsupported), skipped=tuple(skipped))


def _uv_file(entry: Mapping[str, Any], where: str) -> LockedFile:
    filename = entry.get("filename") or _last_segment(entry.get("url") or entry.get("path"))
    if not isinstance(filename, str) or not filename:
        raise LockError(f"{where}: no file name (needs url or path)")
    raw = entry.get("hash")
    if raw is None:
        return LockedFile(filename, {})
    alg, sep, digest = str(raw).partition(":")
    if not sep or not digest:
        raise LockError(f"{where}: hash must look like \"sha256:<hex>\", not {raw!r}")
    return LockedFile(filename, {alg.lower(): digest.lower()})


# --- shared field readers ----------------------------------------------------------------------------------


def _tables(doc: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise LockError(f"{where}: {key} must be an array of tables")
    return value


def _strings(doc: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LockError(f"{where}: {key} must be an array of strings")
    return value


def _name(entry: Mapping[str, Any], where: str) -> NormalizedName:
    raw = entry.get("name")
    if not isinstance(raw, str):
        raise LockError(f"{where}: no name")
    try:
        return canonicalize_name(raw, validate=True)
    except InvalidName:
        raise LockError(f"{where}: invalid project name {raw!r}") from None


def _opt_str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise LockError(f"{where}: {key} must be a string")
    return value


def _marker(raw: object, where: str) -> Marker | None:
    if raw is None:
        return None
    try:
        return Marker(str(raw))
    except InvalidMarker as exc:
        raise LockError(f"{where}: invalid marker {raw!r}: {exc}") from None


def _specifier(entry: Mapping[str, Any], where: str) -> SpecifierSet | None:
    raw = entry.get("requires-python")
    if raw is None:
        return None
    try:
        return SpecifierSet(str(raw))
    except InvalidSpecifier:
        raise LockError(f"{where}: invalid requires-python {raw!r}") from None


def _last_segment(url_or_path: object) -> str | None:
    if not isinstance(url_or_path, str):
        return None
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path
    return unquote(path.replace("\\", "/").rsplit("/", 1)[-1]) or None
