"""Maps ProxyError types to HTTP statuses in exactly one place; the message goes in the reason and the body."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.errors import (
    ConfigError,
    FileNotFound,
    IntegrityError,
    InvalidFilename,
    InvalidProjectName,
    ProjectNotFound,
    ProxyError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

# Most specific first: the first isinstance match decides.
_STATUS: tuple[tuple[type[ProxyError], int], ...] = (
    (InvalidProjectName, 400),
    (InvalidFilename, 400),
    (ProjectNotFound, 404),
    (FileNotFound, 404),
    (UpstreamTimeout, 504),
    (IntegrityError, 502),
    (UpstreamUnavailable, 502),
    (ConfigError, 500),
)


def status_for(exc: ProxyError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def reason_phrase(message: str) -> str:
    """One line, latin-1-safe: twine and pip print the reason phrase (warehouse does the same)."""
    line = (message.splitlines() or [""])[0][:300]
    return line.encode("latin-1", "replace").decode("latin-1")


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
        return error_response(status, str(exc))
