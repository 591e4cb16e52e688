"""Is upstream.url a simple index? Checked in the background at start-up and again by /ready, so a URL such as
https://pypi.org/ (no /simple/: every project a 404) is named in the log instead of failing silently.

The check reads response headers and at most PREFIX_BYTES of the body, then drops the connection: the root of
PyPI's simple index is a list of 600,000 names, which is never downloaded. An unreachable upstream is
reported, never waited for: shadowpi starts and serves from its cache regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp

from proxy.config import UpstreamConfig, mask_url
from proxy.upstream import PAGE_ACCEPT

log = logging.getLogger(__name__)
PREFIX_BYTES = 64 * 1024
RECHECK_AFTER = 300.0  # seconds before /ready checks again
_SIMPLE_JSON = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json")
_HTML = ("text/html", "application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html",
         "application/xhtml+xml")


@dataclass(frozen=True, slots=True)
class CheckResult:
    state: str  # "ok", "wrong" (answers, but not as a simple index), "unreachable"
    detail: str
    checked_at: float


def judge(status: int, content_type: str, prefix: bytes) -> str | None:
    """None when the answer looks like a simple index's root page, else what is wrong with it. Pure."""
    if status in {401, 403}:
        return f"it answers {status}: credentials are missing or refused (https://USER:PASSWORD@host/simple/)"
    if status != 200:
        return f"it answers {status}"
    if content_type in _SIMPLE_JSON:
        return None
    if content_type not in _HTML:
        return f"it answers {content_type or 'no content type'}, not a simple-index page"
    head = prefix.lower()
    if b"pypi:repository-version" in head:  # PEP 629: every simple page may say which API version it speaks
        return None
    if b"<script" in head or b"<form" in head:
        return "it answers a web page with scripts or forms, not a simple index"
    return None  # a plain page of links (or none yet): any simple index's root


async def probe(session: aiohttp.ClientSession, url: str, seconds: float) -> tuple[int, str, bytes]:
    """(status, content type, at most PREFIX_BYTES of the body). Raises aiohttp.ClientError, TimeoutError."""
    resp = await session.get(url, headers={"Accept": PAGE_ACCEPT}, timeout=aiohttp.ClientTimeout(total=seconds))
    try:
        prefix = b""
        if resp.content_type not in _SIMPLE_JSON:
            while len(prefix) < PREFIX_BYTES and (chunk := await resp.content.read(PREFIX_BYTES - len(prefix))):
                prefix += chunk
        return resp.status, resp.content_type, prefix
    finally:
        resp.close()  # drop the connection: never read the rest of a 30 MB project list


async def check_upstream(session: aiohttp.ClientSession, config: UpstreamConfig) -> CheckResult:
    url, shown = config.url, mask_url(config.url)
    try:
        problem = judge(*await probe(session, url, config.page_timeout))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
        return CheckResult("unreachable", f"upstream {shown} is unreachable ({reason}); serving from the cache",
                           time.time())
    if problem is None:
        return CheckResult("ok", f"upstream {shown} answers as a simple index", time.time())
    detail = f"upstream.url {shown} does not look like a simple index: {problem}"
    suggestion = await _suggest(session, config)
    if suggestion is not None:
        detail += f"; did you mean {mask_url(suggestion)}?"
    return CheckResult("wrong", detail, time.time())


async def _suggest(session: aiohttp.ClientSession, config: UpstreamConfig) -> str | None:
    """url + "simple/", if the given URL does not end in /simple/ and that one looks right."""
    if config.url.rstrip("/").endswith("/simple"):
        return None
    candidate = config.url + "simple/"
    try:
        return candidate if judge(*await probe(session, candidate, config.page_timeout)) is None else None
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


class UpstreamChecker:
    """Holds the latest check for /ready and runs new ones in the background (never more than one at a time)."""

    def __init__(self, session: aiohttp.ClientSession, config: UpstreamConfig, *, enabled: bool) -> None:
        self._session = session
        self._config = config
        self.enabled = enabled and not config.offline
        self.result: CheckResult | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin a check unless one is running (or checks are off); returns at once."""
        if self.enabled and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="upstream-check")

    def refresh_if_stale(self) -> None:
        if self.result is not None and time.time() - self.result.checked_at > RECHECK_AFTER:
            self.start()

    async def settled(self) -> None:
        """Wait for the running check, if any (tests)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        previous = self.result
        self.result = await check_upstream(self._session, self._config)
        if self.result.state != "ok" and (previous is None or previous.detail != self.result.detail):
            log.warning("%s", self.result.detail)

    def report(self) -> dict[str, object]:
        if not self.enabled:
            return {"state": "not checked"}
        if self.result is None:
            return {"state": "checking"}
        return {"state": self.result.state, "detail": self.result.detail,
                "seconds_ago": round(time.time() - self.result.checked_at, 1)}
