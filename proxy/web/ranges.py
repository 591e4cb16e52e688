"""What a GET or HEAD of an immutable file asks for: its conditional headers (RFC 9110 §13) and one byte range
(§14), decided from header values alone, without I/O.

This is what aiohttp's FileResponse answered for cached files before shadowpi sent them itself, with two
differences: several well-formed byte ranges are ignored (the whole file, 200, which RFC 9110 §14.2 allows) where
FileResponse refused them with 416; and the validator is the blob's sha256 (the same on every worker and after a
re-download), not the file's mtime and size. Anything else that is not one well-formed byte range is refused (416),
as before, also for a file not yet cached (refused(), before any download starts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate

__all__ = ["Answer", "Representation", "answer", "refused"]

_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII | re.IGNORECASE)
_SPEC = re.compile(r"^[ \t]*(\d*)-(\d*)[ \t]*$", re.ASCII)
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Representation:
    """The file as the validators see it."""

    size: int
    etag: str  # strong, quoted: '"<sha256>"'
    modified: float  # unix time


@dataclass(frozen=True, slots=True)
class Answer:
    """How to answer: the status, and for 200/206 the bytes to send (a HEAD sends none of them)."""

    status: int  # 200, 206, 304 (not modified), 412 (precondition failed), 416 (range not satisfiable)
    offset: int = 0
    count: int = 0
    content_range: str | None = None

    @property
    def validators(self) -> bool:
        """Whether the response carries ETag and Last-Modified (FileResponse sent them with 200, 206 and 304)."""
        return self.status in (200, 206, 304)


def answer(file: Representation, headers: Mapping[str, str]) -> Answer:
    """The answer to a GET/HEAD with these request headers (preconditions first, in RFC 9110 §13.2.2's order)."""
    if_match = _etags(headers.get("If-Match"))
    if if_match is not None:
        if not _matches(file.etag, if_match, weak=False):
            return Answer(412)
    elif (since := _date(headers.get("If-Unmodified-Since"))) is not None and file.modified > since:
        return Answer(412)
    if_none_match = _etags(headers.get("If-None-Match"))
    if if_none_match is not None:
        if _matches(file.etag, if_none_match, weak=True):
            return Answer(304)
    elif (since := _date(headers.get("If-Modified-Since"))) is not None and file.modified <= since:
        return Answer(304)
    requested = headers.get("Range")
    if requested is None or not _range_applies(file, headers.get("If-Range")):
        return Answer(200, 0, file.size)
    return _ranged(file.size, requested)


def _range_applies(file: Representation, if_range: str | None) -> bool:
    """If-Range with a date: the range only if the file is no newer (an entity tag, as before, never stops it: the
    bytes behind a file URL never change)."""
    when = _date(if_range)
    return when is None or file.modified <= when


def refused(requested: str) -> bool:
    """Whether a Range header is answered 416 whatever the file's size: neither one well-formed byte range nor a
    list of them (another unit, a malformed or backwards range)."""
    match = _SINGLE_RANGE.match(requested)
    if match is not None:
        return not _valid(*match.groups())
    unit, equals, specs = requested.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," not in specs:
        return True
    return not all((spec := _SPEC.match(part)) is not None and _valid(*spec.groups()) for part in specs.split(","))


def _valid(first: str, last: str) -> bool:
    return bool(first or last) and not (first and last and int(first) > int(last))


def _ranged(size: int, requested: str) -> Answer:
    if refused(requested):
        return _unsatisfiable(size)
    match = _SINGLE_RANGE.match(requested)
    if match is None:  # several ranges: ignored (RFC 9110 14.2), the whole file
        return Answer(200, 0, size)
    first, last = (int(text) if text else None for text in match.groups())
    if first is None:  # bytes=-N: the last N bytes (N = 0 reads as "from byte 0", as aiohttp parses it)
        assert last is not None
        start = max(size - last, 0) if last else 0
        count = size - start
    else:
        start = first
        count = min(last + 1 if last is not None else size, size) - start
    if start >= size:
        return _unsatisfiable(size)
    return Answer(206, start, count, f"bytes {start}-{start + count - 1}/{size}")


def _unsatisfiable(size: int) -> Answer:
    return Answer(416, content_range=f"bytes */{size}")


def _etags(header: str | None) -> list[tuple[bool, str]] | None:
    """(weak, quoted tag) of an If-Match/If-None-Match list; "*" is [(False, "*")]; None when absent."""
    if header is None:
        return None
    if header.strip() == "*":
        return [(False, "*")]
    return [(bool(weak), tag) for weak, tag in _ETAG.findall(header)]


def _matches(etag: str, tags: list[tuple[bool, str]], *, weak: bool) -> bool:
    return any(tag in ("*", etag) for is_weak, tag in tags if weak or not is_weak)


def _date(header: str | None) -> float | None:
    """An HTTP date as unix time; None when absent or unreadable (then the header is ignored)."""
    parsed = parsedate(header) if header is not None else None
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC).timestamp()
    except ValueError:
        return None
