"""Maps ProxyError types to HTTP statuses in exactly one place; the message goes in the reason and the body."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.auth import Action
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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProxyError as exc:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.path, status, exc)
        response = error_response(status, str(exc))
        if status == 401:  # pip and uv only retry with credentials (keyring, netrc) after a 401
            response.headers["WWW-Authenticate"] = 'Basic realm="shadowpi"'
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError too
        # The client went away (mid-upload, mid-download): normal (poetry does it), nothing to answer. Returned,
        # not raised, so aiohttp does not log it as a server error; writing this response fails quietly.
        log.info("%s %s: the client closed the connection", request.method, request.path)
        return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")


@web.middleware
async def read_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under [auth] read = true, every read needs credentials: pages, files, /ready, /metrics, the landing page,
    even a 404. Only /health stays open (liveness probes carry no credentials), /metrics when it has its
    own bearer token ([metrics] token, checked by its handler), and the peer endpoint (replicas sign their
    requests, proxy/web/peers.py). Writes check credentials in their handlers."""
    if request.method in {"GET", "HEAD"} and not _open_to_anonymous(request):
        await request.app[AUTH].authorize(Action.READ, request.headers.get("Authorization"), request.remote)
    return await handler(request)


def _open_to_anonymous(request: web.Request) -> bool:
    path = request.path
    if path == "/health" or (path == "/metrics" and request.app[CONFIG].metrics.token is not None):
        return True
    # The web interface checks reads itself: it also accepts its session cookie, and answers with a sign-in page.
    # Replicas' peer requests carry a token of their own, which the handler checks.
    name = request.match_info.route.name
    return name is not None and (name.startswith("ui.") or name == "peer-fill")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests and latency per route pattern (bounded labels: never the raw path)."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else "unmatched"
        request.app[METRICS].request_done(pattern, request.method, status, time.monotonic() - started)
