"""Writing a bundle (a directory, or a tar when the path ends with `.tar`), hashing every file as it is written.
Synchronous: run it in a worker thread (asyncio.to_thread)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import shutil
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from proxy.bundle.manifest import (
    MANIFEST,
    MANIFEST_SHA256,
    BundleError,
    FileEntry,
    Manifest,
    parse_time,
    render_manifest,
    render_manifest_sha256,
)

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Content:
    """One file to write: bytes in memory, or a committed blob copied from storage (and checked)."""

    path: str
    data: bytes | None = None
    blob: Callable[[], IO[bytes]] | None = None  # opens the blob (BlobFiles.open); FileNotFoundError when gone
    sha256: str | None = None  # a blob's content address: its bytes must hash to it
    size: int | None = None  # a blob's length (a tar header comes before the bytes)


class _Hashing:
    """A reader that hashes and counts what passes through (tarfile reads members through it)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self.hasher.update(chunk)
        self.size += len(chunk)
        return chunk


def is_tar(out: Path) -> bool:
    return out.suffix == ".tar"


def write_bundle(
    out: Path, contents: Iterable[Content], header: Manifest, on_written: Callable[[int], None] | None = None
) -> Manifest:
    """Write every content plus manifest.json and manifest.sha256 to `out`, which must not exist yet.

    The bundle is written under a temporary name beside `out` and renamed when complete. `on_written(size)` is
    called after each content (for progress). Raises BundleError.
    """
    written = on_written or (lambda _size: None)
    if out.exists():
        raise BundleError(f"{out} already exists; choose a new bundle path")
    partial = out.with_name(f".{out.name}.partial-{secrets.token_hex(4)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = _TarWriter(partial, header) if is_tar(out) else _DirWriter(partial)
        with writer:
            entries = tuple(_added(writer.add(content), written) for content in contents)
            manifest = replace(header, files=entries)
            manifest_bytes = render_manifest(manifest)
            writer.add(Content(MANIFEST, data=manifest_bytes))
            writer.add(Content(MANIFEST_SHA256, data=render_manifest_sha256(manifest_bytes)))
        partial.rename(out)
    except OSError as exc:  # a full or read-only disk: one line, not a traceback
        _remove(partial)
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(partial)
        raise
    return manifest


def _added(entry: FileEntry, written: Callable[[int], None]) -> FileEntry:
    written(entry.size)
    return entry


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # never there, or its parent is not even a directory
            path.unlink()


def _opened(content: Content) -> IO[bytes]:
    if content.blob is not None:
        try:
            return content.blob()
        except FileNotFoundError:
            raise BundleError(
                f"blob {content.sha256} vanished from the data dir during the export (evicted?); run it again"
            ) from None
    assert content.data is not None
    return io.BytesIO(content.data)


def _entry(content: Content, hashing: _Hashing) -> FileEntry:
    digest = hashing.hasher.hexdigest()
    if content.sha256 is not None and digest != content.sha256:
        raise BundleError(f"blob {content.sha256} in the data dir is damaged (its bytes hash to {digest})")
    return FileEntry(content.path, hashing.size, digest)


class _DirWriter:
    def __init__(self, root: Path) -> None:
        self._root = root

    def __enter__(self) -> _DirWriter:
        self._root.mkdir()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add(self, content: Content) -> FileEntry:
        target = self._root / content.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with _opened(content) as src, target.open("xb") as dst:
            hashing = _Hashing(src)
            while chunk := hashing.read(CHUNK):
                dst.write(chunk)
        return _entry(content, hashing)


class _TarWriter:
    def __init__(self, path: Path, header: Manifest) -> None:
        self._path = path
        self._mtime = _timestamp(header.created_at)
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> _TarWriter:
        self._tar = tarfile.open(self._path, "x:", format=tarfile.PAX_FORMAT)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tar is not None:
            self._tar.close()

    def add(self, content: Content) -> FileEntry:
        assert self._tar is not None
        size = len(content.data) if content.data is not None else content.size
        assert size is not None, "a blob's size is needed for its tar header"
        with _opened(content) as src:
            info = tarfile.TarInfo(content.path)
            info.size, info.mtime, info.mode = size, self._mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            hashing = _Hashing(src)
            self._tar.addfile(info, hashing)  # tarfile only calls read()
        return _entry(content, hashing)


def _timestamp(iso: str) -> int:
    return int(parse_time(iso).timestamp())
