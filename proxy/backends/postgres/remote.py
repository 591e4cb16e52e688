"""Following a fill that another replica leads: its bytes stream from the leader's peer endpoint into this host's
fill spool as they arrive there, and other processes of this host follow that spool as usual (local/fills.py).

The same guarantees as a local follower: the fill counts as COMMITTED here only when the leader ended its stream
cleanly (it does so once its fill is committed), the bytes received hash to the claimed sha256, and the object is
in the store. A stream that breaks is taken up again from the bytes already here, from whichever replica leads
then (a new leader downloads the same file: same sha256, same bytes at every offset) or from the store once the
file is committed; with nobody leading and nothing committed, the fill was abandoned (clients are cut off, never
handed wrong bytes, and the next request leads). Without a reachable leader it waits for the commit.
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
from proxy.backends.postgres.leases import FillLeases, Leader
from proxy.backends.spools import SpoolReader
from proxy.peer_token import authorization

__all__ = ["PEER_PATH", "Peer", "RemoteFill"]

log = logging.getLogger(__name__)

PEER_PATH = "/_shadowpi/fills/"  # + sha256 (proxy/web/peers.py)
CHUNK = 256 * 1024
PEER_ATTEMPTS = 5  # streams tried per leader before waiting for the commit (a new leader is tried afresh)
WAIT_MIN, WAIT_MAX = 0.05, 1.0  # seconds between looks at the store and the lease while no leader is reachable


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
            async for chunk in response.content.iter_chunked(CHUNK):
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
        self.size = 0  # as of the last grown()
        self._outcome = FillOutcome.WRITING
        self.done = asyncio.create_task(self._run(), name=f"follow-peer:{sha256[:12]}")

    @property
    def sha256(self) -> str:
        return self._sha256

    def grown(self) -> bool:
        size = self._spool.size
        grew, self.size = size > self.size, max(size, self.size)
        return grew

    async def outcome(self) -> FillOutcome:
        return self._outcome

    def sendfile_source(self) -> BinaryIO | None:
        return self._reader.sendfile_source()

    def chunks(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return self._reader.chunks(offset, length)

    def close(self) -> None:
        if not self.done.done():  # nobody follows any more: stop (the host spool is discarded)
            self.done.cancel()
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
                await asyncio.shield(self._host.finish())
                self._outcome = outcome  # only now: a follower told COMMITTED may find the spool name gone

    async def _fill(self) -> FillOutcome:
        """Stream from whoever leads until the fill ends; then how it ended."""
        attempts, delay, asked = 0, WAIT_MIN, None
        while True:
            leader = await self._leases.leader(self._sha256)
            if leader is None:  # nobody leads: committed meanwhile, or given up
                return await self._from_store()
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

    async def _stream(self, leader: Leader) -> bool:
        """Append the leader's bytes from what is here; True when it ended its stream cleanly."""
        assert leader.url is not None
        try:
            stream = self._peer.stream(leader.url, self._sha256, self._spool.size)
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    await self._spool.write(chunk)
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
