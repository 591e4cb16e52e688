"""Core metadata of a distribution: Requires-Dist from METADATA/PKG-INFO bytes, and reading them from archives."""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.metadata import parse_email
from packaging.version import InvalidVersion, Version

__all__ = ["Dependencies", "dependencies", "read_archive_metadata"]

# Metadata 2.2 (PEP 643) is the first version in which an sdist's PKG-INFO fields are reliable.
_RELIABLE_SDIST_METADATA = Version("2.2")


@dataclass(frozen=True, slots=True)
class Dependencies:
    """The Requires-Dist strings of one file, or a warning why they are unknown (then treated as none)."""

    requires_dist: tuple[str, ...]
    warning: str | None = None


def dependencies(data: bytes, filename: str, *, from_sdist: bool) -> Dependencies:
    """Requires-Dist from core metadata bytes.

    For an sdist's PKG-INFO they count only from Metadata-Version 2.2 on and when not declared Dynamic
    (PEP 643); otherwise the dependencies are unknown and a warning says so.
    """
    raw, _unparsed = parse_email(data)
    requires = tuple(raw.get("requires_dist", []))
    if not from_sdist:
        return Dependencies(requires)
    try:
        version = Version(raw.get("metadata_version", "0"))
    except InvalidVersion:
        version = Version("0")
    dynamic = {d.lower() for d in raw.get("dynamic", [])}
    if version >= _RELIABLE_SDIST_METADATA and "requires-dist" not in dynamic:
        return Dependencies(requires)
    return Dependencies((), f"cannot determine dependencies of sdist {filename} (metadata {version}; "
                            "they are computed at build time): its dependencies were not warmed")


def read_archive_metadata(path: Path, filename: str) -> bytes | None:
    """The METADATA of a wheel or the top-level PKG-INFO of an sdist at `path` (blocking: run in an executor).

    None when the archive has no such member or cannot be read.
    """
    try:
        if filename.endswith((".whl", ".zip")):
            return _from_zip(path, wheel=filename.endswith(".whl"))
        if filename.endswith(".tar.gz"):
            return _from_tar(path)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError):
        return None
    return None


def _from_zip(path: Path, *, wheel: bool) -> bytes | None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            top, _, rest = name.partition("/")
            if (wheel and top.endswith(".dist-info") and rest == "METADATA") or (not wheel and rest == "PKG-INFO"):
                return archive.read(name)
    return None


def _from_tar(path: Path) -> bytes | None:
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            parts = posixpath.normpath(member.name).split("/")
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                handle = archive.extractfile(member)
                return handle.read() if handle is not None else None
    return None
