"""Read the core metadata out of an uploaded wheel or sdist, defensively (zip bombs, unsafe paths, links)."""

from __future__ import annotations

import gzip
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from packaging.metadata import parse_email
from packaging.version import InvalidVersion, Version

from proxy.errors import InvalidProjectName, InvalidUpload
from proxy.simple.members import first_inside_link, link_escapes, unsafe_path
from proxy.simple.names import NormalizedName, parse_project_name
from proxy.simple.publishing import display_value
from proxy.zipcheck import count_entries, zip_end_record

__all__ = ["MAX_METADATA_BYTES", "ArchiveLimits", "DistMetadata", "inspect_distribution", "zip_end_record"]

# Real METADATA/PKG-INFO files are kilobytes; anything bigger is a decompression bomb or junk we would serve.
MAX_METADATA_BYTES = 10 * 2**20
MAX_LINK_TARGET = 4096  # bytes: PATH_MAX; a zip symlink's target is its data
# zipfile raises these for corrupt or unsupported input: RuntimeError for encrypted members,
# NotImplementedError for unknown compression methods, ValueError for impossible offsets.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    ValueError,
)
_TAR_ERRORS = (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on the work spent walking an archive (every member is checked; a gzip stream can only be
    decompressed, not skipped). The largest wheels on PyPI have tens of thousands of files."""

    max_members: int = 100_000
    max_unpacked_bytes: int = 2 * 2**30


@dataclass(frozen=True, slots=True)
class DistMetadata:
    """What an archive's core metadata says about itself."""

    name: NormalizedName
    version: Version
    requires_python: str | None
    metadata: bytes  # raw METADATA (wheel) or PKG-INFO (sdist); a wheel's is served as its PEP 658 file


def inspect_distribution(path: Path, filename: str, limits: ArchiveLimits) -> DistMetadata:
    """The core metadata of the wheel or sdist stored at `path`, uploaded as `filename`.

    Every member is checked (paths, links, types) within `limits`. Blocking file I/O and decompression: run it in
    a thread executor, never on the event loop.
    Raises InvalidUpload ("Invalid distribution file. ...") for corrupt, ambiguous or unsafe archives.
    """
    if filename.endswith(".whl"):
        data = _wheel_metadata(path, filename, limits)
    elif filename.endswith(".tar.gz"):
        data = _tar_pkg_info(path, f"{filename.removesuffix('.tar.gz')}/PKG-INFO", limits)
    elif filename.endswith(".zip"):
        data = _zip_pkg_info(path, f"{filename.removesuffix('.zip')}/PKG-INFO", limits)
    else:
        raise _invalid(f"Unknown distribution type: {_shown(filename)}")
    return _parse_metadata(data)


def _shown(value: str) -> str:
    # Archive member names and filenames are untrusted and may be long; keep messages one bounded line.
    return display_value(value, limit=200)


def _invalid(reason: str) -> InvalidUpload:
    return InvalidUpload(f"Invalid distribution file. {reason}")


def _too_many(limits: ArchiveLimits) -> InvalidUpload:
    return _invalid(f"Too many files in archive (more than {limits.max_members})")


def _check_name(name: str) -> None:
    if unsafe_path(name):
        raise _invalid(f"Unsafe path in archive: {_shown(name)}")


def _check_link(name: str, target: str, *, hard: bool = False) -> None:
    if link_escapes(name, target, hard=hard):
        raise _invalid(f"Unsafe link in archive: {_shown(name)} -> {_shown(target)}")


def _check_not_inside_links(names: Iterable[str], links: set[str]) -> None:
    found = first_inside_link(names, links)
    if found is not None:
        raise _invalid(f"Unsafe path in archive: {_shown(found[0])} is inside the symbolic link {_shown(found[1])}")


# --- wheels and zip sdists ---


@contextmanager
def _open_zip(path: Path, limits: ArchiveLimits) -> Iterator[zipfile.ZipFile]:
    with path.open("rb") as raw:
        try:
            _check_central_directory(raw, limits)
            raw.seek(0)
            with zipfile.ZipFile(raw) as archive:
                _check_zip_members(archive, limits)
                yield archive
        except _ZIP_ERRORS as exc:
            raise _invalid(str(exc) or type(exc).__name__) from None


def _check_central_directory(raw: BinaryIO, limits: ArchiveLimits) -> None:
    """Refuse too many entries from the end records and a bounded count, before zipfile builds any of them."""
    end = zip_end_record(raw)
    if end is None:
        raise zipfile.BadZipFile("File is not a zip file")
    if end.entries > limits.max_members or count_entries(raw, end, limits.max_members) > limits.max_members:
        raise _too_many(limits)


def _check_zip_members(archive: zipfile.ZipFile, limits: ArchiveLimits) -> None:
    infos = archive.infolist()
    if len(infos) > limits.max_members:  # cannot happen after _check_central_directory; kept as the last word
        raise _too_many(limits)
    seen: set[str] = set()
    links: set[str] = set()
    for info in infos:
        _check_name(info.orig_filename)  # zipfile cuts `filename` at a NUL; the original shows it
        # A zip may repeat a name; readers then disagree on which entry is "the" METADATA.
        if info.filename in seen:
            raise _invalid(f"Duplicate file in archive: {_shown(info.filename)}")
        seen.add(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            _check_link(info.filename, _zip_link_target(archive, info))
            links.add(info.filename)
    _check_not_inside_links(seen, links)


def _zip_link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A zip symlink's target is its data (how Info-ZIP and pip's unpacker store and read it)."""
    with archive.open(info) as member:
        data = member.read(MAX_LINK_TARGET + 1)
    if len(data) > MAX_LINK_TARGET:
        raise _invalid(f"Unsafe link in archive: {_shown(info.filename)} has a target longer than {MAX_LINK_TARGET}")
    return data.decode("utf-8", "replace")


def _read_zip_member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _invalid(f"{_shown(name)} is a symbolic link")
    if info.file_size > MAX_METADATA_BYTES:
        raise _invalid(f"{_shown(name)} is larger than {MAX_METADATA_BYTES} bytes")
    with archive.open(info) as member:
        data = member.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise _invalid(f"{_shown(name)} is larger than {MAX_METADATA_BYTES} bytes")
    return data


def _wheel_metadata(path: Path, filename: str, limits: ArchiveLimits) -> bytes:
    with _open_zip(path, limits) as archive:
        names = set(archive.namelist())
        dist_info = _dist_info_dir(names, filename)
        for required in ("WHEEL", "RECORD"):
            if f"{dist_info}/{required}" not in names:
                raise _invalid(f"Wheel '{_shown(filename)}' does not contain a {required} file")
        return _read_zip_member(archive, f"{dist_info}/METADATA")


def _dist_info_dir(names: Iterable[str], filename: str) -> str:
    """The wheel's one top-level .dist-info directory; it must contain METADATA.

    The filename's `<name>-<version>` gives the expected directory; a single differently spelled one (older
    tools did not normalize) is accepted. Several are refused, as pip does: installers would disagree.
    """
    dirs = sorted({top for top, sep, _ in (n.partition("/") for n in names) if sep and top.endswith(".dist-info")})
    if len(dirs) > 1:
        shown = ", ".join(map(_shown, dirs))
        raise _invalid(f"Wheel '{_shown(filename)}' contains multiple .dist-info directories: {shown}")
    dist_info = dirs[0] if dirs else "-".join(filename.split("-")[:2]) + ".dist-info"
    if f"{dist_info}/METADATA" not in names:
        raise _invalid(
            f"Wheel '{_shown(filename)}' does not contain the required METADATA file: {_shown(dist_info)}/METADATA"
        )
    return dist_info


def _zip_pkg_info(path: Path, expected: str, limits: ArchiveLimits) -> bytes:
    with _open_zip(path, limits) as archive:
        return _read_zip_member(archive, _pick_pkg_info(archive.namelist(), expected))


# --- sdists ---


def _is_top_pkg_info(name: str) -> bool:
    # The sdist format puts PKG-INFO in the single top-level directory `<name>-<version>/`.
    top, sep, rest = name.partition("/")
    return bool(sep) and top not in {"", "."} and rest == "PKG-INFO"


def _pick_pkg_info(names: Iterable[str], expected: str) -> str:
    found = sorted({name for name in names if _is_top_pkg_info(name)})
    if expected in found:
        return expected
    if not found:
        raise _invalid("PKG-INFO not found in sdist")
    if len(found) > 1:
        raise _invalid(f"Multiple PKG-INFO files in sdist: {', '.join(map(_shown, found))}")
    return found[0]


def _tar_pkg_info(path: Path, expected: str, limits: ArchiveLimits) -> bytes:
    with path.open("rb") as raw:
        try:
            with tarfile.open(fileobj=raw, mode="r:gz") as archive:
                return _read_tar_member(archive, _walk_tar(archive, expected, limits))
        except _TAR_ERRORS as exc:
            raise _invalid(str(exc) or type(exc).__name__) from None


def _walk_tar(archive: tarfile.TarFile, expected: str, limits: ArchiveLimits) -> tarfile.TarInfo:
    """Check every member (headers only, no data is read) and pick the expected PKG-INFO, else the one top-level
    PKG-INFO. The whole stream is decompressed: what follows PKG-INFO is unpacked by installers too."""
    candidates: dict[str, tarfile.TarInfo] = {}
    names: list[str] = []
    links: set[str] = set()
    unpacked = 0
    for count, member in enumerate(archive, start=1):
        unpacked += member.size
        if count > limits.max_members:
            raise _too_many(limits)
        if unpacked > limits.max_unpacked_bytes:
            raise _invalid(f"Archive is too large when unpacked (more than {limits.max_unpacked_bytes} bytes)")
        _check_tar_member(member)
        names.append(member.name)
        if member.issym():
            links.add(member.name)
        if _is_top_pkg_info(member.name):
            candidates[member.name] = member  # a repeated name: the last one wins, as on extraction
    _check_not_inside_links(names, links)
    return candidates[_pick_pkg_info(candidates, expected)]


def _check_tar_member(member: tarfile.TarInfo) -> None:
    _check_name(member.name)
    if member.issym() or member.islnk():
        _check_link(member.name, member.linkname, hard=member.islnk())
    elif not (member.isreg() or member.isdir()):
        raise _invalid(f"Unsupported file type in archive: {_shown(member.name)} (only files, directories and links)")


def _read_tar_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    # A symlink or hard link would make us read (and later serve) some other member; devices make no sense.
    if not member.isreg():
        raise _invalid(f"{_shown(member.name)} is not a regular file")
    if member.size > MAX_METADATA_BYTES:
        raise _invalid(f"{_shown(member.name)} is larger than {MAX_METADATA_BYTES} bytes")
    extracted = archive.extractfile(member)
    if extracted is None:
        raise _invalid(f"{_shown(member.name)} cannot be read")
    with extracted:
        data = extracted.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise _invalid(f"{_shown(member.name)} is larger than {MAX_METADATA_BYTES} bytes")
    return data


# --- metadata ---


def _parse_metadata(data: bytes) -> DistMetadata:
    # parse_email is lenient: fields it cannot parse land in its second result and are ignored here.
    raw, _unparsed = parse_email(data)
    name, version = raw.get("name"), raw.get("version")
    if name is None:
        raise _invalid("Metadata has no valid Name")
    if version is None:
        raise _invalid("Metadata has no valid Version")
    try:
        normalized = parse_project_name(name)
    except InvalidProjectName:
        raise _invalid(f"Metadata has no valid Name: '{display_value(name)}'") from None
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise _invalid(f"Metadata has no valid Version: '{display_value(version)}'") from None
    return DistMetadata(normalized, parsed, raw.get("requires_python"), data)
