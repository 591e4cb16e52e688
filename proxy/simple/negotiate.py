"""Content negotiation for the simple API: Accept header / ?format= -> Format (PEP 691)."""

from __future__ import annotations

import enum
import functools
import re

__all__ = ["Format", "choose_format"]


class Format(enum.Enum):
    """A wire format of the simple repository API; the value is the media type sent as Content-Type."""

    JSON = "application/vnd.pypi.simple.v1+json"
    HTML = "application/vnd.pypi.simple.v1+html"
    LEGACY_HTML = "text/html"

    @property
    def content_type(self) -> str:
        """The exact Content-Type header value: the real version, never `latest` (PEP 691)."""
        return self.value


# PEP 691: `latest` is a meta version that names the newest v1 format.
_MEDIA_TYPES: dict[str, Format] = {
    **{fmt.value: fmt for fmt in Format},
    "application/vnd.pypi.simple.latest+json": Format.JSON,
    "application/vnd.pypi.simple.latest+html": Format.HTML,
}

# How specific the range that matched a format was: an exact type beats type/*, which beats */*.
_ANY, _TYPE_WILDCARD, _EXACT = 1, 2, 3

# Tie-breaking orders. PEP 691 recommends the most expressive format the client names explicitly;
# a wildcard tie keeps text/html so browsers and curl see a readable page, as PyPI does.
_EXPLICIT_ORDER = (Format.JSON, Format.HTML, Format.LEGACY_HTML)
_WILDCARD_ORDER = (Format.LEGACY_HTML, Format.HTML, Format.JSON)

# RFC 9110 §5.6.2 token and §12.4.2 weight (at most three decimals, never above 1).
_TCHARS = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_MEDIA_RANGE = re.compile(rf"({_TCHARS})/({_TCHARS})")
_WEIGHT = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


# Clients send a handful of distinct Accept headers; parsing one costs ~40 us, a cache hit well under 1 us.
@functools.lru_cache(maxsize=256)
def choose_format(accept: str | None, query_format: str | None = None) -> Format | None:
    """The format to answer with; None (= 406) only for an unknown `?format=` value.

    `?format=` wins over Accept. A missing, empty or unsatisfiable Accept header yields text/html, like PyPI.
    """
    if query_format is not None:
        # PEP 691: a single media type, no lists, wildcards or q-values; media types are case-insensitive.
        return _MEDIA_TYPES.get(query_format.strip().lower())
    scores = _score(_parse_accept(accept or ""))
    acceptable = {fmt: score for fmt, score in scores.items() if score[0] > 0}
    if not acceptable:
        return Format.LEGACY_HTML
    best = max(q for q, _ in acceptable.values())
    tied = {fmt: spec for fmt, (q, spec) in acceptable.items() if q == best}
    for fmt in _EXPLICIT_ORDER:
        if tied.get(fmt) == _EXACT:
            return fmt
    return next(fmt for fmt in _WILDCARD_ORDER if fmt in tied)


def _parse_accept(accept: str) -> list[tuple[str, str, int]]:
    """(type, subtype, q in thousandths) for each well-formed media range; malformed ranges are dropped."""
    ranges: list[tuple[str, str, int]] = []
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        match = _MEDIA_RANGE.fullmatch(media_range.lower())
        if match is None:
            continue
        kind, subtype = match.groups()
        if kind == "*" and subtype != "*":
            continue  # "*/json" is not a media range (RFC 9110 §12.5.1)
        q = _weight(params)
        if q is not None:
            ranges.append((kind, subtype, q))
    return ranges


def _weight(params: list[str]) -> int | None:
    """The q parameter in thousandths: 1000 when absent, None when malformed. Other parameters are ignored."""
    for param in params:
        key, sep, value = param.partition("=")
        if key.strip().lower() != "q":
            continue
        value = value.strip()
        if not sep or _WEIGHT.fullmatch(value) is None:
            return None
        return round(float(value) * 1000)
    return 1000


def _score(ranges: list[tuple[str, str, int]]) -> dict[Format, tuple[int, int]]:
    """(q, specificity) per format, taken from the most specific matching range (RFC 9110 §12.5.1).

    Among equally specific ranges for one format (e.g. v1+json and latest+json) the highest q counts.
    """
    scores: dict[Format, tuple[int, int]] = {}
    for fmt in Format:
        matches = [(spec, q) for kind, subtype, q in ranges if (spec := _specificity(fmt, kind, subtype))]
        if matches:
            spec, q = max(matches)
            scores[fmt] = (q, spec)
    return scores


def _specificity(fmt: Format, kind: str, subtype: str) -> int:
    """How specifically a media range names `fmt`; 0 when it does not match it at all."""
    if kind == "*":
        return _ANY
    if subtype == "*":
        return _TYPE_WILDCARD if fmt.value.startswith(f"{kind}/") else 0
    return _EXACT if _MEDIA_TYPES.get(f"{kind}/{subtype}") is fmt else 0
