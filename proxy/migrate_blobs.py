"""`shadowpi migrate`, the bytes: copy every blob of the source store the target lacks, verified on the way.

Through the BlobStore Protocol on both sides (any store to any store). A blob is read from the source into a
target spool, its sha256 computed while it is written and compared with its name before the target commits it
(create-only and atomic: a copy cut short by a kill is never visible, and the next run copies it again). A blob
the target already holds is checked against the target's own index (its stat: present, with the expected size).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from proxy.backends import Backends

__all__ = ["BlobCopy", "Blobs", "copy_blobs"]

COPIES_AT_ONCE = 4  # an object store answers one PUT at a time per connection: a few in flight keep it busy
PROGRESS_EVERY = 2.0  # seconds between progress lines


@dataclass(frozen=True, slots=True)
class Blobs:
    """What the copy needs to know about the source's blobs: size by sha256, and which are private uploads (a
    private blob that cannot be copied stops the migration; a cached one is skipped and refetched on demand)."""

    sizes: dict[str, int]
    private: frozenset[str]


@dataclass(slots=True)
class BlobCopy:
    """The outcome: blobs copied (and their bytes), already present, and those that could not be copied (sha256
    -> why)."""

    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    done: int = 0


async def copy_blobs(source: Backends, target: Backends, blobs: Blobs, out: Callable[[str], None]) -> BlobCopy:
    """Copy the blobs the target lacks, COPIES_AT_ONCE at a time, with a progress line every PROGRESS_EVERY s."""
    result = BlobCopy()
    queue = sorted(blobs.sizes)
    total_bytes = sum(blobs.sizes.values())
    last = time.monotonic()

    async def worker() -> None:
        nonlocal last
        while queue:
            sha256 = queue.pop()
            await _copy_one(source, target, sha256, blobs.sizes[sha256], result)
            result.done += 1
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                out(f"files: {result.done:,}/{len(blobs.sizes):,} checked, {result.copied:,} copied"
                    f" ({result.copied_bytes:,} of at most {total_bytes:,} bytes)")

    await asyncio.gather(*(worker() for _ in range(COPIES_AT_ONCE)))
    return result


async def _copy_one(source: Backends, target: Backends, sha256: str, size: int, result: BlobCopy) -> None:
    there = await target.blobs.stat(sha256)
    if there is not None:
        if there.size != size:
            result.failed[sha256] = f"the target holds {there.size} bytes under this name, the source {size}"
        else:
            result.present += 1
        return
    reader = await source.blobs.reader(sha256)
    if reader is None:
        result.failed[sha256] = "missing from the source's file store"
        return
    try:
        async with target.spools.new() as spool:
            async with aclosing(reader.chunks(0, reader.size)) as chunks:
                async for chunk in chunks:
                    await spool.write(chunk)
            if spool.digests()["sha256"] != sha256 or spool.size != size:
                result.failed[sha256] = "its bytes in the source do not match its sha256 (corrupt)"
                return
            await target.blobs.prepare(spool)
            info = await target.blobs.commit(spool)
    finally:
        reader.close()
    if info.sha256 != sha256 or info.size != size:  # what the target says it stored: never trusted blindly
        result.failed[sha256] = f"the target stored {info.size} bytes as {info.sha256}"
        return
    result.copied += 1
    result.copied_bytes += size
