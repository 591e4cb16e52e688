"""Operational endpoints: /health (liveness), /ready (readiness and status) and /metrics (GET / is proxy/ui)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable

from aiohttp import web

from proxy import __version__
from proxy.errors import StorageFull
from proxy.keys import BACKENDS, CONFIG, FILES, JANITOR, METRICS, UPSTREAM_CHECK, UPSTREAM_STATUS
from proxy.metrics import CONTENT_TYPE

routes = web.RouteTableDef()
metrics_routes = web.RouteTableDef()


@routes.get("/health", name="health")
async def health(_request: web.Request) -> web.Response:
    """Liveness: the process serves requests. Cheap by design (no database or upstream traffic)."""
    return web.json_response({"status": "ok", "version": __version__})


@routes.get("/ready", name="ready")
async def ready(request: web.Request) -> web.Response:
    """Readiness: database answers and the data dir is writable (503 otherwise), plus informational status.

    Upstream trouble does not make shadowpi unready: it keeps serving from the cache. A wrong upstream.url is
    reported under upstream.check (state "wrong", with what is wrong), as is an unreachable upstream.
    """
    app = request.app
    checks = {"database": await _check(app[BACKENDS].meta.ping()), "data_dir": await _check(_data_dir_ready(app))}
    usage = app[JANITOR].usage
    body = {
        "status": "ok" if all(v == "ok" for v in checks.values()) else "unavailable",
        "version": __version__,
        "checks": checks,
        "upstream": _upstream_status(app),
        "cache": {"bytes": usage.bytes, "files": usage.files, "pinned_bytes": usage.pinned_bytes,
                  "max_size": app[CONFIG].cache.max_size or None},
        "downloads_in_flight": app[FILES].in_flight,
    }
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


async def _data_dir_ready(app: web.Application) -> None:
    """The data dir takes a write, and has room for the largest upload: a disk with a few kilobytes left still
    passes a small probe, but turns every upload away (507)."""
    backends, needed = app[BACKENDS], app[CONFIG].upload.max_size
    spools = backends.spools
    await spools.probe()
    await backends.blobs.probe()
    free = await spools.free_bytes()
    if free < needed:
        raise StorageFull(
            f"only {free} bytes are free in the data dir, less than one upload may need (upload.max_size = {needed})"
        )


async def _check(probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, timeout=5)
    except Exception as exc:  # a readiness probe reports failures, it does not raise them
        return f"failed: {type(exc).__name__}: {exc}"
    return "ok"


def _upstream_status(app: web.Application) -> dict[str, object]:
    if app[CONFIG].upstream.offline:
        return {"mode": "offline"}
    checker = app[UPSTREAM_CHECK]
    checker.refresh_if_stale()  # in the background: this answer reports the previous check
    status: dict[str, object] = {"mode": "online", "check": checker.report()}
    for kind, (result, when) in app[UPSTREAM_STATUS].items():
        status[f"last_{kind}"] = {"result": result, "seconds_ago": round(time.time() - when, 1)}
    return status


@metrics_routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    token = request.app[CONFIG].metrics.token
    if token is not None:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(sent, token.encode()):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="shadowpi metrics"'})
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})
