"""Parse and render the HTML simple API (PEP 503, with PEP 592/629/658/714 attributes)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from html import escape
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import InvalidName, canonicalize_name

from proxy.errors import UpstreamInvalid
from proxy.simple.model import (
    DistFile,
    Origin,
    ProjectList,
    ProjectPage,
    check_file_count,
    derive_versions,
    first_emittable_hash,
    safe_files,
)
from proxy.simple.names import NormalizedName

__all__ = [
    "derive_versions",
    "first_emittable_hash",
    "parse_hash_pair",
    "parse_index_html",
    "parse_project_html",
    "render_index_html",
    "render_project_html",
]

_HASH_NAME = re.compile(r"[a-z0-9_]+")
_HEX = re.compile(r"[0-9a-f]+")
_SIZE = re.compile(r"[0-9]+")

Attrs = dict[str, str | None]


class _AnchorCollector(HTMLParser):
    """Collects every <a> (attributes + text) and the first <base href>, resolving nothing itself."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # attribute values and text arrive entity-decoded
        self.base: str | None = None
        self.anchors: list[tuple[Attrs, str]] = []
        self._open: tuple[Attrs, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # HTML: the first occurrence of a duplicated attribute wins, so build the dict in reverse.
        values = dict(reversed(attrs))
        if tag == "base" and self.base is None and values.get("href") is not None:
            self.base = values["href"]
        elif tag == "a":
            self._finish()  # an <a> cannot nest: a new one closes the previous
            self._open = (values, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1].append(data)

    def close(self) -> None:
        super().close()
        self._finish()

    def _finish(self) -> None:
        if self._open is not None:
            attrs, text = self._open
            self.anchors.append((attrs, "".join(text).strip()))
            self._open = None


def _collect(text: str) -> _AnchorCollector:
    parser = _AnchorCollector()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as exc:  # html.parser's only failure mode: malformed "<![" sections
        raise UpstreamInvalid(f"unparseable HTML page: {exc}") from None
    return parser


def parse_project_html(
    text: str, page_url: str, name: NormalizedName, *, max_files: int | None = None
) -> ProjectPage:
    """Read a PEP 503 project page; relative hrefs resolve against <base href>, else `page_url`.

    Non-standard `data-size`/`data-upload-time` (read by uv) are kept when well-formed. Files whose name is not
    a plain path segment are dropped (with a warning). Raises UpstreamInvalid when html.parser gives up, or for
    more than `max_files` links.
    """
    parser = _collect(text)
    anchors = [(attrs, label) for attrs, label in parser.anchors if _href(attrs)]
    check_file_count(len(anchors), max_files)
    # pip and uv honour <base href>; the document's first one applies to every link, wherever it is.
    base = urljoin(page_url, parser.base) if parser.base is not None else page_url
    found = (_dist_file(attrs, label, base) for attrs, label in anchors)
    files = safe_files(name, (f for f in found if f.filename))  # no filename: a link to a directory
    return ProjectPage(name=name, files=files, versions=derive_versions(files), origin=Origin.UPSTREAM)


def _href(attrs: Attrs) -> str:
    # Browsers, pip and uv ignore whitespace around URLs in attributes.
    return (attrs.get("href") or "").strip()


def _dist_file(attrs: Attrs, label: str, base: str) -> DistFile:
    url, fragment = urldefrag(urljoin(base, _href(attrs)))
    size = attrs.get("data-size")
    return DistFile(
        filename=label or unquote(urlsplit(url).path.rpartition("/")[2]),
        url=url,
        hashes=_fragment_hashes(fragment),
        requires_python=attrs.get("data-requires-python") or None,  # GitLab sends "" on every link
        yanked=_yanked(attrs),
        core_metadata=_core_metadata(attrs),
        size=int(size) if size and _SIZE.fullmatch(size) else None,
        upload_time=attrs.get("data-upload-time") or None,
        origin=Origin.UPSTREAM,
    )


def _fragment_hashes(fragment: str) -> dict[str, str]:
    """`#sha256=<hex>` -> {"sha256": hex}; `#egg=` and other non-hash fragments are ignored."""
    hashes: dict[str, str] = {}
    for part in unquote(fragment).split("&"):  # uv percent-decodes fragments too
        pair = parse_hash_pair(part)
        if pair is not None:
            hashes.setdefault(*pair)
    return hashes


def parse_hash_pair(text: str) -> tuple[str, str] | None:
    """`alg=hex` -> (alg, hex), both lower-cased; None for anything else (egg=, junk, non-hex)."""
    alg, sep, digest = text.strip().partition("=")
    alg, digest = alg.lower(), digest.lower()
    if not sep or alg == "egg" or not _HASH_NAME.fullmatch(alg) or not _HEX.fullmatch(digest):
        return None
    return alg, digest


def _yanked(attrs: Attrs) -> bool | str:
    """PEP 592: a valueless or empty data-yanked means yanked without a reason."""
    if "data-yanked" not in attrs:
        return False
    return attrs["data-yanked"] or True


def _core_metadata(attrs: Attrs) -> Mapping[str, str] | bool:
    """PEP 658 data-core-metadata, else PEP 714's legacy data-dist-info-metadata.

    Like pip, a value that is neither `true` nor `alg=hex` still means "metadata available".
    """
    for key in ("data-core-metadata", "data-dist-info-metadata"):
        value = attrs.get(key)
        if not value or value.strip().lower() == "false":
            continue
        if value.strip().lower() == "true":
            return True
        pair = parse_hash_pair(value)
        return {pair[0]: pair[1]} if pair is not None else True
    return False


def _esc(value: str) -> str:
    """The one escaping helper: every attribute value and text node goes through it."""
    return escape(value, quote=True)


def _anchor(attrs: Mapping[str, str], text: str) -> str:
    rendered = " ".join(f'{key}="{_esc(value)}"' for key, value in attrs.items())
    return f"<a {rendered}>{_esc(text)}</a><br>"


def _page(version: str, title: str, body: Iterable[str]) -> str:
    head = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{_esc(version)}">',
        f"<title>{_esc(title)}</title>",
        "</head>",
        "<body>",
        f"<h1>{_esc(title)}</h1>",
    ]
    return "\n".join([*head, *body, "</body>", "</html>", ""])


