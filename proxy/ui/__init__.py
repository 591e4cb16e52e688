"""The web interface: server-rendered pages (Jinja2, autoescaped) over the same services the API uses.

`setup(app)` registers the routes (every name starts with "ui.") and the services' lifetime. Pages are rendered
from the services' in-memory data; nothing here runs for simple-API or file requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from proxy import __version__
from proxy.keys import BACKENDS, CONFIG, FILES, PAGES, PRIVATE
from proxy.ui import account, formatting, manage, operations, pages
from proxy.ui.catalog import Catalog
from proxy.ui.context import UI, Asset, UiServices
from proxy.ui.readme import ReadmeCache
from proxy.ui.recent import RecentErrors
from proxy.ui.session import KEY_NAME, Signer
from proxy.ui.sources import MetadataSource
from proxy.web import edge

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def setup(app: web.Application) -> None:
    """Add the web interface to `app` (after the services' cleanup contexts), or the one-line GET / without it."""
    if not app[CONFIG].ui.enabled:
        edge.add_routes(app, [web.get("/", pages.plain_root, name="root")])
        return
    filters: dict[str, Callable[..., str]] = {
        "size": formatting.size, "when": formatting.when, "short_hash": formatting.short_hash}
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False,
        undefined=jinja2.StrictUndefined, filters=filters,
    )
    env.globals["version"] = __version__
    app.cleanup_ctx.append(_services)
    for group in (pages.routes, account.routes, manage.routes, operations.routes):
        edge.add_routes(app, group)


async def _services(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    loop = asyncio.get_running_loop()
    key = await app[BACKENDS].meta.shared_secret(KEY_NAME)  # the same in every worker and replica
    assets = await loop.run_in_executor(None, _load_assets)
    # Templates read and compiled now, off the loop: with auto_reload off, rendering never touches the disk.
    env = aiohttp_jinja2.get_env(app)
    await loop.run_in_executor(None, lambda: [env.get_template(t) for t in env.list_templates()])
    # README rendering (docutils, pygments) gets a thread of its own: never queued before file I/O or page parsing.
    pool = ThreadPoolExecutor(1, thread_name_prefix="shadowpi-readme")
    errors = RecentErrors()
    errors.attach()
    app[UI] = UiServices(
        config=config, signer=Signer(key), readmes=ReadmeCache(pool),
        sources=MetadataSource(app[FILES], app[BACKENDS].blobs, pool), catalog=Catalog(app[PRIVATE], app[PAGES], pool),
        tokens=app[BACKENDS].meta, errors=errors, assets=assets,
        trusted=tuple(ipaddress.ip_network(n, strict=False) for n in config.ui.trusted_proxies),
    )  # fmt: skip
    try:
        yield
    finally:
        errors.detach()
        pool.shutdown(wait=False, cancel_futures=True)


def _load_assets() -> dict[str, Asset]:
    assets = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:16]
            assets[path.name] = Asset(body, _TYPES[path.suffix], version)
    return assets
