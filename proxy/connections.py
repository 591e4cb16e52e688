"""Connection-level defences aiohttp's server lacks: a header-read timeout and connection caps (total and per client
address). The descriptor budget they live within (the open-file limit, the caps it allows, accept() failures when it
runs out) is proxy/descriptors.py.

Without them, a few hundred connections that never finish their request headers (slowloris) held every file
descriptor: legitimate clients could not connect and asyncio logged a traceback per failed accept().
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader

from proxy.descriptors import LINGERING_SHARE

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float  # seconds from accept to the first request's complete headers
    max_connections: int
    max_per_client: int


def _refusal(status: str, text: str) -> bytes:
    """A complete, fixed HTTP response for a connection we will not serve: the client learns why, then EOF."""
    body = text.encode() + b"\n"
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    return head.encode() + b"Retry-After: 5\r\n\r\n" + body


class ConnectionGuard:
    """Counts open connections (in total and per client address) and decides who may open another."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.per_client: Counter[str] = Counter()
        # Connections still waiting for their first request's headers, per client address, oldest first. At the
        # total cap one is closed to make room, so connections that never finish their headers (slowloris) cannot
        # lock others out: the oldest of the address holding the most. Oldest overall would let an attacker who
        # reconnects at once churn through the queue faster than a newcomer's headers are read (the newcomer itself
        # evicted before its first byte was seen); by address, the flood evicts its own connections.
        self.waiting: dict[str, dict[GuardedHandler, None]] = {}
        self.lingering = 0  # refused connections still being answered (see _Refused)
        self._busy = _refusal(
            "503 Service Unavailable", f"shadowpi is at server.max_connections ({limits.max_connections}); retry soon."
        )
        self._crowded = _refusal(
            "429 Too Many Requests",
            f"Too many connections from your address (server.max_connections_per_client = {limits.max_per_client}).",
        )

    def admit(self, client: str) -> bytes | None:
        """None when the connection may proceed (and is now counted), else the response to refuse it with."""
        if self.per_client[client] >= self.limits.max_per_client:
            return self._crowded
        if self.open >= self.limits.max_connections:
            if not self.waiting:
                return self._busy
            # Closed at once, not lingering: the newcomer needs its descriptor now (briefly one over the cap).
            crowded = max(self.waiting.values(), key=len)
            next(iter(crowded)).evict()
        self.open += 1
        self.per_client[client] += 1
        return None

    def start_waiting(self, client: str, handler: GuardedHandler) -> None:
        self.waiting.setdefault(client, {})[handler] = None

    def stop_waiting(self, client: str, handler: GuardedHandler) -> None:
        queue = self.waiting.get(client)
        if queue is not None:
            queue.pop(handler, None)
            if not queue:
                del self.waiting[client]

    def release(self, client: str) -> None:
        self.open -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


_OVERDUE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
LINGER = 2.0  # seconds a refused connection may take to read its answer


def _half_close(transport: asyncio.WriteTransport) -> bool:
    """Send EOF after what was written; False when the connection cannot take it (gone already, or TLS)."""
    if not transport.can_write_eof():
        return False
    try:
        transport.write_eof()
    except OSError:  # the client reset the connection meanwhile
        return False
    return True


