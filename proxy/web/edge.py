"""The edge around every handler: ProxyError types mapped to HTTP statuses in exactly one place (the message goes
in the reason and the body), each answer counted by route, and the read check when reads need credentials."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.access.model import ROOT
from proxy.auth import Action
from proxy.config import Config
from proxy.errors import (
    AuthenticationRequired,
    BadRequest,
    ConfigError,
    FileExists,
    FileNotFound,
    Forbidden,
    IntegrityError,
    InvalidFilename,
    InvalidProjectName,
    InvalidUpload,
    ProjectNotFound,
    ProxyError,
    StorageFull,
    StorageUnavailable,
    TooManyRequests,
    UploadTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from proxy.keys import AUTH, CONFIG, METRICS

log = logging.getLogger(__name__)

# Most specific first: the first isinstance match decides.
_STATUS: tuple[tuple[type[ProxyError], int], ...] = (
    (AuthenticationRequired, 401),
    (Forbidden, 403),
    (TooManyRequests, 429),
    (UploadTooLarge, 413),
    (StorageFull, 507),
    (StorageUnavailable, 503),
    (FileExists, 400),  # PyPI's status; twine --skip-existing matches the "File already exists" reason
    (InvalidUpload, 400),
    (BadRequest, 400),
    (InvalidProjectName, 400),
    (InvalidFilename, 400),
    (ProjectNotFound, 404),
    (FileNotFound, 404),
    (UpstreamTimeout, 504),
    (IntegrityError, 502),
    (UpstreamUnavailable, 502),
    (ConfigError, 500),
)


CLIENT_CLOSED = 499  # nginx's convention for "the client closed the connection", seen only in the access log


def status_for(exc: ProxyError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def reason_phrase(message: str) -> str:
    """One line of ASCII: twine and pip print the reason phrase (warehouse does the same). Not latin-1: aiohttp
    writes the status line as UTF-8 and clients read it as latin-1, so anything past ASCII arrives garbled;
    escaped (\\xf9) it stays readable, and the body carries the message as UTF-8."""
    line = (message.splitlines() or [""])[0][:300]
    return line.encode("ascii", "backslashreplace").decode("ascii")


def error_response(status: int, message: str) -> web.Response:
    return web.Response(status=status, reason=reason_phrase(message), text=message + "\n")


def add_routes(app: web.Application, routes: Iterable[web.AbstractRouteDef]) -> None:
    """Register `routes` with the edge around each handler: what a middleware would do, without aiohttp's
    middleware chain (a partial, a current-app context and a wrapper call on every request: about 6 µs of a warm
    page's 70). Every route of the app is added this way, then add_unmatched() last."""
    for route in routes:
        if not isinstance(route, web.RouteDef):
            raise TypeError(f"{route!r}: only handler routes get the edge")
        _add(app, route, None)


def add_unmatched(app: web.Application) -> None:
    """Answer what no route matches (404, or 405 with Allow) through the edge too: counted as "unmatched", and
    under [auth] read = true answered 401 without credentials, as every other read. Registered last."""
    _add(app, web.route("*", "/{_unmatched:.*}", _unmatched, name=UNMATCHED), UNMATCHED)


def _add(app: web.Application, route: web.RouteDef, label: str | None) -> None:
    """`label`: the metrics' route label (None: the route's pattern, known once registered)."""
    labels: list[str] = [] if label is None else [label]
    edged = _edge(route.handler, labels, _read_check(app[CONFIG], route), app[METRICS].request_done)
    registered = web.RouteDef(route.method, route.path, edged, route.kwargs).register(app.router)
    resource = registered[0].resource
    if not labels:
        labels.append(resource.canonical if resource is not None else route.path)


UNMATCHED = "unmatched"
Check = Callable[[web.Request], Awaitable[None]]
Count = Callable[[str, str, int, float], None]  # Metrics.request_done of the app (made before its routes)


def _edge(handler: Handler, labels: list[str], check: Check | None, count: Count) -> Handler:
    """Every request of one route: the read check (when reads need credentials), ProxyErrors become their status
    (the one place errors are mapped), and the answer is counted with the route pattern and its latency
    (bounded labels: never the raw path)."""

    async def edge(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        status = 500
        try:
            try:
                if check is not None:
                    await check(request)
                response = await handler(request)
            except ProxyError as exc:
                response = _error_answer(request, exc)
            except ConnectionResetError:  # aiohttp's ClientConnectionResetError too
                # The client went away (mid-upload, mid-download): normal (poetry does it), nothing to answer.
                # Returned, not raised, so aiohttp does not log it as a server error; writing it fails quietly.
                log.info("%s %s: the client closed the connection", request.method, request.path)
                response = web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            count(labels[0], request.method, status, time.monotonic() - started)

    return edge


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """What aiohttp's router answers for a path no route has: 405 when routes have it for other methods."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name != UNMATCHED:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _error_answer(request: web.Request, exc: ProxyError) -> web.Response:
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.path, status, exc)
    response = error_response(status, str(exc))
    if status == 401:  # pip and uv only retry with credentials (keyring, netrc) after a 401
        response.headers["WWW-Authenticate"] = 'Basic realm="shadowpi"'
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _read_check(config: Config, route: web.RouteDef) -> Check | None:
    """Under [auth] read = true every read needs credentials: pages, files, /ready, /metrics, the landing page,
    even a 404. Open to anonymous: /health (liveness probes carry no credentials), /metrics when it has its own
    bearer token ([metrics] token, checked by its handler), the web interface (it also accepts its session cookie,
    and answers with a sign-in page) and the peer endpoint (replicas sign their requests, proxy/web/peers.py).
    Writes check credentials in their handlers."""
    if not config.auth.read or route.method not in {"GET", "HEAD", "*"}:
        return None
    name = route.kwargs.get("name") or ""
    if route.path == "/health" or (route.path == "/metrics" and config.metrics.token is not None):
        return None
    if name.startswith("ui.") or name == "peer-fill":
        return None
    return _read_auth


async def _read_auth(request: web.Request) -> None:
    if request.method not in {"GET", "HEAD"}:
        return
    identity = await request.app[AUTH].authorize(Action.READ, request.headers.get("Authorization"), request.remote)
    token = identity.token if identity is not None else None
    # A token scoped to named indexes does not read root's pages and files (named indexes check their own).
    if token is not None and token.indexes and ROOT not in token.indexes and "index" not in request.match_info:
        allowed = ", ".join(sorted(token.indexes))
        raise Forbidden(f"This API token is not valid for index {ROOT!r} (only {allowed}).")
