"""The process's file-descriptor budget: the open-file limit raised as far as the system allows, how many cached files
may be held open and how many connections served within it, and one condensed log line for accept() failures when
it runs out anyway (instead of a traceback per failure).

Without these, a few hundred connections that never finished their request headers (slowloris) held every file
descriptor, and asyncio logged a traceback per failed accept(). The connection-level defences are
proxy/connections.py.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from typing import Any

log = logging.getLogger(__name__)

FD_RESERVE = 100  # descriptors kept for the database, spools and upstream connections
FDS_PER_CONNECTION = 2  # a client socket, plus a file it may be sent that is not among those held open
# Cached files kept open ([cache] open_files) take at most 1/this of the descriptors the reserve leaves.
HELD_SHARE = 8
# Refused connections lingering to read their answer (proxy/connections.py's _Refused) are at most
# max_connections / this: each holds a descriptor too, so the cap the open-file limit allows budgets for them.
LINGERING_SHARE = 4


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (every connection costs a descriptor); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # some platforms cap below the hard limit (macOS: OPEN_MAX)
            log.debug("could not raise the open-file limit to %d: %s", target, exc)
    return soft


def held_files_cap(configured: int, open_files: int) -> int:
    """How many cached files each process may keep open ([cache] open_files) under the open-file limit: `configured`,
    or fewer (logged) on a host whose limit is low, so that connections keep most descriptors."""
    affordable = max(0, (open_files - FD_RESERVE) // HELD_SHARE)
    if configured <= affordable:
        return configured
    log.info("cache.open_files = %d: the open-file limit (%d) leaves room for %d", configured, open_files, affordable)
    return affordable


def connection_cap(configured: int, open_files: int, held: int = 0) -> int:
    """The connection cap the open-file limit can honour beside `held` descriptors of cached files kept open
    ([cache] open_files): `configured`, or less (with a warning)."""
    per_share = FDS_PER_CONNECTION * LINGERING_SHARE + 1  # descriptors of LINGERING_SHARE connections + 1 lingering
    affordable = max(1, (open_files - FD_RESERVE - held) * LINGERING_SHARE // per_share)
    if configured <= affordable:
        return configured
    log.warning(
        "server.max_connections = %d needs more open files than the limit (%d) allows; using %d."
        " Raise the limit (ulimit -n, LimitNOFILE=) to allow more.", configured, open_files, affordable,
    )
    return affordable


_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class AcceptErrorLog:
    """A loop exception handler that condenses accept() failures for lack of resources (EMFILE and friends).

    asyncio reports each one with a traceback and retries a second later, so an exhausted server wrote a
    traceback per second per socket for as long as it lasted (40 MB). Here the first failure is logged at once
    as one line; later ones are counted and reported as one line per `interval` while they go on. Every other
    error goes to the loop's default handler.
    """

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._window: asyncio.TimerHandle | None = None
        self._suppressed = 0
        self._reason = ""

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS and "accept" in context.get("message", "")):
            loop.default_exception_handler(context)
            return
        self._reason = exc.strerror or str(exc)
        if self._window is not None:
            self._suppressed += 1
            return
        log.error("cannot accept connections: %s; %s", self._reason, self._advice())
        self._window = loop.call_later(self._interval, self._report, loop)

    def _report(self, loop: asyncio.AbstractEventLoop) -> None:
        self._window = None
        if not self._suppressed:
            return
        log.error("accept() failed %d more time(s) in the last %g s: %s; %s",
                  self._suppressed, self._interval, self._reason, self._advice())
        self._suppressed = 0
        self._window = loop.call_later(self._interval, self._report, loop)

    def _advice(self) -> str:
        every = f"{self._interval:g}"
        return f"lower server.max_connections or raise the open-file limit (reported at most every {every} s)"
