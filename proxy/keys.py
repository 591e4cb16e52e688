"""Typed application keys: every long-lived service of the app, declared once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

from aiohttp import web

from proxy.access.model import AccessRef
from proxy.auth import Authenticator
from proxy.backends import Backends
from proxy.config import Config
from proxy.filecache import FileCache
from proxy.index import ProjectIndex
from proxy.janitor import CacheJanitor
from proxy.metrics import Metrics
from proxy.pages import PageCache
from proxy.peer_token import SharedSecret
from proxy.private import PrivateIndex
from proxy.publish import Publisher
from proxy.rendered import RenderCache
from proxy.upstream import UpstreamClient
from proxy.upstream_check import UpstreamChecker
from proxy.web.ready import ReadyAnswers

CONFIG = web.AppKey("config", Config)
ACCESS = web.AppKey("access", AccessRef)  # the index graph: indexes, chains, groups (issue 14)
BACKENDS = web.AppKey("backends", Backends)  # metadata, change feed, blobs: typed to their Protocols
UPSTREAM = web.AppKey("upstream", UpstreamClient)
UPSTREAM_CHECK = web.AppKey("upstream_check", UpstreamChecker)  # is upstream.url a simple index? (/ready)
PAGES = web.AppKey("pages", PageCache)
FILES = web.AppKey("files", FileCache)
INDEX = web.AppKey("index", ProjectIndex)
RENDERED = web.AppKey("rendered", RenderCache)
READY = web.AppKey("ready", ReadyAnswers)  # warm pages' answers by request shape (proxy/web/ready.py)
AUTH = web.AppKey("auth", Authenticator)
PRIVATE = web.AppKey("private", PrivateIndex)
PUBLISHER = web.AppKey("publisher", Publisher)
METRICS = web.AppKey("metrics", Metrics)
JANITOR = web.AppKey("janitor", CacheJanitor)
PEER_SECRET = web.AppKey("peer_secret", SharedSecret)  # what replicas sign peer requests with (proxy/web/peers.py)
PAGE_POOL = web.AppKey("page_pool", Executor)  # parses and renders big pages off the event loop
# kind ("page" | "file") -> (result, unix time) of the last upstream contact, for /ready.
UPSTREAM_STATUS: web.AppKey[dict[str, tuple[str, float]]] = web.AppKey("upstream_status")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
BACKGROUND: web.AppKey[bool] = web.AppKey("background")  # periodic maintenance tasks on/off
CHECK_UPSTREAM: web.AppKey[bool] = web.AppKey("check_upstream")  # run UpstreamChecker (serve) or not (tests)
