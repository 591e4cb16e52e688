"""The hash algorithms a spool computes besides sha256, by the names indexes and uploads use for them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["Hasher", "hashers"]


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


# The only algorithms ever instantiated, by index/upload name: fixed-length digests (shake_* need a length and would
# fail at hexdigest()). "blake2_256" is PyPI's blake2b with a 32-byte digest. Any other name is ignored.
_HASHERS: dict[str, Callable[[], Hasher]] = {
    "sha256": hashlib.sha256,
    "sha224": hashlib.sha224,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
    "sha3_256": hashlib.sha3_256,
    "sha3_384": hashlib.sha3_384,
    "sha3_512": hashlib.sha3_512,
    "blake2b": hashlib.blake2b,
    "blake2s": hashlib.blake2s,
    "blake2_256": lambda: hashlib.blake2b(digest_size=32),
    "md5": lambda: hashlib.md5(usedforsecurity=False),  # only ever compared with a declared value, never trusted
}


def hashers(algorithms: Iterable[str]) -> dict[str, Hasher]:
    """New hashers: sha256 always, and each of `algorithms` this module knows (unknown names are ignored)."""
    hashers: dict[str, Hasher] = {"sha256": hashlib.sha256()}
    for algorithm in algorithms:
        factory = _HASHERS.get(algorithm)
        if factory is not None and algorithm not in hashers:
            hashers[algorithm] = factory()
    return hashers
