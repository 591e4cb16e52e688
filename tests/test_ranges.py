"""proxy.web.ranges: the answer to a GET/HEAD of an immutable file, from its request headers (pure)."""

from __future__ import annotations

import pytest

from proxy.web.ranges import Answer, Representation, answer

FILE = Representation(size=1000, etag='"abc"', modified=1_700_000_000.5)  # Tue, 14 Nov 2023 22:13:20.5 GMT
BEFORE = "Tue, 14 Nov 2023 22:13:19 GMT"  # earlier than the file
AFTER = "Tue, 14 Nov 2023 22:13:21 GMT"  # the Last-Modified sent for it (rounded up), and later
WHOLE = Answer(200, 0, 1000)


def ranged(start: int, count: int) -> Answer:
    return Answer(206, start, count, f"bytes {start}-{start + count - 1}/1000")


UNSATISFIABLE = Answer(416, content_range="bytes */1000")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, WHOLE),
        ({"Range": "bytes=0-99"}, ranged(0, 100)),
        ({"Range": "bytes=990-"}, ranged(990, 10)),
        ({"Range": "bytes=900-5000"}, ranged(900, 100)),  # past the end: to the end
        ({"Range": "bytes=-100"}, ranged(900, 100)),  # the last 100 bytes (uv reads wheel tails this way)
        ({"Range": "bytes=-5000"}, ranged(0, 1000)),
        ({"Range": "BYTES=5-5"}, ranged(5, 1)),
        ({"Range": "bytes=1000-"}, UNSATISFIABLE),  # starts past the end
        ({"Range": "bytes=5-4"}, UNSATISFIABLE),
        ({"Range": "bytes=-"}, UNSATISFIABLE),
        ({"Range": "bytes=abc"}, UNSATISFIABLE),
        ({"Range": "bytes=0-1,5-6"}, WHOLE),  # several ranges: ignored, the whole file
        ({"Range": "bytes=0-1, -5"}, WHOLE),
        ({"Range": "bytes=0-1,"}, UNSATISFIABLE),  # a list with a malformed member
        ({"Range": "bytes=0-1,5-2"}, UNSATISFIABLE),
        ({"Range": "bytes=0--1"}, UNSATISFIABLE),
        ({"Range": "bytes= 0-1"}, UNSATISFIABLE),  # as aiohttp parses a single range: no spaces
        ({"Range": "items=0-5"}, UNSATISFIABLE),  # another unit
        ({"Range": "bytes"}, UNSATISFIABLE),
        ({"Range": ""}, UNSATISFIABLE),
        ({"Range": "bytes=0-99", "If-Range": AFTER}, ranged(0, 100)),
        ({"Range": "bytes=0-99", "If-Range": BEFORE}, WHOLE),  # changed since: the whole file
        ({"Range": "bytes=0-99", "If-Range": '"abc"'}, ranged(0, 100)),
        ({"If-None-Match": '"abc"'}, Answer(304)),
        ({"If-None-Match": 'W/"abc"'}, Answer(304)),  # weak comparison
        ({"If-None-Match": '"x", "abc"'}, Answer(304)),
        ({"If-None-Match": "*"}, Answer(304)),
        ({"If-None-Match": '"other"'}, WHOLE),
        ({"If-None-Match": '"other"', "If-Modified-Since": AFTER}, WHOLE),  # If-None-Match wins
        ({"If-Modified-Since": AFTER}, Answer(304)),
        ({"If-Modified-Since": BEFORE}, WHOLE),
        ({"If-Modified-Since": "yesterday"}, WHOLE),  # unreadable: ignored
        ({"If-Match": '"abc"', "Range": "bytes=0-0"}, ranged(0, 1)),
        ({"If-Match": '"other"'}, Answer(412)),
        ({"If-Match": 'W/"abc"'}, Answer(412)),  # strong comparison
        ({"If-Match": "*"}, WHOLE),
        ({"If-Unmodified-Since": BEFORE}, Answer(412)),
        ({"If-Unmodified-Since": AFTER}, WHOLE),
        ({"If-Match": '"abc"', "If-Unmodified-Since": BEFORE}, WHOLE),  # If-Match wins
        ({"If-Match": '"other"', "If-None-Match": '"abc"'}, Answer(412)),  # preconditions first
    ],
)
def test_answers(headers: dict[str, str], expected: Answer) -> None:
    """Conditionals in RFC 9110's order, then one byte range, as aiohttp's FileResponse answered (except that
    several well-formed ranges are ignored rather than refused)."""
    assert answer(FILE, headers) == expected


def test_an_empty_file_has_no_satisfiable_range() -> None:
    """A zero-length file: the whole (empty) file, and 416 for any range."""
    empty = Representation(0, '"e"', 0.0)
    assert answer(empty, {}) == Answer(200, 0, 0)
    assert answer(empty, {"Range": "bytes=-1"}) == Answer(416, content_range="bytes */0")
