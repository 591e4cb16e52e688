"""Tests for proxy.simple.negotiate: Accept header and ?format= selection (PEP 691)."""

from __future__ import annotations

import pytest

from proxy.simple.negotiate import Format, choose_format

JSON, HTML, LEGACY = Format.JSON, Format.HTML, Format.LEGACY_HTML

PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UV = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
V1_JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"
LATEST_JSON = "application/vnd.pypi.simple.latest+json"
LATEST_HTML = "application/vnd.pypi.simple.latest+html"


def test_content_types_are_exact_media_types() -> None:
    """Each format's Content-Type is the bare v1 (or text/html) media type, without parameters."""
    assert {f: f.content_type for f in Format} == {JSON: V1_JSON, HTML: V1_HTML, LEGACY: "text/html"}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(PIP, JSON, id="pip"),
        pytest.param(UV, JSON, id="uv"),
        pytest.param(BROWSER, LEGACY, id="browser"),
        pytest.param("*/*", LEGACY, id="curl"),
        pytest.param(None, LEGACY, id="no-header"),
        pytest.param("", LEGACY, id="empty-header"),
        pytest.param("   ", LEGACY, id="blank-header"),
        pytest.param(V1_JSON, JSON, id="json-only"),
        pytest.param(V1_HTML, HTML, id="v1-html-only"),
        pytest.param("text/html", LEGACY, id="text-html-only"),
        pytest.param(LATEST_JSON, JSON, id="latest-json-alias"),
        pytest.param(LATEST_HTML, HTML, id="latest-html-alias"),
        pytest.param(f"{LATEST_JSON};q=0.5, text/html;q=0.4", JSON, id="latest-alias-with-q"),
        pytest.param("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", JSON, id="case-insensitive"),
        pytest.param(f"{V1_JSON};q=0.5, text/html", LEGACY, id="higher-q-wins-over-expressive"),
        pytest.param(f"{V1_JSON}, {V1_HTML}, text/html", JSON, id="exact-tie-most-expressive"),
        pytest.param(f"text/html, {V1_HTML}", HTML, id="exact-tie-v1-html-over-text-html"),
        pytest.param(f"{V1_JSON}, */*", JSON, id="exact-beats-wildcard-at-equal-q"),
        pytest.param("text/html, */*", LEGACY, id="exact-text-html-beats-wildcard"),
        pytest.param("application/*", HTML, id="application-wildcard-prefers-html"),
        pytest.param("text/*", LEGACY, id="text-wildcard"),
        pytest.param("*/*;q=0.5, text/*;q=0.1", HTML, id="most-specific-range-sets-q"),
        pytest.param(f"{V1_JSON};q=0.1, application/*;q=0.9", HTML, id="exact-range-overrides-wildcard-q"),
        pytest.param(f"{V1_JSON};q=0, */*", LEGACY, id="q0-json-refused"),
        pytest.param("text/html;q=0, */*", HTML, id="q0-text-html-refused"),
        pytest.param(f"text/html;q=0, {V1_HTML};q=0, */*", JSON, id="only-json-left"),
        pytest.param("*/*;q=0", LEGACY, id="nothing-acceptable-falls-back"),
        pytest.param("image/png", LEGACY, id="unrelated-type-falls-back"),
        pytest.param(f"{V1_JSON};q=abc, text/html;q=0.5", LEGACY, id="malformed-q-drops-range"),
        pytest.param(f"{V1_JSON};q=1.5, {V1_HTML};q=0.2", HTML, id="q-above-1-malformed"),
        pytest.param(f"{V1_JSON};q=0.0001, {V1_HTML};q=0.2", HTML, id="q-four-decimals-malformed"),
        pytest.param(f"{V1_JSON};q=-1, {V1_HTML};q=0.2", HTML, id="negative-q-malformed"),
        pytest.param(f"{V1_JSON};q, {V1_HTML};q=0.2", HTML, id="q-without-value-malformed"),
        pytest.param(f"{V1_JSON} ; Q=0.3 , {V1_HTML};q=0.2", JSON, id="whitespace-and-upper-q"),
        pytest.param(f"{V1_JSON};charset=utf-8;q=0.3, {V1_HTML};q=0.2", JSON, id="other-params-ignored"),
        pytest.param("*/json, text/html;q=0.1", LEGACY, id="invalid-wildcard-ignored"),
        pytest.param("garbage, ,;;, /", LEGACY, id="garbage"),
        pytest.param(f"{V1_JSON};q=0.2, {LATEST_JSON};q=0.9, {V1_HTML};q=0.5", JSON, id="alias-and-v1-max-q"),
    ],
)
def test_accept_header(accept: str | None, expected: Format) -> None:
    """The Accept header selects the format by q-value, specificity and the documented tie-breaks."""
    assert choose_format(accept) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(V1_JSON, JSON, id="v1-json"),
        pytest.param(V1_HTML, HTML, id="v1-html"),
        pytest.param("text/html", LEGACY, id="text-html"),
        pytest.param(LATEST_JSON, JSON, id="latest-json"),
        pytest.param(LATEST_HTML, HTML, id="latest-html"),
        pytest.param("Application/Vnd.Pypi.Simple.V1+Json", JSON, id="case-insensitive"),
        pytest.param("", None, id="empty"),
        pytest.param("json", None, id="shorthand"),
        pytest.param("*/*", None, id="wildcard"),
        pytest.param(f"{V1_JSON};q=0.5", None, id="with-q"),
        pytest.param(f"{V1_JSON}, text/html", None, id="list"),
        pytest.param("application/vnd.pypi.simple.v2+json", None, id="future-major"),
    ],
)
def test_query_format(query: str, expected: Format | None) -> None:
    """?format= accepts exactly one known media type (or latest alias); anything else means 406."""
    assert choose_format(None, query) is expected


@pytest.mark.parametrize("accept", [PIP, "text/html", "image/png", None])
def test_query_format_overrides_accept(accept: str | None) -> None:
    """A valid ?format= wins over whatever the Accept header asks for."""
    assert choose_format(accept, V1_HTML) is HTML


def test_invalid_query_format_is_406_even_with_good_accept() -> None:
    """An invalid ?format= is not rescued by an acceptable Accept header."""
    assert choose_format(PIP, "application/xml") is None
