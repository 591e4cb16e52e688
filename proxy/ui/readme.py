"""A project's README and facts from its core metadata, rendered and sanitized by readme_renderer (as PyPI does).

Pure functions plus a small cache: rendering runs in an executor (pygments and docutils take tens of milliseconds
on big READMEs) and its result is kept by the metadata's content hash, which never changes for the same bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass
from email.message import Message
from io import StringIO

from packaging.metadata import parse_email

# A description beyond this is shown as a note, not rendered: nobody reads it, and it would cost seconds of CPU.
MAX_DESCRIPTION_CHARS = 1_000_000
CACHE_ENTRIES = 256
_SAFE_SCHEMES = ("https://", "http://")


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    text: str  # the URL as the metadata gives it
    href: str | None  # None: shown as text only (not http(s): javascript:, data:, relative, ...)


@dataclass(frozen=True, slots=True)
class Readme:
    """What a project page shows from one metadata file. `html` is sanitized markup (safe to insert unescaped);
    every other field is plain text that templates escape."""

    html: str | None  # None: no description in the metadata
    kind: str  # "markdown" | "rst" | "text" | "none" | "too big"
    summary: str | None
    links: tuple[Link, ...]
    license: str | None
    requires_python: str | None
    requires_dist: tuple[str, ...]


def content_kind(content_type: str | None) -> tuple[str, str]:
    """(kind, markdown variant) from Description-Content-Type; absent or unknown means reStructuredText, as PyPI
    treats it (PEP 566: the default is text/x-rst)."""
    message = Message()
    message["content-type"] = content_type or "text/x-rst"
    media = message.get_content_type()
    variant = str(message.get_param("variant") or "GFM")
    if media == "text/markdown":
        return "markdown", variant if variant in {"GFM", "CommonMark"} else "GFM"
    if media == "text/plain":
        return "text", ""
    return "rst", ""


def render_description(description: str, content_type: str | None) -> tuple[str, str]:
    """(sanitized HTML, kind). reStructuredText that does not render (syntax errors, raw directives) falls back to
    plain text, as on PyPI. Blocking CPU work: run it in an executor."""
    # Imported here, in the rendering thread, on first use: the renderers (docutils, pygments, comrak, nh3) are
    # about 9 MB of a process's memory, which a server that never shows a README page should not carry.
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    kind, variant = content_kind(content_type)
    html: str | None
    if kind == "markdown":
        html = readme_renderer.markdown.render(description, variant=variant)
    elif kind == "rst":
        html = readme_renderer.rst.render(description, stream=StringIO())  # warnings go nowhere, not stderr
    else:
        html = None
    if html is None:
        kind, html = "text", readme_renderer.txt.render(description)
    return accessible(html or ""), kind


# Markup the renderers emit that assistive technology stumbles over: comrak's empty heading self-links (a link with
# no text) and `<pre lang="python">` (lang must be a human language). Both only remove markup from sanitized HTML,
# so they cannot add anything a sanitizer would have refused.
_EMPTY_ANCHOR = re.compile(r'<a href="#[^"<>]*" rel="nofollow"></a>')
_PRE_LANG = re.compile(r'<pre lang="[^"<>]*"')


def accessible(html: str) -> str:
    """Sanitized README markup without the parts that fail accessibility checks (see above)."""
    return _PRE_LANG.sub("<pre", _EMPTY_ANCHOR.sub("", html))


def safe_link(label: str, url: str) -> Link:
    """A metadata URL becomes a link only when it is http(s); anything else stays visible text."""
    url = url.strip()
    return Link(label, url, url if url.lower().startswith(_SAFE_SCHEMES) else None)


def build_readme(metadata: bytes) -> Readme:
    """Parse core metadata (METADATA / PKG-INFO) and render its description. Blocking: run it in an executor."""
    raw, _unparsed = parse_email(metadata)
    description = raw.get("description")
    html: str | None = None
    kind = "none"
    if description and description.strip() and description.strip() != "UNKNOWN":
        if len(description) > MAX_DESCRIPTION_CHARS:
            kind = "too big"
        else:
            html, kind = render_description(description, raw.get("description_content_type"))
    links = [safe_link(label, url) for label, url in (raw.get("project_urls") or {}).items()]
    if raw.get("home_page"):
        links.insert(0, safe_link("Homepage", raw["home_page"]))
    return Readme(
        html=html,
        kind=kind,
        summary=raw.get("summary") or None,
        links=tuple(links),
        license=raw.get("license_expression") or _short(raw.get("license")),
        requires_python=raw.get("requires_python") or None,
        requires_dist=tuple(raw.get("requires_dist") or ()),
    )


def _short(license_text: str | None) -> str | None:
    """A license field holding the whole license text is shown by its first line only."""
    if not license_text or license_text == "UNKNOWN":
        return None
    first = license_text.strip().splitlines()[0]
    return first[:200]


class ReadmeCache:
    """Rendered READMEs by the sha256 of their metadata bytes, rendered once however many viewers ask at once."""

    def __init__(self, executor: Executor | None, entries: int = CACHE_ENTRIES) -> None:
        self._executor = executor
        self._entries = entries
        self._done: OrderedDict[str, Readme] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Readme]] = {}

    async def get(self, metadata: bytes) -> Readme:
        key = hashlib.sha256(metadata).hexdigest()
        done = self._done.get(key)
        if done is not None:
            self._done.move_to_end(key)
            return done
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self._executor, build_readme, metadata)
            self._pending[key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        readme = await asyncio.shield(pending)
        self._done[key] = readme
        while len(self._done) > self._entries:
            self._done.popitem(last=False)
        return readme
