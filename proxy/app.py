"""The application factory: every service, its lifetime (cleanup contexts), routes and their edge on one screen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from proxy import ui
from proxy.access.model import AccessRef
from proxy.auth import Authenticator, FailureLimiter, Htpasswd
from proxy.backends import open_backends
from proxy.config import Config
from proxy.download_checks import Limits
from proxy.filecache import FileCache
from proxy.index import ProjectIndex
from proxy.janitor import CacheJanitor
from proxy.keys import (
    ACCESS,
    AUTH,
    BACKENDS,
    BACKGROUND,
    CHECK_UPSTREAM,
    CLOCK,
    CONFIG,
    FILES,
    INDEX,
    JANITOR,
    METRICS,
    PAGE_POOL,
    PAGES,
    PEER_SECRET,
    PRIVATE,
    PUBLISHER,
    READY,
    RENDERED,
    UPSTREAM,
    UPSTREAM_CHECK,
    UPSTREAM_STATUS,
)
from proxy.metrics import Metrics
from proxy.pages import PageCache
from proxy.peer_token import SECRET_NAME, SharedSecret
from proxy.private import PrivateIndex
from proxy.publish import Publisher
from proxy.reaper import BlobReaper
from proxy.rendered import RenderCache
from proxy.upstream import USER_AGENT, UpstreamClient
from proxy.upstream_check import UpstreamChecker
from proxy.web import edge, files, manage, ops, owners, peers, publish, simple
from proxy.web.ready import ReadyAnswers

log = logging.getLogger(__name__)
# Threads that parse and render big pages: their own, so seconds of page CPU never queue file I/O behind them.
PAGE_THREADS = 2


def create_app(
    config: Config, *, clock: Callable[[], float] = time.time, background: bool = True, check_upstream: bool = False
) -> web.Application:
    """A ready-to-run shadowpi application for this configuration.

    `clock` and `background=False` (no periodic cache sweeps) let tests control time and maintenance.
    `check_upstream` (what `serve` does) checks in the background that upstream.url is a simple index.
    """
    app = web.Application()  # no middleware: proxy/web/edge.py wraps each route's handler instead
    app[CONFIG] = config
    app[ACCESS] = AccessRef(config.access())
    app[CLOCK] = clock
    app[BACKGROUND] = background
    app[CHECK_UPSTREAM] = check_upstream
    app[METRICS] = Metrics()
    app[UPSTREAM_STATUS] = {}
    # Entered in order, exited in reverse: caches close before the upstream session and the backends.
    app.cleanup_ctx.extend([_backends, _auth, _upstream, _caches])
    edge.add_routes(app, simple.routes)
    edge.add_routes(app, files.routes)
    edge.add_routes(app, publish.routes)
    edge.add_routes(app, owners.routes)  # before manage: .../projects/<project>/owners is not a file or version
    edge.add_routes(app, manage.routes)
    edge.add_routes(app, ops.routes)
    edge.add_routes(app, peers.routes)  # other replicas follow this one's downloads (authenticated by a secret)
    if config.metrics.enabled:
        edge.add_routes(app, ops.metrics_routes)
    ui.setup(app)  # the web interface: GET /, /search, /project/<name>/, ... (or a one-line GET / without it)
    edge.add_unmatched(app)  # last: what no route above matches
    return app


async def _backends(app: web.Application) -> AsyncIterator[None]:
    async with open_backends(app[CONFIG], migrate=True) as backends:
        removed = await backends.spools.sweep()
        if removed:
            log.info("removed %d partial download(s) left by an earlier run", removed)
        app[BACKENDS] = backends
        app[PEER_SECRET] = SharedSecret(lambda: backends.meta.shared_secret(SECRET_NAME))
        interval = app[CONFIG].upload.spool_sweep_interval
        sweeper = None
        if app[BACKGROUND] and interval > 0:  # spools of workers that die while the others keep serving
            sweeper = asyncio.create_task(backends.spools.sweep_periodically(interval), name="spool-sweeper")
        yield
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper


async def _auth(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG].auth
    htpasswd = Htpasswd.load(config.htpasswd) if config.htpasswd else None
    limiter = FailureLimiter(config.max_failures, config.failure_window)
    auth = Authenticator(htpasswd, app[BACKENDS].meta, read_requires_auth=config.read,
                         bcrypt_threads=config.bcrypt_threads, limiter=limiter)
    app[AUTH] = auth
    yield
    auth.close()


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    metrics, status = app[METRICS], app[UPSTREAM_STATUS]

    def observe(kind: str, result: str, seconds: float) -> None:
        metrics.upstream_requests.labels(kind, result).inc()
        metrics.upstream_seconds.labels(kind).observe(seconds)
        status[kind] = (result, time.time())

    pool = ThreadPoolExecutor(PAGE_THREADS, thread_name_prefix="shadowpi-pages")
    app[PAGE_POOL] = pool
    try:
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
            app[UPSTREAM] = UpstreamClient(session, app[CONFIG].upstream, observe, executor=pool)
            checker = UpstreamChecker(session, app[CONFIG].upstream, enabled=app[CHECK_UPSTREAM])
            app[UPSTREAM_CHECK] = checker
            checker.start()  # in the background: an unreachable upstream must not hold up start-up
            yield
            await checker.close()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


async def _caches(app: web.Application) -> AsyncIterator[None]:
    config, backends = app[CONFIG], app[BACKENDS]
    meta, changes = backends.meta, backends.changes
    memory = config.cache.page_memory // 2  # half for parsed pages, half for their renderings
    pages = PageCache(meta, changes, app[UPSTREAM], config.upstream, clock=app[CLOCK], memory_bytes=memory)
    reaper = BlobReaper(meta, backends.blobs)  # every deletion of a blob goes through it
    janitor = CacheJanitor(meta, reaper, app[METRICS], config.cache, negative_ttl=config.upstream.negative_ttl,
                           clock=app[CLOCK], leases_now=backends.deletes_reach_readers)
    limits = Limits.from_config(config.upstream)
    file_cache = FileCache(backends.blobs, backends.fills, backends.spools, meta, app[UPSTREAM], janitor, limits,
                           clock=app[CLOCK])
    app[METRICS].track_fills(lambda: file_cache.in_flight)
    private = PrivateIndex(meta, changes, reaper)
    app[PAGES] = pages
    app[FILES] = file_cache
    app[PRIVATE] = private
    app[PUBLISHER] = Publisher(meta, backends.blobs, backends.spools, reaper, config.upload)
    app[INDEX] = ProjectIndex(pages, app[ACCESS], private=private.page, private_names=private.names,
                              holders=private.holders, private_version=private.version)
    app[RENDERED] = RenderCache(memory, executor=app[PAGE_POOL])
    app[READY] = ReadyAnswers(app[ACCESS], app[INDEX], app[METRICS].page_lookup)
    app[JANITOR] = janitor
    sweeper = asyncio.create_task(janitor.run(), name="cache-janitor") if app[BACKGROUND] else None
    yield
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    await file_cache.close()
    await pages.close()
