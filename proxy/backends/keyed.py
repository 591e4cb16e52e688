"""Locks by key (a project name, say) within one process, kept only while someone holds or waits for them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders and waiters


class KeyedLocks(Generic[K]):
    """One asyncio.Lock per key in use."""

    def __init__(self) -> None:
        self._entries: dict[K, _Entry] = {}

    @asynccontextmanager
    async def hold(self, key: K, *, wait: float) -> AsyncIterator[bool]:
        """Yields True while holding `key`'s lock; False, without it, when it was not free within `wait` seconds."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await entry.lock.acquire()
            except TimeoutError:
                yield False
                return
            try:
                yield True
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if not entry.users:
                del self._entries[key]

    def __len__(self) -> int:
        """Keys in use (held or awaited)."""
        return len(self._entries)
