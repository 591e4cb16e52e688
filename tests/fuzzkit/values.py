"""Hypothesis strategies for the pieces of a request: names, filenames, credentials, headers, ranges, queries.

Everything is bytes, as it goes on the wire. Each strategy mixes what real clients send with what breaks parsers:
unicode, control characters, percent-encoding, over-long values, wrong syntax.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

from tests.fuzzkit.harness import FUZZ_TOKEN, METRICS_TOKEN, TOKEN_OWNER
from tests.publishing import PASSWORD_AUTH

Header = tuple[bytes, bytes]

# Spellings that reach real projects (upstream: tinylib, depends-on-tiny; private: fuzz-private) and some that don't.
KNOWN_NAMES = (b"tinylib", b"depends-on-tiny", b"fuzz-private", b"TinyLib", b"Depends_On.Tiny", b"fuzz_private",
               b"FUZZ.Private", b"no-such-project")
NASTY_SEGMENTS = (b"", b".", b"..", b"%2e%2e", b"%2F", b"a%2Fb", b"a%00b", b"a%0d%0ab", b"-", b"_", b"a..b",
                  b"%C3%A9", b"%FF", b"%", b"%zz", b"a b", b"a;b", b"%25", b"~", b"a@b", b"a:b")
PIP_ACCEPT = b"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UV_ACCEPT = b"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
MEDIA_TYPES = (b"application/vnd.pypi.simple.v1+json", b"application/vnd.pypi.simple.v1+html", b"text/html",
               b"application/vnd.pypi.simple.latest+json", b"application/vnd.pypi.simple.latest+html",
               b"application/json", b"*/*", b"text/*", b"application/*", b"image/png",
               b"application/vnd.pypi.simple.v2+json")


@dataclass(frozen=True)
class Credentials:
    """An Authorization header value (None: no header) and what it is: 'valid', 'none' or 'bad'."""

    kind: str
    value: bytes | None


def _basic(user: bytes, password: bytes) -> bytes:
    return b"Basic " + base64.b64encode(user + b":" + password)


def short_text(max_size: int = 30) -> st.SearchStrategy[bytes]:
    """Unicode text (any code point, control characters included) as UTF-8."""
    return st.text(max_size=max_size).map(lambda s: s.encode("utf-8", "surrogatepass"))


_CONTROLS = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])


def header_text(max_size: int = 30) -> st.SearchStrategy[bytes]:
    """Unicode text that is a legal header value (RFC 9110: no control characters but tab; UTF-8 is obs-text)."""
    return short_text(max_size).map(lambda b: b.translate(None, _CONTROLS))


def long_value(limit: int) -> st.SearchStrategy[bytes]:
    """A very long ASCII value, up to `limit` bytes (sizes shrink towards small)."""
    return st.integers(100, max(100, limit)).map(lambda n: b"a" * n)


def url_segment() -> st.SearchStrategy[bytes]:
    """A path segment: known names, nasty ones, percent-encoded unicode or bytes, raw bytes, very long."""
    return st.one_of(
        st.sampled_from(KNOWN_NAMES),
        st.sampled_from(NASTY_SEGMENTS),
        st.text(max_size=30).map(lambda s: quote_from_bytes(s.encode("utf-8", "surrogatepass"), safe="").encode()),
        st.binary(max_size=20).map(lambda b: quote_from_bytes(b, safe="").encode()),
        st.binary(min_size=1, max_size=12),  # raw bytes on the request line: often a malformed request
        long_value(3000),
    )


def credentials() -> st.SearchStrategy[Credentials]:
    user, password = (v.encode() for v in PASSWORD_AUTH)
    token = FUZZ_TOKEN.encode()
    valid = st.sampled_from([_basic(user, password), _basic(b"__token__", token), _basic(TOKEN_OWNER.encode(), token),
                             b"basic " + base64.b64encode(user + b":" + password)])
    bad = st.one_of(
        st.builds(_basic, st.sampled_from([user, b"__token__", TOKEN_OWNER.encode()]), short_text()),
        st.builds(_basic, short_text(), short_text()),
        st.binary(max_size=40).map(lambda b: b"Basic " + base64.b64encode(b)),  # no colon, not UTF-8, ...
        st.binary(max_size=40).map(lambda b: b"Basic " + b),  # not base64 at all
        st.sampled_from([b"", b"Basic", b"Basic ", b"Basic ====", b"Bearer " + METRICS_TOKEN.encode(), b"Bearer",
                         b"Digest username=alice", b"Basic " + base64.b64encode(user + b":" + password + b"x")]),
        long_value(6000).map(lambda b: b"Basic " + b),
    )
    # Mostly valid: most of the surface is behind authentication, and the fuzzer should get past it.
    kind = st.sampled_from(["valid", "valid", "valid", "none", "bad"])
    return kind.flatmap(lambda k: st.just(Credentials("none", None)) if k == "none" else
                        (valid if k == "valid" else bad).map(lambda v: Credentials(k, v)))


def accept() -> st.SearchStrategy[bytes]:
    q = st.one_of(st.sampled_from([b"1", b"0", b"0.5", b"0.001", b"1.5", b"-1", b"abc", b"", b"1e400", b"nan"]),
                  st.floats(0, 1).map(lambda f: f"{f:.3f}".encode()))
    media_range = st.tuples(st.sampled_from(MEDIA_TYPES), st.one_of(st.none(), q)).map(
        lambda mq: mq[0] if mq[1] is None else mq[0] + b"; q=" + mq[1])
    return st.one_of(
        st.sampled_from([PIP_ACCEPT, UV_ACCEPT, b"application/vnd.pypi.simple.v1+json", b"text/html", b"*/*", b""]),
        st.lists(media_range, min_size=1, max_size=6).map(b", ".join),
        header_text(60),
    )


def byte_range() -> st.SearchStrategy[bytes]:
    number = st.one_of(st.integers(0, 5000), st.sampled_from([2**63, 10**30])).map(lambda n: str(n).encode())
    spec = st.one_of(
        st.tuples(number, number).map(lambda ab: ab[0] + b"-" + ab[1]),
        number.map(lambda n: n + b"-"),
        number.map(lambda n: b"-" + n),
        st.sampled_from([b"-", b"a-b", b"0--1", b" 0-1", b"-0"]),
    )
    return st.one_of(
        st.lists(spec, min_size=1, max_size=4).map(lambda specs: b"bytes=" + b",".join(specs)),
        st.sampled_from([b"bytes=0-99", b"bytes=-100", b"bytes=100-", b"items=0-1", b"bytes=", b"bytes", b""]),
        header_text(),
    )


def etags() -> st.SearchStrategy[bytes]:
    tag = st.one_of(st.sampled_from([b'"x"', b'W/"x"', b"*", b'""', b'"', b"W/", b"x"]),
                    st.binary(max_size=20).map(lambda b: b'"' + b.hex().encode() + b'"'))
    return st.lists(tag, min_size=1, max_size=5).map(b", ".join)


def encodings() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from([b"gzip", b"gzip, deflate", b"identity", b"br", b"*", b"gzip;q=0", b""]),
                     header_text(20))


def query() -> st.SearchStrategy[bytes]:
    """A query string (with its '?'), mostly ?format= as PEP 691 allows, or nothing."""
    media = st.one_of(st.sampled_from(MEDIA_TYPES), short_text(20).map(lambda b: quote_from_bytes(b, safe="").encode()))
    fmt = media.map(lambda m: b"format=" + m.replace(b"+", b"%2B"))
    raw_fmt = media.map(lambda m: b"format=" + m)  # unencoded '+' arrives as a space
    other = st.binary(max_size=20).map(lambda b: quote_from_bytes(b, safe="=&").encode())
    return st.one_of(
        st.just(b""),
        st.lists(st.one_of(fmt, raw_fmt, other), min_size=1, max_size=3).map(lambda qs: b"?" + b"&".join(qs)),
        st.sampled_from([b"?", b"?format", b"?format=", b"?format=%", b"?&&&", b"?format=%00"]),
    )


def extra_headers() -> st.SearchStrategy[list[Header]]:
    """Optional headers clients send, with real and broken values."""
    optional = st.fixed_dictionaries({}, optional={
        b"Accept": accept(), b"Accept-Encoding": encodings(), b"Range": byte_range(), b"If-None-Match": etags(),
        b"If-Modified-Since": st.sampled_from([b"Wed, 01 Jan 2025 00:00:00 GMT", b"garbage", b""]),
        b"If-Range": st.sampled_from([b'"x"', b"Wed, 01 Jan 2025 00:00:00 GMT", b"garbage"]),
        b"User-Agent": st.one_of(st.sampled_from([b"pip/25.0", b"uv/0.5", b"twine/6.0"]), header_text(40)),
    })
    # Unusual but legal: repeated known headers, odd names, unicode and control characters other than CR/LF/NUL.
    name = st.one_of(st.sampled_from([b"Accept", b"Range", b"Authorization", b"Content-Type", b"X-Forwarded-For",
                                      b"Expect", b"Connection", b"Cookie"]),
                     st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).map(str.encode))
    value = st.one_of(header_text(30),
                      st.sampled_from([b"100-continue", b"close", b"keep-alive", b"Upgrade"]))
    return st.tuples(optional, st.lists(st.tuples(name, value), max_size=2)).map(lambda t: [*t[0].items(), *t[1]])
