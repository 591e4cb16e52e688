"""Steps that must not be abandoned half-way by a cancelled caller (a client going away mid-request)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["to_end"]

T = TypeVar("T")


async def to_end(step: Awaitable[T]) -> T:
    """Await `step` to its end even if the caller is cancelled meanwhile (then re-raise the cancel): a BEGIN, a
    COMMIT or an unlock is never left in flight on a connection that others use next."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():  # the caller was cancelled, not the step: statements take milliseconds
            await asyncio.wait({task})
        raise
