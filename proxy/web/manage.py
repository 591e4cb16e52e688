"""Managing private files over HTTP: yank, unyank and delete (`/api/projects/<project>/<version-or-file>`)."""

from __future__ import annotations

import logging

from aiohttp import web

from proxy.auth import Action, Identity
from proxy.errors import BadRequest
from proxy.keys import PRIVATE
from proxy.private import Selection
from proxy.simple.names import parse_project_name
from proxy.web.publish import require

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _selected(request: web.Request) -> tuple[Identity, Selection]:
    """The authorized caller and the private files the URL names (a filename or a version)."""
    identity = await require(request, Action.DELETE)
    project = parse_project_name(request.match_info["project"])
    return identity, await request.app[PRIVATE].select(project, request.match_info["target"])


def _changed(identity: Identity, verb: str, selection: Selection) -> list[str]:
    filenames = [f.filename for f in selection.files]
    log.info("%s %s %s", identity.user, verb, ", ".join(filenames))
    return filenames


@routes.post("/api/projects/{project}/{target}/yank")
async def yank(request: web.Request) -> web.Response:
    identity, selection = await _selected(request)
    changed = await request.app[PRIVATE].yank(selection, await _yank_reason(request))
    return web.json_response({"yanked": _changed(identity, "yanked", selection), "changed": changed})


@routes.post("/api/projects/{project}/{target}/unyank")
async def unyank(request: web.Request) -> web.Response:
    identity, selection = await _selected(request)
    changed = await request.app[PRIVATE].unyank(selection)
    return web.json_response({"unyanked": _changed(identity, "unyanked", selection), "changed": changed})


@routes.delete("/api/projects/{project}/{target}")
async def delete(request: web.Request) -> web.Response:
    identity, selection = await _selected(request)
    await request.app[PRIVATE].delete(selection)
    return web.json_response({"deleted": _changed(identity, "deleted", selection)})


async def _yank_reason(request: web.Request) -> str:
    """PEP 592's reason from an optional JSON body {"reason": "..."}; empty when absent."""
    if not (request.can_read_body and request.content_type == "application/json"):
        return ""
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest('The body is not valid JSON; send {"reason": "..."} or nothing.') from None
    return str(body.get("reason", "")) if isinstance(body, dict) else ""
