"""One download of a file in flight, as the clients following it see it: a small state machine.

    PENDING --started--> STREAMING --verified--> VERIFIED --committed--> COMMITTED
       |                    |                        `----not_stored--> NOT_STORED
       `------failed--------'------------------------------------------> FAILED

Whoever runs the download (proxy/filecache.py) calls the transitions; each checks its legal predecessor and wakes
the followers, which re-read the state. A follower is sent the bytes received so far, except the last one until the
fill is verified, so a lying or cut-off upstream can never produce a complete-looking response. NOT_STORED: every
byte was verified and sent, but the cache copy could not be committed (clients are unaffected).

Until the source has its first bytes, the bytes this process downloads are sent from memory as they arrive
(`arrived`): a client's first byte does not wait for the first write, a trip to a worker thread that took 0.5-5 ms
while the event loop was busy reading upstream. After that, followers send from the source (sendfile): streaming
every chunk from memory made a cold 1 GiB download 30% slower (bench/, "cold download", 5 runs each). The bytes held
are the write-behind's first batch, which is in memory anyway. A small file that arrived whole is held the same
way once verified (`verified_in_memory`), until its commit has written it: its clients never wait for that commit,
and still get it when the commit fails.

The byte source handed over by `started` belongs to the fill from then on: it is closed once the fill has ended and
the last follower has let go (Following.close), so no follower ever reads from a closed file.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import BinaryIO

from proxy.backends.blobs import BlobInfo, ByteSource
from proxy.errors import ProxyError
from proxy.simple.model import DistFile

__all__ = ["HOLDBACK", "Fill", "FillState", "Following"]

# Bytes withheld from followers until the fill is verified (see the module docstring).
HOLDBACK = 1
# At most this many bytes from memory per send: a slow client's transport copies what it is handed (sendfile from the
# source does not), so this bounds that copy; bytes further on are sent in the next round, from disk by then.
MEMORY_PIECE = 256 * 1024


class FillState(enum.Enum):
    PENDING = "pending"  # waiting for upstream's answer (or, following another worker, for its first bytes)
    STREAMING = "streaming"  # bytes arriving in the source
    VERIFIED = "verified"  # complete and matching the index: every byte may be sent
    COMMITTED = "committed"  # in the blob store
    NOT_STORED = "not stored"  # verified and sent, but the commit failed
    FAILED = "failed"  # before verification: followers are cut off


_BEFORE = {
    FillState.STREAMING: (FillState.PENDING,),
    FillState.VERIFIED: (FillState.STREAMING,),
    FillState.COMMITTED: (FillState.VERIFIED,),
    FillState.NOT_STORED: (FillState.VERIFIED,),
    FillState.FAILED: (FillState.PENDING, FillState.STREAMING),
}
_ENDED = (FillState.COMMITTED, FillState.NOT_STORED, FillState.FAILED)


class Fill:
    """A download of `dist` that any number of clients follow."""

    def __init__(self, dist: DistFile) -> None:
        self.dist = dist
        self.state = FillState.PENDING
        self.content_length: int | None = None  # the declared length: no follower is ever sent a byte past it
        self.blob: BlobInfo | None = None  # set when COMMITTED
        self.error: ProxyError | None = None  # set when FAILED
        self._source: ByteSource | None = None
        self._followers = 0
        self._changed = asyncio.Event()
        self._held: list[bytes] = []  # the first bytes, arrived while the source had none (module docstring)
        self._held_size = 0

    # --- transitions (the download's owner) ---

    def started(self, source: ByteSource, length: int | None) -> None:
        """Upstream answered (or another worker's spool has its first bytes): bytes arrive in `source`, which the
        fill now owns; `length` is what the index or upstream declared."""
        self._move(FillState.STREAMING)
        self._source = source
        self.content_length = length

    def arrived(self, chunk: bytes) -> None:
        """`chunk`, the next bytes of the file, arrived and is on its way to the source. While the source is empty,
        it is held for the followers to send from memory (see the module docstring)."""
        assert self.state is FillState.STREAMING, self.state
        if not self.source.size:
            self._held.append(chunk)
            self._held_size += len(chunk)
            self._notify()

    def grew(self) -> None:
        """More bytes are in the source (the held ones are let go: followers send from the source from now on)."""
        assert self.state is FillState.STREAMING, self.state
        if self._held and self.source.size:
            self._held, self._held_size = [], 0
        self._notify()

    def verified(self) -> None:
        """Every byte is in and matched the index's size and hashes."""
        self._move(FillState.VERIFIED)

    def verified_in_memory(self, chunks: list[bytes]) -> None:
        """Every byte is in `chunks`, verified, and not in the source yet (a small file whose commit writes it):
        followers send them from memory, also if the commit then fails (NOT_STORED)."""
        assert not self.source.size, "the source has bytes already"
        self._held, self._held_size = list(chunks), sum(map(len, chunks))
        self.verified()

    def committed(self, blob: BlobInfo) -> None:
        """The verified bytes are in the blob store as `blob`."""
        self.blob = blob
        self._move(FillState.COMMITTED)

    def not_stored(self) -> None:
        """The verified bytes could not be committed (clients have them; the cache does not)."""
        self._move(FillState.NOT_STORED)

    def failed(self, error: ProxyError) -> None:
        """The download failed before verification: followers raise `error`."""
        self.error = error
        self._move(FillState.FAILED)

    def _move(self, state: FillState) -> None:
        assert self.state in _BEFORE[state], f"{self.state} -> {state}"
        self.state = state
        self._notify()
        self._close_if_idle()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # --- followers ---

    @property
    def ended(self) -> bool:
        return self.state in _ENDED

    @property
    def source(self) -> ByteSource:
        """The bytes (once started; they stay readable while anyone follows)."""
        assert self._source is not None, "not started"
        return self._source

    def follow(self) -> Following:
        """Count a follower until its Following is closed (the source stays open meanwhile)."""
        return Following(self)

    def _let_go(self) -> None:
        self._followers -= 1
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if self.ended and (self.error is not None or self.source.size >= self._held_size):
            self._held, self._held_size = [], 0  # verified bytes are all in the source; failed ones are never sent
        if self.ended and self._followers == 0 and self._source is not None:
            self._source.close()

    async def wait_started(self) -> None:
        """Until bytes may flow. Raises the fill's error if it failed before that."""
        while self.state is FillState.PENDING:
            await self._changed.wait()
        if self._source is None and self.error is not None:
            raise self.error

    async def finished(self) -> None:
        """Until the fill has ended. Raises the fill's error if it failed."""
        while not self.ended:
            await self._changed.wait()
        if self.error is not None:
            raise self.error

    async def ranges(self) -> AsyncIterator[tuple[ByteSource, int, int]]:
        """(source, offset, count) of bytes as they become sendable: from the fill's source, or from memory for
        bytes that arrived here but are not on disk yet. Raises the fill's error (after partial output)."""
        await self.wait_started()
        source = self.source
        offset = 0
        while True:
            changed = self._changed  # captured before checking, so no wake-up is missed
            if self.error is not None:
                raise self.error
            sendable = self.state is not FillState.STREAMING
            size = max(source.size, self._held_size)
            # Never past the declared length, whatever the source holds (a leader in another process may not check).
            if self.content_length is not None:
                size = min(size, self.content_length)
            limit = size if sendable else size - HOLDBACK
            pieces = self._pieces(source, offset, limit) if offset < limit else []  # at once: held bytes may go
            if pieces:
                for piece in pieces:
                    yield piece
                offset += sum(count for _, _, count in pieces)
            elif sendable and offset >= limit:
                return
            else:
                await changed.wait()

    def _pieces(self, source: ByteSource, offset: int, limit: int) -> list[tuple[ByteSource, int, int]]:
        """[offset, limit) as pieces to send now: what the source has, then held bytes (at most MEMORY_PIECE).
        Empty only when the bytes are neither (a source that lags the writes it was told of): wait for more."""
        on_disk = min(limit, source.size)
        pieces: list[tuple[ByteSource, int, int]] = []
        if offset < on_disk:
            pieces.append((source, offset, on_disk - offset))
            offset = on_disk
        if offset < limit and self._held:  # held bytes start at 0: the source had none when they arrived
            end = min(limit, offset + MEMORY_PIECE)
            pieces.append((_Held(list(self._held)), offset, end - offset))
        return pieces


class _Held:
    """The first bytes of a fill, held in memory, as a ByteSource (a snapshot: sent while its fill goes on)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.size = sum(map(len, chunks))

    def sendfile_source(self) -> BinaryIO | None:
        return None

    async def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        position = 0
        for chunk in self._chunks:
            end = position + len(chunk)
            if end > offset and length > 0:
                skip = max(0, offset - position)
                whole = skip == 0 and length >= len(chunk)
                # A view, not a copy: the held-back last byte makes most pieces a chunk less its end.
                piece = chunk if whole else memoryview(chunk)[skip : skip + length]
                offset += len(piece)
                length -= len(piece)
                yield piece  # type: ignore[misc]  # aiohttp's write takes any bytes-like object
            position = end

    def close(self) -> None:
        pass


class Following:
    """One client's hold on a fill (see Fill.follow); close it when done, or use `with`."""

    def __init__(self, fill: Fill) -> None:
        self.fill = fill
        self._closed = False
        fill._followers += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.fill._let_go()

    def __enter__(self) -> Following:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
