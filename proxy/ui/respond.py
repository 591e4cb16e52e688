"""How every UI response is made: the page wrapper (viewer, read access, HTML errors), security and cache headers,
CSRF checks. Only UI routes pay for any of it: the simple API and file routes never pass through here."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from proxy.errors import AuthenticationRequired, BadRequest, Forbidden, ProxyError, TooManyRequests
from proxy.keys import CONFIG
from proxy.ui.context import UI, UiServices, Viewer, identify, viewer_for
from proxy.ui.indexes import check_read
from proxy.ui.session import CSRF_COOKIE, CSRF_FIELD
from proxy.web.edge import reason_phrase, status_for

log = logging.getLogger(__name__)
UiHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]

# No inline script or style anywhere (the copy buttons are a same-origin file); images from this site only, so a
# README cannot make every viewer's browser call a tracking pixel (or an internal host) either.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CSRF_FAILED = (
    "This form has expired or did not come from this site (CSRF check failed). Reload the page, then try again."
)


def ui_page(*, public: bool = False) -> Callable[[UiHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wrap a UI handler: resolve the viewer, enforce [auth] read (unless `public`: the sign-in page), turn
    ProxyErrors into HTML error pages, and add the security headers to every response it gives, in one place."""

    def decorate(handler: UiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            ui = request.app[UI]
            viewer = viewer_for(request, ui, None, session=False)
            try:
                identity, session = await identify(request, ui)
                viewer = viewer_for(request, ui, identity, session)
                response, restricted = await _serve(request, viewer, handler, public=public)
            except ProxyError as exc:
                response, restricted = error_page(request, viewer, exc), False
            return secured(response, personal=viewer.identity is not None or restricted)

        return wrapped

    return decorate


async def _serve(
    request: web.Request, viewer: Viewer, handler: UiHandler, *, public: bool
) -> tuple[web.StreamResponse, bool]:
    """The handler's response and whether its page is restricted (no cache may share it), or the sign-in page for an
    anonymous viewer who may not read: under [auth] read = true, or on a named index they may not read."""
    if not public and viewer.identity is None and request.app[CONFIG].auth.read:
        return sign_in_required(request, viewer), True
    try:
        restricted = check_read(request, viewer.identity)  # a named index: the simple API's read rule
    except AuthenticationRequired:  # anonymous: the sign-in page, and never a word of the index
        return sign_in_required(request, viewer), True
    return await handler(request, viewer), restricted


def render(
    request: web.Request, viewer: Viewer, template: str, context: Mapping[str, Any], *, status: int = 200,
    forms: bool = False,
) -> web.Response:
    """A page from `template`. `forms`: the page has POST forms for anyone (the CSRF seed cookie is needed);
    signed-in viewers always get it (every page has the sign-out form)."""
    ui = request.app[UI]
    needs_seed = forms or viewer.identity is not None
    token = ui.signer.csrf_token(viewer.csrf_seed, viewer.user) if needs_seed else ""
    response = aiohttp_jinja2.render_template(
        template, request, {"v": viewer, "u": viewer.urls, "csrf": token, "csrf_field": CSRF_FIELD,
                            "assets": ui.assets, **context}, status=status)
    if needs_seed:  # the page holds a token for this browser and viewer: no cache may keep it
        response.headers["Cache-Control"] = "private, no-store"
    if needs_seed and viewer.csrf_is_new:
        response.set_cookie(CSRF_COOKIE, viewer.csrf_seed, httponly=True, samesite="Strict", secure=viewer.secure,
                            path="/")
    return response


def secure(response: web.StreamResponse, *, personal: bool) -> None:
    """Security headers on every UI response, and cache headers: nothing personal (a signed-in viewer, a cookie
    being set, a CSRF token in a form, an error) is kept by any cache; other pages are revalidated."""
    response.headers.update(SECURITY_HEADERS)
    if "Cache-Control" not in response.headers:
        personal = personal or bool(response.cookies) or response.status >= 400
        response.headers["Cache-Control"] = "private, no-store" if personal else "no-cache"
    response.headers["Vary"] = "Cookie, Authorization"


def secured(response: web.StreamResponse, *, personal: bool) -> web.StreamResponse:
    secure(response, personal=personal)
    return response


def see_other(location: str) -> web.Response:
    """303 after a form: the browser GETs `location` (a relative URL), so a reload never posts again."""
    return web.Response(status=303, headers={"Location": location})


def error_page(request: web.Request, viewer: Viewer, exc: ProxyError) -> web.Response:
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.path, status, exc)
    response = render(request, viewer, "error.html", {"status": status, "message": str(exc)}, status=status)
    response.set_status(status, reason_phrase(str(exc)))
    if isinstance(exc, AuthenticationRequired):
        response.headers["WWW-Authenticate"] = 'Basic realm="shadowpi"'
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def sign_in_required(request: web.Request, viewer: Viewer) -> web.Response:
    """Under [auth] read = true: 401 with Basic (browsers prompt, pip and curl behave as with the API) and the
    sign-in form as the body (shown when the prompt is cancelled), for a session cookie instead."""
    response = render(request, viewer, "login.html", {"next": viewer.path, "error": None}, status=401, forms=True)
    response.headers["WWW-Authenticate"] = 'Basic realm="shadowpi"'
    return response


async def checked_form(request: web.Request, viewer: Viewer) -> MultiDictProxy[str | bytes | Any]:
    """The posted form, once its CSRF token matches this browser's seed cookie and viewer. Raises Forbidden, and
    BadRequest for a body that is not a readable form (bytes that are not UTF-8, a broken multipart envelope)."""
    try:
        form = await request.post()
    except ValueError as exc:  # UnicodeDecodeError included (found by the fuzz suite: it was a 500)
        raise BadRequest(f"The form could not be read: {type(exc).__name__}.") from None
    token = form.get(CSRF_FIELD)
    ui: UiServices = request.app[UI]
    seed = request.cookies.get(CSRF_COOKIE)
    if not isinstance(token, str) or not ui.signer.csrf_valid(seed, viewer.user, token):
        raise Forbidden(CSRF_FAILED)
    return form


def field(form: Mapping[str, Any], name: str, limit: int = 500) -> str:
    """A text field of a posted form ("" when absent or not text), at most `limit` characters."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""
