"""The application factory: every service, its lifetime (cleanup contexts), routes and middleware on one screen."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from proxy.config import Config
from proxy.db import Database
from proxy.files import FileCache
from proxy.index import ProjectIndex
from proxy.keys import CLOCK, CONFIG, DB, FILES, INDEX, PAGES, RENDERED, STORE, UPSTREAM
from proxy.pages import PageCache
from proxy.rendered import RenderCache
from proxy.simple.policy import ShadowPolicy
from proxy.storage import BlobStore
from proxy.upstream import USER_AGENT, UpstreamClient
from proxy.web import files, ops, simple
from proxy.web.middleware import error_middleware

log = logging.getLogger(__name__)
DB_FILENAME = "shadowpi.sqlite3"


def create_app(config: Config, *, clock: Callable[[], float] = time.time) -> web.Application:
    """A ready-to-run shadowpi application for this configuration (`clock` lets tests move time)."""
    app = web.Application(middlewares=[error_middleware])
    app[CONFIG] = config
    app[CLOCK] = clock
    # Entered in order, exited in reverse: caches close before the upstream session and the database.
    app.cleanup_ctx.extend([_storage, _database, _upstream, _caches])
    app.add_routes(simple.routes)
    app.add_routes(files.routes)
    app.add_routes(ops.routes)
    return app


async def _storage(app: web.Application) -> AsyncIterator[None]:
    store = BlobStore(app[CONFIG].data_dir)
    removed = await store.open()
    if removed:
        log.info("removed %d partial download(s) left by an earlier run", removed)
    app[STORE] = store
    yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = await Database.open(app[CONFIG].data_dir / DB_FILENAME)
    app[DB] = db
    yield
    await db.close()


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
        app[UPSTREAM] = UpstreamClient(session, app[CONFIG].upstream)
        yield


async def _caches(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pages = PageCache(app[DB], app[UPSTREAM], config.upstream, clock=app[CLOCK])
    file_cache = FileCache(app[STORE], app[DB], app[UPSTREAM])
    policy = ShadowPolicy(config.policy.merge_upstream, config.policy.private_patterns)
    app[PAGES] = pages
    app[FILES] = file_cache
    app[INDEX] = ProjectIndex(pages, policy)
    app[RENDERED] = RenderCache()
    yield
    await file_cache.close()
    await pages.close()
