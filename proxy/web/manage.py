"""Managing private files over HTTP: yank, unyank and delete (`/api/projects/<project>/<version-or-file>` for the
root index, `/api/indexes/<name>/projects/<project>/<version-or-file>` for any index). Owners, maintainers and
index admins only (root without an [indexes.root] table: any user, as before indexes)."""

from __future__ import annotations

import logging

from aiohttp import web

from proxy.access import Act
from proxy.audit import Actor
from proxy.errors import BadRequest
from proxy.keys import BACKENDS, PRIVATE
from proxy.private import Selection
from proxy.simple.names import parse_project_name
from proxy.web.access import actor, allow, index_of, writer

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _selected(request: web.Request) -> tuple[Actor, Selection]:
    """The authorized caller and the private files the URL names (a filename or a version)."""
    index = index_of(request)
    identity = await writer(request)
    project = parse_project_name(request.match_info["project"])
    members = tuple(await request.app[BACKENDS].meta.project_members(index.name, project))
    allow(request, Act.MANAGE, identity, index, project=project, members=members)
    return actor(request, identity), await request.app[PRIVATE].select(project, request.match_info["target"],
                                                                        index.name)


def _changed(who: Actor, verb: str, selection: Selection) -> list[str]:
    filenames = selection.filenames
    log.info("%s %s %s", who.user, verb, ", ".join(filenames))
    return filenames


@routes.post("/api/projects/{project}/{target}/yank")
@routes.post("/api/indexes/{index}/projects/{project}/{target}/yank")
async def yank(request: web.Request) -> web.Response:
    who, selection = await _selected(request)
    changed = await request.app[PRIVATE].yank(selection, await _yank_reason(request), who)
    return web.json_response({"yanked": _changed(who, "yanked", selection), "changed": changed})


@routes.post("/api/projects/{project}/{target}/unyank")
@routes.post("/api/indexes/{index}/projects/{project}/{target}/unyank")
async def unyank(request: web.Request) -> web.Response:
    who, selection = await _selected(request)
    changed = await request.app[PRIVATE].unyank(selection, who)
    return web.json_response({"unyanked": _changed(who, "unyanked", selection), "changed": changed})


@routes.delete("/api/projects/{project}/{target}")
@routes.delete("/api/indexes/{index}/projects/{project}/{target}")
async def delete(request: web.Request) -> web.Response:
    who, selection = await _selected(request)
    await request.app[PRIVATE].delete(selection, who)
    return web.json_response({"deleted": _changed(who, "deleted", selection)})


async def _yank_reason(request: web.Request) -> str:
    """PEP 592's reason from an optional JSON body {"reason": "..."}; empty when absent."""
    if not (request.can_read_body and request.content_type == "application/json"):
        return ""
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest('The body is not valid JSON; send {"reason": "..."} or nothing.') from None
    return str(body.get("reason", "")) if isinstance(body, dict) else ""
