"""Publishing: twine's legacy upload (POST / and /legacy/) and the management API (yank, unyank, delete)."""

from __future__ import annotations

import logging

from aiohttp import web

from proxy.auth import Action, Identity
from proxy.errors import AuthenticationRequired, BadRequest, Forbidden, InvalidUpload, UploadTooLarge
from proxy.form import FormLimits, open_form, size_text
from proxy.keys import AUTH, CONFIG, PRIVATE, UPLOADER
from proxy.private import Selection
from proxy.simple.names import parse_project_name

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def require(request: web.Request, action: Action) -> Identity:
    """The caller's identity, if allowed to perform `action`.

    Raises Forbidden (403): uploads and management answer 403 like PyPI; 401 is for reads (pip prompts on it).
    """
    auth = request.app[AUTH]
    try:
        identity = await auth.identify(request.headers.get("Authorization"), request.remote)
        auth.check(action, identity)
    except AuthenticationRequired as exc:
        raise Forbidden(str(exc)) from None
    assert identity is not None  # check() refuses anonymous uploads and deletes
    return identity


# twine aborts on redirects, so every path clients are told to use answers POST itself.
@routes.post("/")
@routes.post("/legacy/")
@routes.post("/legacy")
@routes.post("/simple/")
async def upload(request: web.Request) -> web.Response:
    identity = await require(request, Action.UPLOAD)
    limits = FormLimits.of(request.app[CONFIG].upload)
    if request.content_length is not None and request.content_length > limits.request_size():
        raise UploadTooLarge(f"File too large. Limit is {size_text(limits.max_file_size)}.")
    if not request.content_type.startswith("multipart/form-data"):
        raise InvalidUpload("Uploads must be multipart/form-data, as twine and uv publish send them.")
    result = await request.app[UPLOADER].receive(await open_form(request), identity.user)
    if result.created:
        log.info("%s uploaded %s", identity.user, result.filename)
    return web.Response(text=f"OK: {result.filename}\n")


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