def render_project_html(page: ProjectPage, href: Callable[[DistFile], str]) -> str:
    """A PEP 503 project page linking each file at `href(file)`."""
    # PEP 629: claim 1.1 only when it is true of the data (PEP 700 makes size mandatory in 1.1).
    version = "1.1" if all(f.size is not None for f in page.files) else "1.0"
    return _page(version, f"Links for {page.name}", (_file_anchor(f, href(f)) for f in page.files))


def _file_anchor(dist: DistFile, url: str) -> str:
    # uv rejects unknown hash names outright, so the fragment carries one emittable hash only.
    pair = first_emittable_hash(dist.hashes)
    attrs = {"href": f"{url}#{pair[0]}={pair[1]}" if pair else url}
    if dist.requires_python:
        attrs["data-requires-python"] = dist.requires_python
    if dist.yanked is not False:
        attrs["data-yanked"] = dist.yanked if isinstance(dist.yanked, str) else ""
    if dist.core_metadata is not False:
        meta = first_emittable_hash(dist.core_metadata) if isinstance(dist.core_metadata, Mapping) else None
        value = f"{meta[0]}={meta[1]}" if meta else "true"
        # PEP 714: emit the new attribute and the legacy one with the same value for older pips.
        attrs["data-core-metadata"] = attrs["data-dist-info-metadata"] = value
    return _anchor(attrs, dist.filename)


def render_index_html(projects: ProjectList, href: Callable[[NormalizedName], str]) -> str:
    """The PEP 503 root page: one link per project. Claims 1.0 (later minors add nothing to the root)."""
    return _page("1.0", "Simple index", (_anchor({"href": href(n)}, n) for n in projects.names))


def parse_index_html(text: str) -> ProjectList:
    """Project names of a PEP 503 root page, normalized, de-duplicated, in page order.

    Anchors whose text is not a valid project name are skipped. Raises UpstreamInvalid if unparseable.
    """
    names: dict[NormalizedName, None] = {}
    for _attrs, label in _collect(text).anchors:
        try:
            names.setdefault(canonicalize_name(label, validate=True))
        except InvalidName:
            continue
    return ProjectList(names=tuple(names))
