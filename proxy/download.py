"""One upstream download into a spool, and following one that another worker leads.

The download keeps limits while bytes arrive (the declared size, the size cap, a deadline, a minimum speed: checked
by proxy/download_checks.py), batches its writes behind the network (the event loop reads while a worker thread
writes and hashes what arrived before), and verifies size and hashes against the index before the fill may release
its last byte. A download that breaks a limit fails the moment it does: the spool stops growing, its followers'
clients are cut off (never handed a complete-looking file), and the next request starts over.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable

from proxy.backends.blobs import BlobInfo
from proxy.backends.fills import FillOutcome, ForeignFill, Lead, is_resumable
from proxy.backends.spool import Spool
from proxy.download_checks import Guard, Limits, check_sha256, expected_length
from proxy.errors import IntegrityError, UpstreamUnavailable
from proxy.fill import Fill, FillState
from proxy.simple.model import DistFile
from proxy.upstream import UpstreamClient

__all__ = ["CHUNK", "POLL_MAX", "POLL_MIN", "SMALL_FILE", "WRITE_BEHIND", "WriteBehind", "download", "follow", "resume",
           "verify"]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Seconds between looks at another worker's spool: the shortest while it grows, backing off to the longest while
# it does not (waiting for upstream, or for the leader's commit fsync).
POLL_MIN, POLL_MAX = 0.005, 0.05
# Network bytes the fill may hold in memory ahead of the disk before it stops reading from upstream. 2 MiB, not 8:
# a cold 1 GiB download grew the process by 16.7 MiB with 8 and by 5.6 MiB with 2, with the same times (bench/,
# "big cold download" and "cold download", 2 runs each).
WRITE_BEHIND = 2 * 1024 * 1024
# A file of at most this many declared bytes usually arrives whole in its first chunk. Then, for a spool whose commit
# writes staged bytes (the local blob store's move_to), it is hashed on the event loop and written, fsynced and
# renamed into place in ONE trip to a worker thread, instead of one trip to write and one to commit. Its followers
# are sent the verified bytes from memory at once, in one write with the headers: they waited for that commit's
# fsync before, and a sendfile costs the loop more than a write of a few KiB (cold small files one after another,
# p50 4.6-5.1 ms before, 4.0-4.1 ms after). One that trickles in is streamed as any other.
SMALL_FILE = 64 * 1024


class WriteBehind:
    """Writes network chunks to a fill's spool from a worker thread while the event loop keeps reading.

    Each chunk is handed to the fill's followers as it arrives (Fill.arrived: they may send it from memory), and the
    fill learns when it is on disk (Fill.grew). Chunks that arrive during a write are batched into the next one;
    `put` waits only when WRITE_BEHIND bytes are queued. `close` flushes, and raises what a write raised.
    """

    def __init__(self, spool: Spool, fill: Fill) -> None:
        self._spool = spool
        self._fill = fill
        self._queued: list[bytes] = []
        self._queued_bytes = 0
        self._task: asyncio.Task[None] | None = None

    async def put(self, chunk: bytes) -> None:
        self._fill.arrived(chunk)
        self._queued.append(chunk)
        self._queued_bytes += len(chunk)
        if self._task is not None and self._task.done():
            await self._task  # a finished write: raise its error now, not at close
            self._task = None
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        elif self._queued_bytes >= WRITE_BEHIND:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            await self._task
        if self._queued:
            await self._drain()

    async def _drain(self) -> None:
        while self._queued:
            batch, self._queued, self._queued_bytes = self._queued, [], 0
            await self._spool.write_all(batch)
            self._fill.grew()


def verify(dist: DistFile, spool: Spool, expected_length: int | None) -> None:
    """Size and every declared hash we can compute must match before anything is committed."""
    if expected_length is not None and spool.size != expected_length:
        raise IntegrityError(
            f"upstream sent {spool.size} of {expected_length} bytes for {dist.filename}: transfer cut short"
        )
    computed = spool.digests()
    checked = False
    for algorithm, expected in dist.hashes.items():
        actual = computed.get(algorithm)
        if actual is None:
            continue
        checked = True
        if not hmac.compare_digest(actual, expected.lower()):
            raise IntegrityError(
                f"{algorithm} of {dist.filename} from upstream is {actual}, but its index declared {expected}"
            )
    if not checked and dist.hashes:
        log.warning("no declared hash of %s could be checked (%s)", dist.filename, ", ".join(dist.hashes))


async def download(
    fill: Fill, spool: Spool, upstream: UpstreamClient, limits: Limits, clock: Callable[[], float]
) -> None:
    """Stream the fill's file from upstream into `spool`, publishing it to followers as it grows; returns verified.

    A small file that arrived whole in its first chunk, for a spool that `writes_on_move`, returns VERIFIED with its
    bytes in memory (followers send them from there) and staged in the spool: the caller's commit writes them.

    Raises ProxyError (IntegrityError, UpstreamUnavailable, UpstreamTimeout, StorageFull) when a check fails.
    """
    dist = fill.dist
    check_sha256(dist)
    async with upstream.open_file(dist.url) as remote:
        length = expected_length(dist, remote.content_length, limits.max_size)
        guard = Guard(dist.filename, length, limits, clock)
        fill.started(spool.reader(), length)
        chunks = remote.chunks(CHUNK)
        head: list[bytes] = []
        if spool.writes_on_move and length is not None and length <= SMALL_FILE:
            head = await _first_chunk(chunks, guard)
            if sum(map(len, head)) == length:  # whole: nothing to stream meanwhile
                await _expect_end(chunks, guard)
                spool.stage(head)
                verify(dist, spool, length)
                fill.verified_in_memory(head)  # sent from memory at once; the commit writes them (see SMALL_FILE)
                return
        writer = WriteBehind(spool, fill)
        try:
            for chunk in head:
                await writer.put(chunk)
            async for chunk in chunks:
                guard.take(len(chunk))  # before the spool: an oversized or late chunk is never written
                await writer.put(chunk)
        finally:
            await writer.close()
    verify(dist, spool, length)
    fill.verified()


async def _first_chunk(chunks: AsyncIterator[bytes], guard: Guard) -> list[bytes]:
    """The first chunk, checked by the guard (none at the end of the body)."""
    async for chunk in chunks:
        guard.take(len(chunk))
        return [chunk]
    return []


async def _expect_end(chunks: AsyncIterator[bytes], guard: Guard) -> None:
    """Read to the end of the body: any byte past the declared length fails the guard."""
    async for chunk in chunks:
        guard.take(len(chunk))


async def resume(
    fill: Fill, spool: Spool, upstream: UpstreamClient, limits: Limits, clock: Callable[[], float]
) -> None:
    """Continue the fill's download from upstream into `spool`, which holds its first bytes already (streamed here
    from a leader that died): the rest is asked for with a Range request, and an upstream that sends the whole file
    instead has its first bytes compared with those here. The spool's running hashes cover every byte, so the
    verification is download()'s; every limit of download() holds. Returns verified."""
    dist = fill.dist
    check_sha256(dist)
    have = spool.size
    async with upstream.open_file(dist.url, start=have) as remote:
        length = expected_length(dist, remote.content_length, limits.max_size)
        guard = Guard(dist.filename, length, limits, clock, received=remote.start)
        if fill.state is FillState.PENDING:  # nothing was published yet: the spool is the source from now on
            fill.started(spool.reader(), length)
        elif fill.content_length is None:
            fill.content_length = length
        writer = WriteBehind(spool, fill)
        position = remote.start
        try:
            async for chunk in remote.chunks(CHUNK):
                guard.take(len(chunk))
                if position < have:  # sent again (no Range support): must be the very bytes the clients have
                    head, chunk = chunk[: have - position], chunk[have - position :]
                    if not hmac.compare_digest(await spool.read(position, len(head)), head):
                        raise IntegrityError(f"upstream sent different bytes of {dist.filename} when asked again")
                    position += len(head)
                if chunk:
                    position += len(chunk)
                    await writer.put(chunk)
        finally:
            await writer.close()
    verify(dist, spool, length)
    fill.verified()


