"""twine's legacy upload: the multipart form streamed to a spool, validated like PyPI, committed to the overlay.

Nothing becomes visible until the blob and its database row are both committed: the row is written last.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import MultipartReader
from packaging.version import Version

from proxy.archives import ArchiveLimits, DistMetadata, inspect_distribution
from proxy.config import UploadConfig
from proxy.db import Database, DuplicateFilename, PrivateFile
from proxy.errors import FileExists, InvalidUpload
from proxy.form import FormLimits, ReceivedForm, read_form
from proxy.simple.uploads import (
    UploadRequest,
    check_digests,
    check_filename,
    check_metadata_matches,
    parse_upload_form,
    release_key,
)
from proxy.storage import BlobStore

UPLOAD_DIGESTS = ("blake2_256", "md5")  # besides sha256, what clients may send for us to check


@dataclass(frozen=True, slots=True)
class UploadResult:
    filename: str
    project: str
    version: str
    created: bool  # False: an identical file was already there (idempotent re-upload)


class Uploader:
    """Receives uploads into blob storage and the private_files table."""

    def __init__(self, db: Database, store: BlobStore, config: UploadConfig) -> None:
        self._db = db
        self._store = store
        self._config = config

    async def receive(self, reader: MultipartReader, user: str) -> UploadResult:
        """Read, validate and commit one upload. Raises InvalidUpload (and its subclasses)."""
        received = await read_form(reader, self._store, FormLimits.of(self._config), UPLOAD_DIGESTS)
        try:
            return await self._accept(received, user)
        finally:
            await self._store.discard(received.spool)
            self._store.release(received.spool)

    async def _accept(self, received: ReceivedForm, user: str) -> UploadResult:
        request = parse_upload_form(received.fields)
        check_filename(request, received.filename)
        digests = received.spool.digests()
        check_digests(request, digests)
        existing = await self._check_reuse(received.filename, digests)
        if existing is not None:
            return existing
        await self._check_release_slot(request, received.filename)
        loop = asyncio.get_running_loop()
        meta = await loop.run_in_executor(
            None, inspect_distribution, received.spool.path, received.filename, ArchiveLimits()
        )
        check_metadata_matches(request, meta.name, meta.version)
        return await self._commit(request, received, meta, user)

    async def _check_reuse(self, filename: str, digests: dict[str, str]) -> UploadResult | None:
        """An identical re-upload is a success (twine retries); other bytes under a used filename are not."""
        current = await self._db.private_file(filename)
        if current is not None:
            if hmac.compare_digest(current.sha256, digests["sha256"]):
                return UploadResult(filename, current.project, current.version, created=False)
            if not self._config.allow_overwrite:
                raise FileExists(_already_exists(current))
        deleted = await self._db.deleted_sha256(filename)
        if deleted is not None and deleted != digests["sha256"]:
            raise InvalidUpload(
                "This filename was previously used by a file that has since been deleted. "
                "Use a different version. See https://pypi.org/help/#file-name-reuse for more information."
            )
        return None

    async def _check_release_slot(self, request: UploadRequest, filename: str) -> None:
        """One file per (release, wheel tags), one sdist per release: equal versions count as one release."""
        key = release_key(filename)
        for other in await self._db.private_files(request.name):
            if other.filename == filename or Version(other.version) != request.version:
                continue
            if release_key(other.filename) == key:
                if key == ("sdist",):
                    raise InvalidUpload("Only one sdist may be uploaded per release.")
                raise FileExists(
                    f"File already exists ('{other.filename}' has the same release and tags as '{filename}'). "
                    "See https://pypi.org/help/#file-name-reuse for more information."
                )

    async def _commit(
        self, request: UploadRequest, received: ReceivedForm, meta: DistMetadata, user: str
    ) -> UploadResult:
        filename = received.filename
        digests = received.spool.digests()
        replaced = await self._db.private_file(filename) if self._config.allow_overwrite else None
        blob = await self._store.commit(received.spool)
        metadata_sha256 = None
        if filename.endswith(".whl"):  # PEP 658 is defined for wheels only
            metadata_sha256 = (await self._store.put_bytes(meta.metadata)).sha256
        record = PrivateFile(
            filename=filename,
            project=request.name,
            version=str(request.version),
            sha256=blob.sha256,
            blake2_256=digests.get("blake2_256"),
            size=blob.size,
            requires_python=meta.requires_python,
            metadata_sha256=metadata_sha256,
            yanked=None,
            upload_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            uploaded_by=user,
        )
        try:
            await self._db.add_private_file(record, replace=self._config.allow_overwrite)
        except DuplicateFilename:  # a concurrent upload of the same filename committed first
            try:
                winner = await self._check_reuse(filename, digests)
            except InvalidUpload:
                await self._drop_unreferenced(record.sha256, record.metadata_sha256)  # our bytes lost the race
                raise
            if winner is None:
                raise FileExists(f"File already exists ('{filename}').") from None
            return winner
        if replaced is not None and replaced.sha256 != record.sha256:
            await self._drop_unreferenced(replaced.sha256, replaced.metadata_sha256)
        await self._db.record_blob(blob.sha256, blob.size)
        return UploadResult(filename, request.name, str(request.version), created=True)


    async def _drop_unreferenced(self, *sha256s: str | None) -> None:
        """Delete blobs no private file refers to any more (blobs are shared by content)."""
        for sha256 in filter(None, sha256s):
            if not await self._db.is_private_blob(sha256):
                await self._store.delete(sha256)


def _already_exists(current: PrivateFile) -> str:
    # twine --skip-existing looks for "File already exists" in a 400's reason: keep the prefix.
    return (
        f"File already exists ('{current.filename}', with blake2_256 hash '{current.blake2_256 or ''}'). "
        "See https://pypi.org/help/#file-name-reuse for more information."
    )
