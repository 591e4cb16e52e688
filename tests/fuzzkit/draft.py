"""A request before credentials, optional headers and framing are chosen (shared by the route strategies)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.fuzzkit.multipart import Budget
from tests.fuzzkit.values import PIP_ACCEPT


@dataclass(frozen=True)
class Draft:
    """A request before credentials, optional headers and framing are chosen.

    expect: the statuses a correct server answers when the request goes out plainly with acceptable credentials
    (empty: anything but a violation of the invariants). write: needs credentials on every surface.
    """

    method: bytes
    target: bytes
    body: bytes = b""
    content_type: bytes | None = None
    tags: frozenset[str] = frozenset()
    expect: frozenset[int] = frozenset()
    write: bool = False
    authorization: tuple[bytes | None] | None = None  # the route chooses its own Authorization (/metrics)
    accept: bytes | None = field(default=PIP_ACCEPT)


DraftStrategy = Callable[[bytes, Budget], st.SearchStrategy[Draft]]
