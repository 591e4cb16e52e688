"""Tokens replicas present to each other's peer endpoint (GET /_shadowpi/fills/<sha256>): an HMAC of the file and
the time under the secret every replica on the database shares (MetadataStore.shared_secret). Pure: no I/O (SharedSecret
only remembers what it is handed).

A token names one file and expires after MAX_AGE seconds, so one seen on the wire opens nothing else for long.
It travels as `Authorization: Shadowpi-Peer <unix time>.<hex hmac-sha256>`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

__all__ = ["MAX_AGE", "SCHEME", "SECRET_NAME", "SharedSecret", "authorization", "check"]

SCHEME = "Shadowpi-Peer"
SECRET_NAME = "peer-fills"  # noqa: S105 the name of the MetadataStore.shared_secret, not a secret
MAX_AGE = 60.0  # seconds a token stays valid, either way (replicas' clocks may differ a little)


def _mac(secret: bytes, sha256: str, issued: int) -> str:
    return hmac.new(secret, f"fill\n{sha256}\n{issued}".encode(), hashlib.sha256).hexdigest()


def authorization(secret: bytes, sha256: str, now: float) -> str:
    """The Authorization header value for asking a peer for the fill of `sha256`."""
    issued = int(now)
    return f"{SCHEME} {issued}.{_mac(secret, sha256, issued)}"


def check(secret: bytes, sha256: str, header: str | None, now: float) -> bool:
    """Whether `header` (an Authorization value) is a current token for `sha256` under `secret`."""
    scheme, _, token = (header or "").partition(" ")
    issued, _, mac = token.partition(".")
    if scheme != SCHEME or not issued.isdigit() or len(issued) > 12 or abs(now - int(issued)) > MAX_AGE:
        return False
    return hmac.compare_digest(mac.encode(), _mac(secret, sha256, int(issued)).encode())


class SharedSecret:
    """The peer secret, asked of the store once per process (on first use: a single machine never asks)."""

    def __init__(self, fetch: Callable[[], Awaitable[bytes]]) -> None:
        self._fetch = fetch
        self._value: bytes | None = None

    async def __call__(self) -> bytes:
        if self._value is None:
            self._value = await self._fetch()
        return self._value
