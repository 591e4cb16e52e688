"""Logging: one access-log line per request (status, bytes, duration, cache outcome), as text or JSON."""

from __future__ import annotations

import json
import logging
import time

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class SendfileCounted:
    """A response whose body goes out with sendfile, past aiohttp's own byte count: it counts those bytes itself,
    for the access log."""

    def sendfile_bytes(self) -> int:
        """Body bytes sent with sendfile (not counted in body_length)."""
        return 0


class AccessLogger(AbstractAccessLogger):
    """aiohttp access logger; aiohttp passes `log_format`, which shadowpi uses as "text" or "json".

    Logged: method, path, status, bytes sent (headers and body), duration, cache outcome (X-Shadowpi-Cache), client
    and a short user agent.
    Never logged: headers (Authorization), so credentials and tokens cannot leak into logs.
    """

    @property
    def enabled(self) -> bool:
        """aiohttp skips log() entirely when this is false: no per-request work at --log-level WARNING."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        fields = {
            "remote": request.remote or "-",
            "method": request.method,
            "path": request.path_qs,
            "status": response.status,
            "bytes": response.body_length + _sendfile_bytes(request, response),
            "ms": round(time * 1000, 2),
            "cache": response.headers.get("X-Shadowpi-Cache", "-"),
            "agent": _short_agent(request.headers.get("User-Agent", "-")),
        }
        if self.log_format == "json":
            self.logger.info(json.dumps({"event": "request", **fields}, separators=(",", ":")))
        else:
            self.logger.info(
                '%(remote)s "%(method)s %(path)s" %(status)s %(bytes)s %(ms)sms cache=%(cache)s agent=%(agent)s',
                fields,
            )


def _sendfile_bytes(request: BaseRequest, response: StreamResponse) -> int:
    if request.method == "HEAD" or not isinstance(response, SendfileCounted):
        return 0
    return response.sendfile_bytes()


def _short_agent(agent: str) -> str:
    # uv's User-Agent carries a large JSON blob of linehaul data; the product token is what matters here.
    return agent.split(" ", 1)[0][:60]


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access lines (already JSON) are embedded as they are."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # `serve --workers N` interleaves N processes' lines in one stream
        }
        if message.startswith("{") and record.name == "aiohttp.access":
            entry.update(json.loads(message))
        else:
            entry["message"] = message
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def setup_logging(level: str, fmt: str) -> None:
    """Configure the root logger once, at start-up (cli.py)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python warnings (aiohttp's for a malformed part header, say) go through logging too: on stderr they were
    # two raw lines, and with --log-format json a line that is not JSON.
    logging.captureWarnings(True)
