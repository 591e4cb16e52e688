"""A cached upstream page as every metadata backend stores it: one row of status, PEP 691 JSON body (absolute
upstream URLs), validators and fetch time. Big pages are serialized and parsed in a thread: PyPI's biggest take
seconds of CPU, which must never stall the event loop (or, before a write, hold a write transaction open)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from proxy.backends.records import StoredPage
from proxy.simple.json import parse_project_json, render_project_json
from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName

__all__ = ["PageRow", "page_row", "stored_page"]

# Pages bigger than this are parsed and serialized in a thread.
INLINE_BYTES, INLINE_FILES = 64 * 1024, 500

PageRow = tuple[int, str | None, str | None, str | None, float]  # status, body, etag, last_modified, fetched_at


async def page_row(stored: StoredPage) -> PageRow:
    """The row values of a stored page (status 200 with a body, or 404 for a remembered absence)."""
    body = await _serialize(stored.page) if stored.page is not None else None
    return (200 if stored.page else 404, body, stored.etag, stored.last_modified, stored.fetched_at)


async def stored_page(name: NormalizedName, row: Iterable[Any]) -> StoredPage:
    """The StoredPage of a row, as a driver returns it (the inverse of page_row)."""
    status, body, etag, last_modified, fetched_at = row
    page = await _parse(body, name) if status == 200 and body else None
    return StoredPage(page, etag, last_modified, float(fetched_at))


async def _parse(body: str, name: NormalizedName) -> ProjectPage:
    if len(body) <= INLINE_BYTES:
        return parse_project_json(body, "", name)
    return await asyncio.to_thread(parse_project_json, body, "", name)


async def _serialize(page: ProjectPage) -> str:
    if len(page.files) <= INLINE_FILES:
        return _stored_json(page)
    return await asyncio.to_thread(_stored_json, page)


def _stored_json(page: ProjectPage) -> str:
    return render_project_json(page, lambda f: f.url)  # absolute upstream URLs: where shadowpi fetches from