class _Refused(asyncio.Protocol):
    """Takes over a refused connection: sends the answer and EOF, then discards what the client sends until it
    closes or LINGER passes. Closing at once, with the client's request unread, makes the kernel send a reset,
    which can destroy the answer before the client reads it. Lingering connections are bounded (a share of
    max_connections): beyond that, a refused connection is simply closed."""

    def __init__(self, guard: ConnectionGuard, transport: asyncio.Transport, answer: bytes) -> None:
        self._guard = guard
        self._timer: asyncio.TimerHandle | None = None
        transport.set_protocol(self)
        transport.write(answer)
        if guard.lingering >= max(1, guard.limits.max_connections // LINGERING_SHARE) or not _half_close(transport):
            transport.close()
            return
        guard.lingering += 1
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._guard.lingering -= 1


class GuardedHandler(web.RequestHandler):
    """aiohttp's own request handler (the protocol of one connection), with two additions at its edges:

    - connection_made: over a connection cap, the connection is handed to _Refused (a fixed 429/503, then
      closed) before aiohttp sees it; otherwise a timer starts that answers 408 and closes the connection
      unless complete request headers arrive in time.
    - headers_complete (called by GuardedSite's request factory, once per request): stops that timer.
    After the first request, aiohttp's own keepalive_timeout closes a connection whose next request has not
    arrived complete in time (it runs from each response; the header timer covers the first request, which
    aiohttp's timer would give the whole keep-alive time).
    """

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._client: str | None = None  # set once admitted
        self._deadline: asyncio.TimerHandle | None = None
        self._closing: asyncio.TimerHandle | None = None  # answered 408: lingering until the client reads it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else "unknown"
        refusal = self._guard.admit(client)
        if refusal is not None:
            assert isinstance(transport, asyncio.Transport)
            _Refused(self._guard, transport, refusal)  # this handler is never used
            return
        self._client = client
        super().connection_made(transport)
        self._deadline = asyncio.get_running_loop().call_later(self._guard.limits.header_timeout, self.overdue)
        self._guard.start_waiting(client, self)

    def headers_complete(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
            if self._client is not None:
                self._guard.stop_waiting(self._client, self)

    def overdue(self) -> None:
        """Answer 408 and close: no complete request headers in time (or room is needed for a newcomer).

        The answer is followed by EOF, and the connection closes once the client has closed its end or LINGER has
        passed: closing at once, with the client's bytes still unread, makes the kernel send a reset, which can
        destroy the 408 before the client reads it (as for _Refused)."""
        self.headers_complete()
        transport = self.transport
        if transport is None or self._closing is not None:
            return
        log.debug("closing a connection from %s: no complete request headers in time", self._client)
        transport.write(_OVERDUE)
        if not _half_close(transport):
            self.force_close()
            return
        self._closing = asyncio.get_running_loop().call_later(LINGER, self.force_close)

    def evict(self) -> None:
        """Close at once (a 408 on its way, but no linger): a newcomer needs room under the connection cap."""
        self.headers_complete()
        if self.transport is not None:
            log.debug("closing a connection from %s to make room: no complete request headers yet", self._client)
            self.transport.write(_OVERDUE)
        self.force_close()

    def data_received(self, data: bytes) -> None:
        if self._closing is None:
            super().data_received(data)
        # else: answered 408 already; what the client still sends is discarded until the connection closes

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp logs what a *client* did wrong (a request its parser refuses with 400, a connection closed
        under it) at ERROR with a traceback. Those are one INFO line here; anything else stays an error."""
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError | ConnectionError):
            log.info("refused a request from %s: %s: %s", self._client, type(exc).__name__, exc)
            return
        super().log_exception(*args, **kw)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._closing is not None:
            self._closing.cancel()
        if self._client is None:  # pragma: no cover - refused connections belong to _Refused
            return
        self.headers_complete()
        self._guard.release(self._client)
        self._client = None
        super().connection_lost(exc)


RequestFactory = Callable[
    [RawRequestMessage, StreamReader, web.RequestHandler, AbstractStreamWriter, "asyncio.Task[None]"],
    web.BaseRequest,
]


class GuardedSite(web.BaseSite):
    """A TCP site (like web.TCPSite) whose connections are GuardedHandlers.

    `handler_args` are the RequestHandler options (access log, keepalive_timeout) the runner was given too.
    """

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard, *,
        reuse_port: bool = False, handler_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(runner, backlog=1024)
        self._host, self._port, self._guard = host, port, guard
        self._reuse_port = reuse_port
        self._handler_args = dict(handler_args or {})

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def start(self) -> None:
        """Bind and listen. Raises OSError (address in use, permission denied, no such address)."""
        await super().start()
        server = self._runner.server
        assert server is not None  # the runner is set up before its sites start
        loop = asyncio.get_running_loop()
        _notify_headers_complete(server)
        args = {"loop": loop, **self._handler_args}
        self._server = await loop.create_server(
            lambda: GuardedHandler(server, self._guard, **args),
            self._host, self._port, backlog=self._backlog, reuse_port=self._reuse_port or None,
        )


def _notify_headers_complete(server: web.Server) -> None:
    """aiohttp calls the server's request factory once per request, as soon as its headers are parsed: the one
    public point where "this connection sent complete headers" is known. Wrap it to stop the header timer."""
    inner: RequestFactory = server.request_factory
    if getattr(inner, "_shadowpi_guarded", False):
        return

    def factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        if isinstance(protocol, GuardedHandler):
            protocol.headers_complete()
        return inner(message, payload, protocol, writer, task)

    factory._shadowpi_guarded = True  # type: ignore[attr-defined]
    server.request_factory = factory
