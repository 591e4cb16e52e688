"""Readers of objects: small ones held in memory whole, larger ones streamed with a bounded read-ahead.

A large object is streamed with one ranged GET per chunks() call, read by a task of its own into a buffer of at
most READ_AHEAD bytes while the client is being written to (the event loop reads the object store whenever the
client's socket is full, and the other way round); the consumer takes everything buffered in one piece. A GET cut off
mid-way resumes from the first byte not yet read (a few attempts). Memory per download: READ_AHEAD plus aiohttp's own
read buffer, whatever the object's size.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager

import aiohttp

from proxy.errors import StorageUnavailable

__all__ = ["READ_AHEAD", "MemoryBlob", "RangeStream", "S3BlobReader"]

log = logging.getLogger(__name__)

READ_AHEAD = 4 * 2**20  # bytes read from the object store ahead of the client, per download
RESUMES = 3  # times a GET cut off mid-way is resumed from where it stopped

# (offset, end) -> the body of a GET of bytes [offset, end): an aiohttp stream, released on exit.
RangeStream = Callable[[int, int], AbstractAsyncContextManager[aiohttp.StreamReader]]


class MemoryBlob:
    """A BlobReader (proxy/backends/blobs.py) of a small object held in memory."""

    __slots__ = ("_data", "_modified", "_sha256")

    def __init__(self, sha256: str, data: bytes, modified: float) -> None:
        self._sha256 = sha256
        self._data = data
        self._modified = modified

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def modified(self) -> float:
        return self._modified

    def memory(self) -> bytes:
        return self._data

    def sendfile_source(self) -> None:
        return None

    async def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        data = self._data[offset : offset + length]
        if data:
            yield data

    def close(self) -> None:
        pass


class S3BlobReader:
    """A BlobReader of a larger object: its first bytes (fetched with its size) in memory, the rest streamed."""

    __slots__ = ("_head", "_modified", "_open_range", "_sha256", "_size")

    def __init__(self, sha256: str, size: int, modified: float, head: bytes, open_range: RangeStream) -> None:
        self._sha256 = sha256
        self._size = size
        self._modified = modified
        self._head = head
        self._open_range = open_range

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def size(self) -> int:
        return self._size

    @property
    def modified(self) -> float:
        return self._modified

    def memory(self) -> None:
        return None

    def sendfile_source(self) -> None:
        return None

    async def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        end = min(offset + length, self._size)
        if offset < len(self._head) and offset < end:
            piece = self._head[offset : min(end, len(self._head))]
            yield piece
            offset += len(piece)
        if offset >= end:
            return
        pipe = _Pipe(READ_AHEAD)
        reading = asyncio.create_task(_read_into(pipe, self._open_range, offset, end))
        try:
            while (data := await pipe.get()) is not None:
                yield data
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    def close(self) -> None:
        pass  # every chunks() releases its own connection


async def _read_into(pipe: _Pipe, open_range: RangeStream, offset: int, end: int) -> None:
    """Bytes [offset, end) of the object into `pipe`, resuming a cut-off GET; then the end (or the failure)."""
    resumes = 0
    try:
        while offset < end:
            try:
                async with open_range(offset, end) as body:
                    while offset < end and (data := await body.readany()):
                        data = data[: end - offset]
                        await pipe.put(data)
                        offset += len(data)
            except (TimeoutError, aiohttp.ClientError) as exc:  # mid-body (botocore retries the GET itself)
                if resumes == RESUMES:
                    raise
                log.info("object read cut off at byte %d (%s); resuming", offset, exc)
                resumes += 1
                continue
            if offset < end:  # the answer ended early without an error: the object is shorter than announced
                break
    except BaseException as exc:
        pipe.fail(exc)
        raise
    pipe.finish()


class _Pipe:
    """Chunks handed from the reading task to the consumer, at most `limit` bytes queued."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._bytes = 0
        self._done = False
        self._error: BaseException | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    async def put(self, data: bytes) -> None:
        while self._bytes >= self._limit:
            self._writable.clear()
            await self._writable.wait()
        self._chunks.append(data)
        self._bytes += len(data)
        self._readable.set()

    def finish(self) -> None:
        self._done = True
        self._readable.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self.finish()

    async def get(self) -> bytes | None:
        """Everything queued, in one piece; None at the end. Raises what the reader failed with (a short answer
        ends early instead: the caller sees fewer bytes than it asked for)."""
        while not self._chunks:
            if self._done:
                if isinstance(self._error, StorageUnavailable):
                    raise self._error
                if self._error is not None and not isinstance(self._error, asyncio.CancelledError):
                    raise StorageUnavailable(f"object storage: reading failed: {self._error!r}") from self._error
                return None
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._bytes = 0
        self._writable.set()
        return data