async def follow(fill: Fill, foreign: ForeignFill) -> Lead | None:
    """Publish a fill another worker leads to this process's followers as it grows, until it is committed (then
    the fill is COMMITTED here too; returns None) or fails (raises UpstreamUnavailable). The fill owns `foreign`
    once started. A leader that died and whose fill this process took over (Resumable) returns the lead: the
    caller continues the download into its spool (resume) and finishes it."""
    dist = fill.dist
    delay = POLL_MIN
    try:
        while True:
            if foreign.grown():  # bytes are published only once some arrived: an early failure stays a clean 502
                _publish(fill, foreign)
                delay = POLL_MIN
            else:
                outcome = await foreign.outcome()
                if outcome is FillOutcome.COMMITTED:
                    break
                if outcome is FillOutcome.FAILED:
                    raise UpstreamUnavailable(f"another worker's download of {dist.filename} failed")
                if outcome is FillOutcome.ABANDONED:
                    lead = foreign.take_over() if is_resumable(foreign) else None
                    if lead is not None:
                        return lead
                    raise UpstreamUnavailable(f"the worker downloading {dist.filename} died")
                delay = min(2 * delay, POLL_MAX)
            await foreign.wait(delay)
        foreign.grown()  # the final size: the commit happened after the last write
        if dist.size is not None and foreign.size != dist.size:
            raise IntegrityError(
                f"{dist.filename} is {foreign.size} bytes in the cache, its index declared {dist.size}"
            )
        _publish(fill, foreign)
    finally:
        if fill.state is FillState.PENDING:  # never handed to the fill: nobody else will close it
            foreign.close()
    fill.verified()  # the leader committed this very file under the declared sha256
    fill.committed(BlobInfo(foreign.sha256, foreign.size))
    return None


def _publish(fill: Fill, foreign: ForeignFill) -> None:
    if fill.state is FillState.PENDING:
        # The leader's upstream Content-Length is not visible from here: only the index's size frames the body.
        fill.started(foreign, fill.dist.size)
    else:
        fill.grew()
