"""One upstream download per file per cluster: the fill coordinator of replicas sharing a PostgreSQL database and an
object store (chosen by open_backends for `postgresql://` + `s3://`).

A claim first coordinates the processes of this host (HostFills: one of them leads here, the others follow its
spool), and the process leading here then leads cluster-wide or follows the replica that does:
- it takes the file's lease (leases.py: a session advisory lock on its dedicated connection, plus a row saying where
  peers reach it, `[server] advertise_url`) and downloads from upstream as on one machine (ClusterLead);
- or another replica holds it, and this process fills its host spool from the leader's peer endpoint while the
  bytes arrive there (remote.py: RemoteFill), so the clients here get their first bytes as the leader's do.

Why stream from the leader instead of waiting for its commit and reading the object store: a follower would then
send nothing until the whole file is downloaded, verified and uploaded (seconds to minutes for a large wheel),
and pip/uv clients behind a load balancer time out or look hung; the issue's target is first bytes within 200 ms.
Waiting for the commit remains the fallback when the leader cannot be reached (no advertise_url, a network split).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import aiohttp

from proxy.backends.blobs import BlobReader, BlobStore
from proxy.backends.fills import FillCoordinator, ForeignFill, Lead, is_lead
from proxy.backends.metadata import MetadataStore
from proxy.backends.postgres.database import PgMetadata
from proxy.backends.postgres.leases import FillLeases
from proxy.backends.postgres.remote import ClusterLead, Peer, RemoteFill
from proxy.peer_token import SECRET_NAME, SharedSecret

__all__ = ["ClusterFills", "ClusterLead", "open_cluster_fills"]

log = logging.getLogger(__name__)

PEER_CONNECT_TIMEOUT = 5.0  # seconds to connect to a leader's peer endpoint (then: wait for the commit instead)


class ClusterFills:
    """A FillCoordinator over `host` (this host's processes) and `leases` (the replicas)."""

    def __init__(
        self,
        blobs: BlobStore,
        host: FillCoordinator,
        leases: FillLeases,
        session: aiohttp.ClientSession,
        secret: Callable[[], Awaitable[bytes]],
        *,
        advertise_url: str | None,
    ) -> None:
        self._blobs = blobs
        self._host = host
        self._leases = leases
        self._peer = Peer(session, secret)
        self._url = advertise_url
        self._remote: set[RemoteFill] = set()

    async def claim(self, sha256: str, algorithms: Iterable[str] = ()) -> BlobReader | Lead | ForeignFill:
        found = await self._host.claim(sha256, algorithms)
        if not is_lead(found):  # committed, or another process on this host leads or follows
            return found
        try:
            lease = await self._leases.lead(sha256, self._url)
            if lease is None:
                return self._follow(sha256, found)
            # The last leader may have committed between the host's look and our lease: nothing to fetch then.
            reader = await self._blobs.reader(sha256)
        except BaseException:
            await asyncio.shield(found.finish())
            raise
        if reader is None:
            return ClusterLead(found, lease)
        await asyncio.shield(ClusterLead(found, lease).finish())
        return reader

    async def follow_local(self, sha256: str) -> ForeignFill | None:
        return await self._host.follow_local(sha256)

    def _follow(self, sha256: str, host: Lead) -> RemoteFill:
        remote = RemoteFill(sha256, host, self._blobs, self._leases, self._peer, own_url=self._url)
        self._remote.add(remote)
        remote.done.add_done_callback(lambda _task: self._remote.discard(remote))
        return remote

    async def close(self) -> None:
        """Stop following other replicas' fills (shutdown): their host spools are discarded."""
        for remote in list(self._remote):
            remote.close()
        await asyncio.gather(*(remote.done for remote in list(self._remote)), return_exceptions=True)


@contextlib.asynccontextmanager
async def open_cluster_fills(
    meta: MetadataStore, blobs: BlobStore, host: FillCoordinator, *, advertise_url: str | None, read_timeout: float
) -> AsyncIterator[ClusterFills]:
    """The cluster's coordinator on the PostgreSQL store `meta` (a PgMetadata), over this host's `host`."""
    if not isinstance(meta, PgMetadata):
        raise TypeError("cluster fills need the PostgreSQL metadata store")
    if advertise_url is None:
        log.warning(
            "[server] advertise_url is not set (and host is not one address): other replicas cannot stream the "
            "downloads this one leads, and wait until each is stored instead"
        )
    # A leader may be silent while it waits for upstream: as long as upstream may be (read_timeout), and a bit.
    timeout = aiohttp.ClientTimeout(sock_connect=PEER_CONNECT_TIMEOUT, sock_read=read_timeout + 10)
    secret = SharedSecret(lambda: meta.shared_secret(SECRET_NAME))
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        fills = ClusterFills(blobs, host, meta.fill_leases(), session, secret, advertise_url=advertise_url)
        try:
            yield fills
        finally:
            await fills.close()
