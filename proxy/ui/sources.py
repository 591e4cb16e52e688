"""Where a project page's README comes from: core metadata already in storage, never fetched for the page.

- private wheels: the stored METADATA (the PEP 658 file kept at upload);
- private sdists (a release without wheels): PKG-INFO, read from the stored sdist on demand. Uploads checked
  the archive already; storing PKG-INFO at upload would need a new database column, and a PKG-INFO must not be
  advertised as PEP 658 metadata (sdist metadata may be dynamic, and pip would trust it for resolution);
- cached upstream projects: the `.metadata` of the newest file whose metadata is in the cache. Nothing is asked
  of upstream: a page view must not make traffic, and a private name never reaches upstream anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from packaging.version import InvalidVersion, Version

from proxy.archives import ArchiveLimits, inspect_distribution
from proxy.db import PrivateFile
from proxy.errors import InvalidUpload
from proxy.files import FileCache
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import version_of_filename
from proxy.web.files import metadata_file

log = logging.getLogger(__name__)
MAX_SDIST_BYTES = 64 * 2**20  # an sdist read for its PKG-INFO: bigger ones show "README not available"
MAX_UPSTREAM_CANDIDATES = 20  # newest files checked for a cached .metadata


class BlobBytes(Protocol):
    """Reads a small committed blob (the blob store's read_bytes)."""

    async def read_bytes(self, sha256: str) -> bytes: ...


class Origin(enum.Enum):
    """Where the README shown came from, or why there is none."""

    WHEEL = "wheel metadata"
    SDIST = "sdist PKG-INFO"
    CACHED = "cached metadata"
    NOT_CACHED = "not cached"  # upstream project without cached metadata
    MISSING = "missing"  # private project whose metadata could not be read


@dataclass(frozen=True, slots=True)
class Found:
    metadata: bytes | None
    origin: Origin
    version: str | None  # the release the metadata describes


class MetadataSource:
    def __init__(self, files: FileCache, blobs: BlobBytes, executor: Executor | None) -> None:
        self._files = files
        self._blobs = blobs
        self._executor = executor

    async def private(self, records: Sequence[PrivateFile], version: str | None) -> Found:
        """The metadata of release `version` (its wheel's METADATA, else its sdist's PKG-INFO)."""
        release = [r for r in records if r.version == version] or list(records)
        for record in sorted(release, key=lambda r: not r.filename.endswith(".whl")):
            if record.metadata_sha256:
                with contextlib.suppress(OSError):
                    return Found(await self._blobs.read_bytes(record.metadata_sha256), Origin.WHEEL, record.version)
        for record in release:
            if record.filename.endswith((".tar.gz", ".zip")) and record.size <= MAX_SDIST_BYTES:
                data = await self._sdist_metadata(record)
                if data is not None:
                    return Found(data, Origin.SDIST, record.version)
        return Found(None, Origin.MISSING, version)

    async def _sdist_metadata(self, record: PrivateFile) -> bytes | None:
        try:
            data = await self._blobs.read_bytes(record.sha256)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _pkg_info, data, record.filename)
        except (OSError, InvalidUpload) as exc:
            log.warning("could not read PKG-INFO from %s: %s", record.filename, exc)
            return None

    async def upstream(self, page: ProjectPage) -> Found:
        """The newest cached `.metadata` among the page's files (looked up in the cache only)."""
        for dist in _newest_with_metadata(page.files)[:MAX_UPSTREAM_CANDIDATES]:
            cached = await self._files.cached(metadata_file(dist))
            if cached is None:
                continue
            with contextlib.suppress(OSError):
                data = await self._blobs.read_bytes(cached.blob.sha256)
                return Found(data, Origin.CACHED, version_of_filename(dist.filename))
        return Found(None, Origin.NOT_CACHED, None)


def _newest_with_metadata(files: Sequence[DistFile]) -> list[DistFile]:
    def key(dist: DistFile) -> tuple[int, Version, bool, str]:
        raw = version_of_filename(dist.filename)
        try:
            version = Version(raw) if raw else Version("0")
        except InvalidVersion:
            version = Version("0")
        return (dist.yanked is False, version, dist.filename.endswith(".whl"), dist.upload_time or "")

    return sorted((f for f in files if f.has_metadata), key=key, reverse=True)


def _pkg_info(data: bytes, filename: str) -> bytes:
    """PKG-INFO of an sdist given as bytes, read with the upload path's defensive checks. Blocking."""
    fd, name = tempfile.mkstemp(prefix="shadowpi-readme-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return inspect_distribution(path, filename, ArchiveLimits()).metadata
    finally:
        path.unlink()
