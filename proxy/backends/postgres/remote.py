"""Following a fill that another replica leads: its bytes stream from the leader's peer endpoint into this host's
fill spool as they arrive there, and other processes of this host follow that spool as usual (local/fills.py).

The same guarantees as a local follower: the fill counts as COMMITTED here only when the leader ended its stream
cleanly (it does so once its fill is committed), the bytes received hash to the claimed sha256, and the object is
in the store. A stream that breaks is taken up again from the bytes already here, from whichever replica leads
then (a new leader downloads the same file: same sha256, same bytes at every offset) or from the store once the
file is committed; with nobody leading and nothing committed, the fill was abandoned (clients are cut off, never
handed wrong bytes, and the next request leads). Without a reachable leader it waits for the commit.

A leader that died mid-fill (its lock is free, its row is still there: leases.py) is taken over: this replica
claims the lease itself, so the other followers now stream from it, and hands its host spool with the bytes
received so far to the download (take_over), which continues from upstream at that offset (download.py: resume).
Its clients lose nothing; the sha256 check still covers every byte they were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import BinaryIO

import aiohttp

from proxy.backends.blobs import BlobStore
from proxy.backends.fills import FillOutcome, Lead
from proxy.backends.postgres.leases import FillLeases, Leader, Lease
from proxy.backends.spool import Spool, SpoolReader
from proxy.peer_token import authorization

__all__ = ["PEER_PATH", "ClusterLead", "Peer", "RemoteFill"]

log = logging.getLogger(__name__)

PEER_PATH = "/_shadowpi/fills/"  # + sha256 (proxy/web/peers.py)
PEER_ATTEMPTS = 5  # streams tried per leader before waiting for the commit (a new leader is tried afresh)
WAIT_MIN, WAIT_MAX = 0.05, 1.0  # seconds between looks at the store and the lease while no leader is reachable


class ClusterLead:
    """This process leads the fill in the whole cluster: the host's lead plus the cluster lease (a Lead)."""

    def __init__(self, host: Lead, lease: Lease) -> None:
        self._host = host
        self._lease = lease

    @property
    def spool(self) -> Spool:
        return self._host.spool

    async def finish(self) -> None:
        try:
            await self._host.finish()  # the spool is sealed (committed) or gone before the lease is
        finally:
            await asyncio.shield(self._lease.release())


class Peer:
    """HTTP to other replicas' peer endpoints, signed with the cluster's shared secret."""

    def __init__(self, session: aiohttp.ClientSession, secret: Callable[[], Awaitable[bytes]]) -> None:
        self._session = session
        self._secret = secret

    async def stream(self, url: str, sha256: str, offset: int) -> AsyncGenerator[bytes, None]:
        """The leader's bytes of the fill from `offset` as they arrive. Ends normally only when the leader's fill
        is committed; raises aiohttp.ClientError (or ClientResponseError for a refusal, 404: no such fill there)
        or TimeoutError otherwise."""
        headers = {"Authorization": authorization(await self._secret(), sha256, time.time())}
        target = f"{url.rstrip('/')}{PEER_PATH}{sha256}"
        async with self._session.get(target, params={"offset": str(offset)}, headers=headers) as response:
            response.raise_for_status()
            async for chunk in response.content.iter_any():  # as it arrives: the first bytes are awaited
                yield chunk


