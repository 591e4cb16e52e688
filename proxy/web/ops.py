"""Operational endpoints: /health (liveness) and / (a short human-readable landing page)."""

from __future__ import annotations

from aiohttp import web

from proxy import __version__

routes = web.RouteTableDef()


@routes.get("/health", name="health")
async def health(_request: web.Request) -> web.Response:
    """Liveness: the process serves requests. Cheap by design (no database or upstream traffic)."""
    return web.json_response({"status": "ok", "version": __version__})


@routes.get("/", name="root")
async def root(_request: web.Request) -> web.Response:
    return web.Response(
        text=f"shadowpi {__version__}: simple index at /simple/ (pip: --index-url http://HOST:PORT/simple/)\n"
    )
