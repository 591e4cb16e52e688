"""Reading a bundle (a directory or an uncompressed tar) and verifying every byte of it. Synchronous: run it in
a worker thread (asyncio.to_thread)."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from proxy.backends.records import DeletedFile, PrivateFile
from proxy.bundle.manifest import (
    BLOBS,
    DELETED,
    MANIFEST,
    MANIFEST_SHA256,
    PAGES,
    BundleError,
    Manifest,
    check_manifest_sha256,
    check_path,
    parse_manifest,
)
from proxy.bundle.records import PageRecord, PrivateProject, decode_deleted, decode_page, decode_private
from proxy.simple.names import NormalizedName

CHUNK = 1024 * 1024
MAX_RECORD_BYTES = 256 * 2**20  # a JSON record is read into memory: refuse absurd sizes before reading


class Source(Protocol):
    """The files of a bundle by relative path; open() gives a binary reader."""

    name: str

    def sizes(self) -> dict[str, int]: ...
    def open(self, path: str) -> IO[bytes]: ...
    def close(self) -> None: ...


class DirSource:
    def __init__(self, root: Path) -> None:
        self._root = root
        self.name = str(root)

    def sizes(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(self._root):
            base = Path(dirpath)
            for entry in dirnames:
                if (base / entry).is_symlink():
                    raise BundleError(f"{self.name}: {self._relative(base / entry)} is a symbolic link")
            for entry in filenames:
                path = base / entry
                if path.is_symlink() or not path.is_file():
                    raise BundleError(f"{self.name}: {self._relative(path)} is not a regular file")
                found[self._relative(path)] = path.stat().st_size
        return found

    def _relative(self, path: Path) -> str:
        return path.relative_to(self._root).as_posix()

    def open(self, path: str) -> IO[bytes]:
        return (self._root / check_path(path)).open("rb")

    def close(self) -> None:
        pass


class TarSource:
    """An uncompressed tar; members are read in place (random access), never extracted."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        try:
            self._size = path.stat().st_size
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"{path} is not a readable uncompressed tar ({exc})") from None
        self._members: dict[str, tarfile.TarInfo] = {}

    def sizes(self) -> dict[str, int]:
        try:
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"{self.name} is truncated or damaged ({exc})") from None
        self._check_complete(members)
        for member in members:
            name = member.name.removeprefix("./")
            if member.isdir() and name in {"", "."}:
                continue
            check_path(name.rstrip("/") if member.isdir() else name)
            if member.isdir():
                continue
            if not member.isreg():
                raise BundleError(f"{self.name}: {member.name} is not a regular file (links are refused)")
            if name in self._members:
                raise BundleError(f"{self.name}: {name} appears twice")
            self._members[name] = member
        return {name: member.size for name, member in self._members.items()}

    def _check_complete(self, members: list[tarfile.TarInfo]) -> None:
        """tarfile silently stops at a cut-off header: demand every member's data and the end-of-archive blocks."""
        cut = next((m for m in members if m.offset_data + m.size > self._size), None)
        if cut is not None:
            raise BundleError(f"{self.name} is truncated (it ends inside {cut.name})")
        if self._size - self._tar.offset < 2 * tarfile.BLOCKSIZE:
            raise BundleError(f"{self.name} is truncated (it has no end-of-archive marker)")

    def open(self, path: str) -> IO[bytes]:
        member = self._members.get(path)
        reader = self._tar.extractfile(member) if member is not None else None
        if reader is None:
            raise BundleError(f"{self.name}: {path} is missing")
        return reader

    def close(self) -> None:
        self._tar.close()


def open_source(path: Path) -> Source:
    """The bundle at `path`: a directory, or a tar file. Raises BundleError."""
    if path.is_dir():
        return DirSource(path)
    if path.is_file():
        return TarSource(path)
    raise BundleError(f"{path}: no such bundle (a directory or a .tar file)")


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """A bundle whose every file matched its manifest, with its records decoded."""

    manifest: Manifest
    manifest_sha256: str
    pages: tuple[PageRecord, ...]
    private: dict[NormalizedName, list[PrivateFile]]
    deleted: tuple[DeletedFile, ...]
    projects: dict[NormalizedName, PrivateProject] = field(default_factory=dict)  # indexes and members by name


def read_small(source: Source, path: str, limit: int = MAX_RECORD_BYTES) -> bytes:
    try:
        with source.open(path) as f:
            data = f.read(limit + 1)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{source.name}: cannot read {path} ({exc})") from None
    if len(data) > limit:
        raise BundleError(f"{source.name}: {path} is too large")
    return data


def iter_chunks(source: Source, path: str) -> Generator[bytes, None, None]:
    """The bytes of a bundle file in chunks. Raises BundleError when it cannot be read to the end."""
    try:
        with source.open(path) as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{source.name}: cannot read {path} ({exc})") from None


def verify(source: Source) -> VerifiedBundle:
    """Check the manifest, the exact file set, and every file's size and sha256; decode the records."""
    sizes = source.sizes()
    for required in (MANIFEST, MANIFEST_SHA256):
        if required not in sizes:
            raise BundleError(f"{source.name} has no {required} (not a shadowpi bundle, or damaged)")
    manifest_bytes = read_small(source, MANIFEST)
    check_manifest_sha256(manifest_bytes, read_small(source, MANIFEST_SHA256, 4096))
    manifest = parse_manifest(manifest_bytes)
    listed = {entry.path for entry in manifest.files}
    extra = sorted(set(sizes) - listed - {MANIFEST, MANIFEST_SHA256})
    if extra:
        raise BundleError(f"{source.name} has a file its manifest does not list: {extra[0]}")
    records: dict[str, bytes] = {}
    for entry in manifest.files:
        if entry.path not in sizes:
            raise BundleError(f"{source.name} is missing {entry.path}")
        if sizes[entry.path] != entry.size:
            raise BundleError(f"{entry.path} has {sizes[entry.path]} bytes, but the manifest says {entry.size}")
        is_record = not entry.path.startswith(BLOBS + "/")
        if is_record and entry.size > MAX_RECORD_BYTES:
            raise BundleError(f"{entry.path} is too large for a bundle record ({entry.size} bytes)")
        digest, data = _hash(source, entry.path, keep=is_record)
        if digest != entry.sha256:
            raise BundleError(f"{entry.path} is damaged: its sha256 is {digest}, the manifest says {entry.sha256}")
        if data is not None:
            records[entry.path] = data
    return _decode(manifest, hashlib.sha256(manifest_bytes).hexdigest(), records)


def _hash(source: Source, path: str, *, keep: bool) -> tuple[str, bytes | None]:
    hasher = hashlib.sha256()
    kept: list[bytes] = []
    for chunk in iter_chunks(source, path):
        hasher.update(chunk)
        if keep:
            kept.append(chunk)
    return hasher.hexdigest(), b"".join(kept) if keep else None


def _decode(manifest: Manifest, manifest_sha256: str, records: dict[str, bytes]) -> VerifiedBundle:
    pages: list[PageRecord] = []
    private: dict[NormalizedName, list[PrivateFile]] = {}
    projects: dict[NormalizedName, PrivateProject] = {}
    deleted: list[DeletedFile] = []
    for path, data in sorted(records.items()):
        top, _, rest = path.partition("/")
        name = NormalizedName(rest.removesuffix(".json"))
        if path == DELETED:
            deleted = decode_deleted(path, data)
        elif top == PAGES:
            pages.append(decode_page(path, name, data))
        else:
            private[name], projects[name] = decode_private(path, name, data)
    return VerifiedBundle(manifest, manifest_sha256, tuple(pages), private, tuple(deleted), projects)
