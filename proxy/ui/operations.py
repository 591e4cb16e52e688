"""The operations page for admins: cache, downloads in flight, upstream health, recent errors."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from proxy.config import mask_url
from proxy.errors import Forbidden
from proxy.keys import CONFIG, FILES, JANITOR, PAGES, RENDERED, UPSTREAM_CHECK, UPSTREAM_STATUS
from proxy.ui.context import UI, Viewer
from proxy.ui.recent import age
from proxy.ui.respond import render, sign_in_required, ui_page

routes = web.RouteTableDef()
ADMINS_ONLY = "The operations page is for admins ([ui] admins in the configuration)."


@dataclass(frozen=True, slots=True)
class Contact:
    kind: str
    result: str
    ago: str


@routes.get("/operations", name="ui.operations")
@ui_page()
async def operations(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    if viewer.identity is None:
        return sign_in_required(request, viewer)
    if not viewer.admin:
        raise Forbidden(ADMINS_ONLY)
    return render(request, viewer, "operations.html", _status(request.app))


def _status(app: web.Application) -> dict[str, object]:
    config = app[CONFIG]
    usage = app[JANITOR].usage
    offline = config.upstream.offline
    check: dict[str, object] = {}
    if not offline:
        checker = app[UPSTREAM_CHECK]
        checker.refresh_if_stale()  # in the background, as /ready does: this page shows the previous check
        check = checker.report()
    now = time.time()
    contacts = [Contact(kind, result, age(when, now)) for kind, (result, when) in sorted(app[UPSTREAM_STATUS].items())]
    pages, page_bytes = app[PAGES].memory_usage
    renders, render_bytes = app[RENDERED].usage
    return {
        "usage": usage, "max_size": config.cache.max_size or None, "in_flight": app[FILES].in_flight,
        "offline": offline, "upstream_url": mask_url(config.upstream.url), "check": check, "contacts": contacts,
        "errors": app[UI].errors.entries(), "now": now, "memory": {
            "pages": pages, "page_bytes": page_bytes, "renders": renders, "render_bytes": render_bytes},
    }  # fmt: skip
