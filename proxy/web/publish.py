"""Publishing: twine's and uv's legacy upload (POST / and /legacy/ for root, /index/<name>/ and
/index/<name>/legacy/ for a named index). The management API is in manage.py."""

from __future__ import annotations

import logging

from aiohttp import web

from proxy.access import Act, Member
from proxy.auth import Action, Identity
from proxy.errors import AuthenticationRequired, Forbidden, InvalidUpload, UploadTooLarge
from proxy.form import FormLimits, open_form, size_text
from proxy.keys import AUTH, CONFIG, PUBLISHER
from proxy.simple.names import NormalizedName
from proxy.web.access import actor, allow, index_of

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
@routes.post("/index/{index}/")
@routes.post("/index/{index}/legacy/")
@routes.post("/index/{index}/legacy")
async def publish(request: web.Request) -> web.Response:
    index = index_of(request)
    identity = await require(request, Action.UPLOAD)
    limits = FormLimits.of(request.app[CONFIG].upload)
    if request.content_length is not None and request.content_length > limits.request_size():
        raise UploadTooLarge(f"File too large. Limit is {size_text(limits.max_file_size)}.")
    if not request.content_type.startswith("multipart/form-data"):
        raise InvalidUpload("Uploads must be multipart/form-data, as twine and uv publish send them.")

    def gate(project: NormalizedName, exists: bool, members: tuple[Member, ...]) -> None:
        allow(request, Act.UPLOAD, identity, index, project=project, exists=exists, members=members)

    result = await request.app[PUBLISHER].receive(
        await open_form(request), identity.user, index=index.name, gate=gate, actor=actor(request, identity))
    if result.created:
        log.info("%s uploaded %s to index %s", identity.user, result.filename, index.name)
    return web.Response(text=f"OK: {result.filename}\n")
