"""Blobs read as ordinary files from a worker thread (the bundle and static-index writers, which are synchronous),
through the BlobStore that lives on the event loop: nothing here knows where or how blobs are stored."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import Any

from proxy.backends.blobs import BlobReader, BlobStore

__all__ = ["BlobFiles"]

class BlobFiles:
    """Opens blobs for reading from threads other than the event loop's (it must keep running meanwhile)."""

    def __init__(self, blobs: BlobStore, loop: asyncio.AbstractEventLoop) -> None:
        self._blobs = blobs
        self._loop = loop

    def open(self, sha256: str) -> io.BufferedReader:
        """The committed blob as a binary file. Raises FileNotFoundError when it is not in storage."""
        reader = self._on_loop(self._blobs.reader(sha256))
        if reader is None:
            raise FileNotFoundError(sha256)
        return io.BufferedReader(_BlobRaw(reader, self))

    def _on_loop(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()


class _BlobRaw(io.RawIOBase):
    """A sequential raw file over a BlobReader's chunks, each fetched on the event loop."""

    def __init__(self, reader: BlobReader, files: BlobFiles) -> None:
        self._reader = reader
        self._files = files
        self._chunks: AsyncIterator[bytes] = reader.chunks(0, reader.size)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = self._files._on_loop(_next(self._chunks))
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            self._files._on_loop(_close(self._reader, self._chunks))
        super().close()


async def _next(chunks: AsyncIterator[bytes]) -> bytes:
    return await anext(chunks, b"")


async def _close(reader: BlobReader, chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
    reader.close()