class RemoteFill:
    """A ForeignFill (proxy/backends/fills.py) led by another replica, pumped into this host's spool (`host`)."""

    def __init__(
        self, sha256: str, host: Lead, blobs: BlobStore, leases: FillLeases, peer: Peer, *, own_url: str | None
    ) -> None:
        """`own_url`: this replica's advertise_url; a leader advertising it is misconfigured (every replica left
        at the default http://127.0.0.1:port, say), and is not asked: this replica would stream its own spool."""
        self._sha256 = sha256
        self._host = host
        self._spool = host.spool
        self._reader: SpoolReader = self._spool.reader()
        self._blobs = blobs
        self._leases = leases
        self._peer = peer
        self._own_url = own_url
        self._seen = 0  # the size as of the last grown()
        self._outcome = FillOutcome.WRITING
        self._taken: ClusterLead | None = None  # the lead, once taken over from a dead leader, until handed out
        self._orphaned: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()  # set on every write and at the end: wakes wait()
        self.done = asyncio.create_task(self._run(), name=f"follow-peer:{sha256[:12]}")

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def size(self) -> int:  # what is in the spool: once taken over, it grows with the download here
        return self._spool.size

    def grown(self) -> bool:
        size = self._spool.size
        grew, self._seen = size > self._seen, max(size, self._seen)
        return grew

    def take_over(self) -> Lead | None:
        taken, self._taken = self._taken, None
        return taken

    async def outcome(self) -> FillOutcome:
        return self._outcome

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._moved.wait()
        self._moved.clear()

    def sendfile_source(self) -> BinaryIO | None:
        return self._reader.sendfile_source()

    def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return self._reader.chunks(offset, length)

    def close(self) -> None:
        if not self.done.done():  # nobody follows any more: stop (the host spool is discarded)
            self.done.cancel()
        if self._taken is not None:  # taken over, but nobody continues the download: give it up
            self._orphaned = asyncio.ensure_future(self._taken.finish())
            self._taken = None
        self._reader.close()

    async def _run(self) -> None:
        outcome = FillOutcome.ABANDONED
        try:
            outcome = await self._fill()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following the download of %s on another replica failed", self._sha256)
            outcome = FillOutcome.FAILED
        finally:
            try:
                if outcome is FillOutcome.COMMITTED:
                    await self._spool.seal()  # this host's followers see the bytes committed
            finally:
                if self._taken is None:  # taken over: the spool goes on, to whoever takes the lead (take_over)
                    await asyncio.shield(self._host.finish())
                self._outcome = outcome  # only now: a follower told COMMITTED may find the spool name gone
                self._moved.set()

    async def _fill(self) -> FillOutcome:
        """Stream from whoever leads until the fill ends; then how it ended."""
        attempts, delay, asked = 0, WAIT_MIN, None
        while True:
            leader = await self._leases.leader(self._sha256)
            if leader is None:  # nobody leads: committed meanwhile, given up, or the leader died
                outcome = await self._from_store()
                if outcome is not FillOutcome.ABANDONED or not await self._leases.died(self._sha256):
                    return outcome
                if await self._take_over():
                    return FillOutcome.ABANDONED  # and the lead is ours (take_over)
                continue  # another follower took it over first: stream from it
            if leader.url != asked:  # a new leader (the last one died): stream from it, from what is here
                attempts, asked = 0, leader.url
            if leader.url is not None and leader.url == self._own_url:
                if not attempts:
                    log.warning("the replica leading %s advertises this replica's own URL %s: set [server] "
                                "advertise_url on every replica; waiting for it to be stored", self._sha256,
                                leader.url)
                attempts = PEER_ATTEMPTS
            if leader.url is not None and attempts < PEER_ATTEMPTS:
                attempts += 1
                if await self._stream(leader):
                    return await self._confirm()
                continue
            if await self._blobs.stat(self._sha256) is not None:
                return await self._from_store()
            await asyncio.sleep(delay)  # polling another process (the leader, the store): no event to wait on
            delay = min(2 * delay, WAIT_MAX)

    async def _take_over(self) -> bool:
        """Lead the fill of a dead leader; False when another process leads it by now."""
        lease = await self._leases.lead(self._sha256, self._own_url)
        if lease is None:
            return False
        log.warning("the replica leading the download of %s died at %d bytes here: continuing it from upstream",
                    self._sha256, self._spool.size)
        self._taken = ClusterLead(self._host, lease)
        return True

    async def _stream(self, leader: Leader) -> bool:
        """Append the leader's bytes from what is here; True when it ended its stream cleanly."""
        assert leader.url is not None
        try:
            stream = self._peer.stream(leader.url, self._sha256, self._spool.size)
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    await self._spool.write(chunk)
                    self._moved.set()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("streaming %s from %s stopped at %d bytes: %s", self._sha256, leader.url, self._spool.size, exc)
            return False
        return True

    async def _from_store(self) -> FillOutcome:
        """The rest of the bytes from the committed blob; ABANDONED when it is not there."""
        reader = await self._blobs.reader(self._sha256)
        if reader is None:
            return FillOutcome.ABANDONED
        try:
            if self._spool.size > reader.size:
                return FillOutcome.FAILED
            stream = reader.chunks(self._spool.size, reader.size - self._spool.size)
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    await self._spool.write(chunk)
                    self._moved.set()
        finally:
            reader.close()
        return await self._confirm()

    async def _confirm(self) -> FillOutcome:
        """COMMITTED when the bytes here are the claimed blob and the blob is in the store, else FAILED."""
        if self._spool.digests()["sha256"] != self._sha256:
            log.error("the bytes of %s from another replica do not match their sha256: discarded", self._sha256)
            return FillOutcome.FAILED
        if await self._blobs.stat(self._sha256) is None:
            log.warning("another replica ended its stream of %s, but the blob is not in the store", self._sha256)
            return FillOutcome.FAILED
        return FillOutcome.COMMITTED
