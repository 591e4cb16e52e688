"""Fill coordination interface: which process downloads a blob when several want it at once, and how the others
follow that download until it is committed or fails.

One fill per blob at a time (per host today; per deployment once replicas share a coordinator): the claimant that
leads writes the bytes to its spool and commits them; the others follow its progress and send the bytes the leader
has written, releasing the last byte only when the leader committed the blob under the sha256 it was claimed for.

Implementations: flock + hard links in the spool directory (proxy/backends/local/fills.py, local/hostfills.py);
across replicas, PostgreSQL advisory locks with followers streaming from the leading replica
(proxy/backends/postgres/fills.py). A replica follows another's fill through the leader's peer endpoint
(proxy/web/peers.py), which serves `follow_local()`: the interface assumes no shared file system.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, TypeGuard, runtime_checkable

from proxy.backends.blobs import BlobReader, ByteSource

if TYPE_CHECKING:
    from proxy.backends.spool import Spool

__all__ = ["FillCoordinator", "FillOutcome", "ForeignFill", "Lead", "Resumable", "is_foreign", "is_lead",
           "is_resumable"]


class FillOutcome(enum.Enum):
    """Where a fill led by someone else stands."""

    WRITING = "writing"  # the leader lives and is writing
    COMMITTED = "committed"  # the leader committed these very bytes under the claimed sha256 (all verified)
    FAILED = "failed"  # the leader gave up and discarded its bytes
    ABANDONED = "abandoned"  # the leader died mid-fill; the next claim may lead


@runtime_checkable  # claim() returns one of three: callers tell them apart with isinstance
class Lead(Protocol):
    """This process fetches the blob: the bytes go to `spool`, which the caller commits (BlobStore.commit) once
    verified. Others follow until finish()."""

    @property
    def spool(self) -> Spool: ...

    async def finish(self) -> None:
        """After the commit, or on failure: give up leadership and discard the spool unless it was committed.
        Idempotent; must be called whatever happened (also when cancelled)."""
        ...


@runtime_checkable
class ForeignFill(ByteSource, Protocol):
    """A fill led elsewhere, followed from here. `size` is the bytes known written, as of the last grown()."""

    @property
    def sha256(self) -> str: ...

    def grown(self) -> bool:
        """Refresh `size` (cheap enough for the event loop); True when it grew."""
        ...

    async def outcome(self) -> FillOutcome:
        """How the leader's fill stands now."""
        ...

    async def wait(self, seconds: float) -> None:
        """Until the fill may have moved on (more bytes, an outcome), at most `seconds`: a fill written by another
        process is polled (it just sleeps), one written by this process wakes its followers at once."""
        ...


@runtime_checkable  # a ForeignFill that may also be this: callers ask with isinstance
class Resumable(Protocol):
    """A fill followed from here whose leader's death this process answers by leading it (across replicas:
    postgres/remote.py), so that its clients, which have part of the file already, are not cut off."""

    def take_over(self) -> Lead | None:
        """After the outcome ABANDONED: the lead of the fill that this process took over, its spool holding every
        byte received so far (hashed as they came), for the caller to continue from upstream, commit and finish();
        None when it was not taken over (the clients are cut off). Hands the lead out once."""
        ...


class FillCoordinator(Protocol):
    """Hands out fills. Raises OSError (StorageFull when out of space) when no spool can be made."""

    async def claim(self, sha256: str, algorithms: Iterable[str] = ()) -> BlobReader | Lead | ForeignFill:
        """The blob's reader when it is committed already (nothing to fill); else the lead of its fill, with a new
        spool hashing `algorithms` besides sha256; else the fill someone else leads.

        One call, one round trip to storage: it checks for the blob and claims the fill together.
        """
        ...

    async def follow_local(self, sha256: str) -> ForeignFill | None:
        """The fill of `sha256` that a process on this host leads right now, followed for another replica (the
        peer endpoint streams it); None when none runs here. Raises ValueError for a malformed digest."""
        ...


# isinstance() with a runtime-checkable protocol re-reads the protocol's members on every call on Python 3.11
# (tens of microseconds; a cold file asked it three times). Whether a class conforms does not change: asked once
# per class.
_CONFORMS: dict[tuple[type, type], bool] = {}


def _conforms(value: object, protocol: type) -> bool:
    key = (type(value), protocol)
    known = _CONFORMS.get(key)
    if known is None:
        known = _CONFORMS[key] = isinstance(value, protocol)
    return known


def is_lead(value: object) -> TypeGuard[Lead]:
    return _conforms(value, Lead)


def is_foreign(value: object) -> TypeGuard[ForeignFill]:
    return _conforms(value, ForeignFill)


def is_resumable(value: object) -> TypeGuard[Resumable]:
    return _conforms(value, Resumable)
