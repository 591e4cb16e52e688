"""The S3 blob store: blobs are objects `<prefix>/blobs/sha256/ab/cd/<sha256>` in one bucket of an S3-compatible store.

- commit: a HEAD (committed already? then nothing to send), else a create-only upload of the verified spool
  (upload.py); then the spool is sealed, so the processes of this host following its fill see it committed.
- reader: one ranged GET of the first SMALL_BLOB bytes brings the size and date too: a small blob (PEP 658 metadata)
  is then whole in memory, and kept in a bounded LRU (hits need no request at all); a larger one streams the rest
  with read-ahead (reader.py).
- What this process believes about blobs (the LRU, the sizes of blobs known to exist) is dropped whenever the BLOBS
  change stamp moves, like the local store's open files: a blob deleted anywhere is never claimed to exist here.
- redirect_url: a presigned GET (or HEAD) URL, valid for [storage] redirect_ttl, for blobs larger than SMALL_BLOB.
- probe/open: the bucket must exist (never created here: some stores, SeaweedFS among them, create a bucket on the
  first PUT) and take a small write under the prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import aiohttp
from botocore.exceptions import ClientError, NoCredentialsError

from proxy.backends.blobs import BlobInfo
from proxy.backends.s3.client import S3Options, code_of, is_missing, storage_errors
from proxy.backends.s3.reader import MemoryBlob, S3BlobReader
from proxy.backends.s3.upload import abort_stale_uploads, upload_spool
from proxy.backends.spool import Spool
from proxy.backends.spools import SpoolDir
from proxy.errors import ConfigError, StorageUnavailable

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["SMALL_BLOB", "S3BlobStore"]

log = logging.getLogger(__name__)

SMALL_BLOB = 64 * 1024  # read whole into memory (and kept in the LRU); also never redirected: not worth a round trip
KNOWN = 100_000  # sizes of blobs known to exist, remembered for stat() and redirects
STALE_UPLOAD = 24 * 3600.0  # seconds after which a pending multipart upload is a dead process's (aborted)
SWEEP_INTERVAL = 3600.0  # seconds between sweeps for such uploads
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}")


class S3BlobStore:
    """Blobs in `bucket` under `prefix`, spooled through `spools`. `changed` returns the BLOBS change stamp."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        spools: SpoolDir,
        *,
        changed: Callable[[], bytes],
        options: S3Options,
        memory_blobs: int = 256,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._root = f"{prefix}/" if prefix else ""
        self._spools = spools
        self._changed = changed
        self._options = options
        self._capacity = memory_blobs
        self._small: OrderedDict[str, MemoryBlob] = OrderedDict()
        self._known: OrderedDict[str, int] = OrderedDict()  # sha256 -> size of blobs seen to exist
        self._seen: bytes | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def key(self, sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{self._root}blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    # --- what this process believes -------------------------------------------------------------------------

    def stamp(self) -> bytes:
        """The BLOBS change stamp now; forgets every blob believed in when it moved since the last look."""
        stamp = self._changed()
        if stamp != self._seen:
            self._seen = stamp
            self._small.clear()
            self._known.clear()
        return stamp

    def _believe(self, stamp: bytes, sha256: str, size: int, small: MemoryBlob | None = None) -> None:
        """Remember a blob seen to exist under `stamp`, unless a deletion was announced since."""
        if self.stamp() != stamp:
            return
        self._known[sha256] = size
        self._known.move_to_end(sha256)
        while len(self._known) > KNOWN:
            self._known.popitem(last=False)
        if small is not None and self._capacity:
            self._small[sha256] = small
            self._small.move_to_end(sha256)
            while len(self._small) > self._capacity:
                self._small.popitem(last=False)

    def _forget(self, sha256: str) -> None:
        self._small.pop(sha256, None)
        self._known.pop(sha256, None)

    # --- BlobStore --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Check that the bucket exists and these credentials reach it. Raises ConfigError (one line)."""
        await self._check_bucket()
        self._sweeper = asyncio.create_task(self._sweep_uploads(), name="s3-upload-sweeper")

    def reader_nowait(self, sha256: str) -> MemoryBlob | None:
        self.key(sha256)
        self.stamp()
        small = self._small.get(sha256)
        if small is not None:
            self._small.move_to_end(sha256)
        return small

    async def reader(self, sha256: str) -> MemoryBlob | S3BlobReader | None:
        key = self.key(sha256)
        if (small := self.reader_nowait(sha256)) is not None:
            return small
        stamp = self.stamp()
        with storage_errors(f"reading {key}"):
            try:
                answer = await self._client.get_object(Bucket=self._bucket, Key=key, Range=f"bytes=0-{SMALL_BLOB - 1}")
            except ClientError as exc:
                if is_missing(exc):
                    return None
                if code_of(exc) == "InvalidRange":  # an empty object has no byte 0
                    return await self._empty(stamp, sha256)
                raise
            async with answer["Body"] as body:
                head = await body.read(SMALL_BLOB)  # at most that much, even from a store that ignores Range
        size = _total_size(answer.get("ContentRange"), answer["ContentLength"])
        modified = answer["LastModified"].timestamp()
        if size <= len(head):
            small = MemoryBlob(sha256, head[:size], modified)
            self._believe(stamp, sha256, size, small)
            return small
        self._believe(stamp, sha256, size)
        return S3BlobReader(sha256, size, modified, head, lambda start, end: self._range(key, start, end))

    async def _empty(self, stamp: bytes, sha256: str) -> MemoryBlob | None:
        answer = await self._client.head_object(Bucket=self._bucket, Key=self.key(sha256))
        if answer["ContentLength"] != 0:  # not empty after all: a store with other rules
            raise StorageUnavailable(f"object storage: reading {sha256} failed: InvalidRange")
        small = MemoryBlob(sha256, b"", answer["LastModified"].timestamp())
        self._believe(stamp, sha256, 0, small)
        return small

    @contextlib.asynccontextmanager
    async def _range(self, key: str, start: int, end: int) -> AsyncIterator[aiohttp.StreamReader]:
        with storage_errors(f"reading {key}"):
            answer = await self._client.get_object(Bucket=self._bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        body = answer["Body"]
        try:
            yield body.raw_stream.content
        finally:
            body.close()

    async def stat(self, sha256: str) -> BlobInfo | None:
        key = self.key(sha256)
        stamp = self.stamp()
        if (size := self._known.get(sha256)) is not None:
            return BlobInfo(sha256, size)
        with storage_errors(f"looking for {key}"):
            try:
                answer = await self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if is_missing(exc):
                    return None
                raise
        self._believe(stamp, sha256, answer["ContentLength"])
        return BlobInfo(sha256, answer["ContentLength"])

    async def read_bytes(self, sha256: str) -> bytes:
        reader = await self.reader(sha256)
        if reader is None:
            raise FileNotFoundError(f"blob {sha256} is not in the bucket")
        return reader.memory() or b"".join([chunk async for chunk in reader.chunks(0, reader.size)])

    async def prepare(self, spool: Spool) -> None:
        """The slow part of a commit (the upload), done before the caller's transaction: commit() is then a HEAD."""
        await self.commit(spool)

    async def commit(self, spool: Spool) -> BlobInfo:
        sha256, size = spool.digests()["sha256"], spool.size
        key = self.key(sha256)
        stamp = self.stamp()
        if await self._head_size(key) is None:
            try:
                await upload_spool(self._client, self._bucket, key, spool)
            except StorageUnavailable:
                if await self._head_size(key) is None:  # say, the completion's answer was lost: it may be there
                    raise
        await spool.seal()
        self._believe(stamp, sha256, size)
        return BlobInfo(sha256, size)

    async def _head_size(self, key: str) -> int | None:
        with storage_errors(f"looking for {key}"):
            try:
                return (await self._client.head_object(Bucket=self._bucket, Key=key))["ContentLength"]
            except ClientError as exc:
                if is_missing(exc):
                    return None
                raise

    async def put_bytes(self, data: bytes) -> BlobInfo:
        async with self._spools.new() as spool:
            await spool.write(data)
            return await self.commit(spool)

    async def delete(self, sha256: str) -> bool:
        key = self.key(sha256)
        self._forget(sha256)
        existed = await self._head_size(key) is not None
        with storage_errors(f"deleting {key}"):
            await self._client.delete_object(Bucket=self._bucket, Key=key)
        return existed

    async def probe(self) -> None:
        """The bucket exists (HEAD: a PUT could create it on some stores) and takes a small write under the prefix."""
        with storage_errors(f"checking bucket {self._bucket}"):
            await self._client.head_bucket(Bucket=self._bucket)
        key = f"{self._root}probe/{secrets.token_hex(8)}"
        with storage_errors(f"writing {key}"):
            await self._client.put_object(Bucket=self._bucket, Key=key, Body=b"probe")
            await self._client.delete_object(Bucket=self._bucket, Key=key)

    async def redirect_url(self, sha256: str, filename: str, method: str = "GET") -> str | None:
        if self._options.redirect_ttl is None:
            return None
        info = await self.stat(sha256)
        if info is None or info.size <= SMALL_BLOB:
            return None
        params: dict[str, str] = {"Bucket": self._bucket, "Key": self.key(sha256),
                                  "ResponseContentType": "application/octet-stream"}
        if _SAFE_FILENAME.fullmatch(filename):  # anything else could break out of the header's quoting
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        operation = "head_object" if method == "HEAD" else "get_object"
        with storage_errors(f"presigning {params['Key']}"):
            return await self._client.generate_presigned_url(
                operation, Params=params, ExpiresIn=int(self._options.redirect_ttl)
            )

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self._small.clear()
        self._known.clear()

    # --- start-up checks and upkeep ---------------------------------------------------------------------------

    async def _check_bucket(self) -> None:
        where = f"bucket {self._bucket}"
        try:
            await self._client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            code = code_of(exc)
            if code in {"404", "NoSuchBucket", "NotFound"}:
                raise ConfigError(f"storage.url: {where} does not exist") from None
            if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise ConfigError(f"storage.url: access to {where} denied ({code}): check the AWS credentials") \
                    from None
            raise ConfigError(f"storage.url: cannot use {where}: {code}") from None
        except NoCredentialsError:
            raise ConfigError("storage.url: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, or use ~/.aws/credentials or a profile)") from None
        except Exception as exc:  # unreachable endpoint, bad TLS, ...: one line, not a traceback
            raise ConfigError(f"storage.url: cannot reach {where} at {self._client.meta.endpoint_url}: "
                              f"{type(exc).__name__}: {exc}") from None

    async def _sweep_uploads(self) -> None:
        """Abort, now and then, the uploads that processes killed mid-commit left pending (invisible, but billed)."""
        while True:
            try:
                aborted = await abort_stale_uploads(self._client, self._bucket, f"{self._root}blobs/", STALE_UPLOAD)
            except StorageUnavailable as exc:
                log.warning("could not sweep pending uploads: %s", exc)
            else:
                if aborted:
                    log.info("aborted %d upload(s) left pending by a process that died", aborted)
            await asyncio.sleep(SWEEP_INTERVAL)

    async def sweep_uploads(self, older_than: float) -> int:
        """Abort the pending uploads under the prefix older than `older_than` seconds; returns how many."""
        return await abort_stale_uploads(self._client, self._bucket, f"{self._root}blobs/", older_than)


def _total_size(content_range: str | None, length: int) -> int:
    """The object's size from a ranged answer's Content-Range ("bytes 0-65535/1048576"), or its length when the
    store sent the whole object."""
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    return int(match.group(1)) if match else length
