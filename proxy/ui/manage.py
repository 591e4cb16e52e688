"""Managing a private project from its page: yank / unyank with a reason, delete after a confirmation.

The same services and permission rule as the HTTP API (proxy/web/manage.py); forms carry a CSRF token.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from proxy.auth import Identity
from proxy.errors import BadRequest, Forbidden
from proxy.keys import ACCESS, BACKENDS, PRIVATE
from proxy.private import Selection
from proxy.simple.names import NormalizedName, parse_project_name
from proxy.ui.access import actor, audit, manage_decision
from proxy.ui.context import Viewer
from proxy.ui.indexes import shown
from proxy.ui.respond import checked_form, field, render, see_other, sign_in_required, ui_page

routes = web.RouteTableDef()
NOT_ALLOWED = "You may not manage {name}. Sign in as one of its maintainers."
MAX_REASON = 1000


async def _allowed(request: web.Request, viewer: Viewer, name: NormalizedName) -> Identity:
    """The viewer's identity when they may manage `name` in the URL's index (its own files, as the API's
    /api/indexes/<name>/projects/...); raises Forbidden otherwise (naming what a token's scope allows)."""
    identity, index = viewer.identity, shown(request).index
    members = tuple(await request.app[BACKENDS].meta.project_members(index.name, name))
    if identity is None:
        raise Forbidden(NOT_ALLOWED.format(name=name))
    decision = manage_decision(identity, name, access=request.app[ACCESS].current, index=index, members=members)
    if not decision.allowed:
        raise Forbidden(decision.reason if identity.token is not None else NOT_ALLOWED.format(name=name))
    return identity


async def _select(request: web.Request, name: NormalizedName, target: str) -> Selection:
    if not target:
        raise BadRequest("Say which version or file: the form's target is empty.")
    # ProjectNotFound / FileNotFound: 404 pages
    return await request.app[PRIVATE].select(name, target, shown(request).name)


def _back(viewer: Viewer, name: NormalizedName, done: str, target: str) -> web.Response:
    return see_other(viewer.urls.project(name) + "?" + urlencode({"done": done, "target": target}))


@routes.post("/project/{name}/yank", name="ui.yank")
@routes.post("/index/{index}/project/{name}/yank", name="ui.index_yank")
@ui_page()
async def yank(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    name = parse_project_name(request.match_info["name"])
    form = await checked_form(request, viewer)
    identity = await _allowed(request, viewer, name)
    target, reason = field(form, "target"), field(form, "reason", MAX_REASON)
    selection = await _select(request, name, target)
    await request.app[PRIVATE].yank(selection, reason, actor(identity, request.remote))
    audit(identity, "yanked", _files(selection), reason)
    return _back(viewer, name, "yanked", target)


@routes.post("/project/{name}/unyank", name="ui.unyank")
@routes.post("/index/{index}/project/{name}/unyank", name="ui.index_unyank")
@ui_page()
async def unyank(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    name = parse_project_name(request.match_info["name"])
    form = await checked_form(request, viewer)
    identity = await _allowed(request, viewer, name)
    target = field(form, "target")
    selection = await _select(request, name, target)
    await request.app[PRIVATE].unyank(selection, actor(identity, request.remote))
    audit(identity, "unyanked", _files(selection))
    return _back(viewer, name, "unyanked", target)


@routes.get("/project/{name}/delete", name="ui.delete_confirm")
@routes.get("/index/{index}/project/{name}/delete", name="ui.index_delete_confirm")
@ui_page()
async def confirm_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    name = parse_project_name(request.match_info["name"])
    if viewer.identity is None:
        return sign_in_required(request, viewer)
    await _allowed(request, viewer, name)
    target = request.query.get("target", "")[:500]
    selection = await _select(request, name, target)
    context = {"name": name, "target": target, "files": selection.files, "error": None}
    return render(request, viewer, "delete.html", context, forms=True)


@routes.post("/project/{name}/delete", name="ui.delete")
@routes.post("/index/{index}/project/{name}/delete", name="ui.index_delete")
@ui_page()
async def delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Deletes only when the form's `confirm` repeats the target: a stray click cannot delete anything."""
    name = parse_project_name(request.match_info["name"])
    form = await checked_form(request, viewer)
    identity = await _allowed(request, viewer, name)
    target = field(form, "target")
    selection = await _select(request, name, target)
    if field(form, "confirm") != target:
        context = {"name": name, "target": target, "files": selection.files,
                   "error": f"Type {target} exactly to confirm; nothing was deleted."}
        return render(request, viewer, "delete.html", context, status=400, forms=True)
    await request.app[PRIVATE].delete(selection, actor(identity, request.remote))
    audit(identity, "deleted", _files(selection))
    return _back(viewer, name, "deleted", target)


def _files(selection: Selection) -> str:
    return ", ".join(f.filename for f in selection.files)
