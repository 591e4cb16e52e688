"""Typed application keys: every long-lived service of the app, declared once."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from proxy.config import Config
from proxy.db import Database
from proxy.files import FileCache
from proxy.index import ProjectIndex
from proxy.pages import PageCache
from proxy.rendered import RenderCache
from proxy.storage import BlobStore
from proxy.upstream import UpstreamClient

CONFIG = web.AppKey("config", Config)
DB = web.AppKey("db", Database)
STORE = web.AppKey("store", BlobStore)
UPSTREAM = web.AppKey("upstream", UpstreamClient)
PAGES = web.AppKey("pages", PageCache)
FILES = web.AppKey("files", FileCache)
INDEX = web.AppKey("index", ProjectIndex)
RENDERED = web.AppKey("rendered", RenderCache)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
