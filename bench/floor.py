"""The aiohttp floor: the least any aiohttp server can do for the benchmark's proxy workloads.

`python bench/floor.py --port P --upstream http://127.0.0.1:U` serves
- `/simple/<project>/`: fetched once from the upstream with aiohttp's client (same Accept and Accept-Encoding),
  then answered from a dict, bytes as they came (no parsing, no merging, no headers of its own);
- any other path: streamed from the upstream chunk by chunk, nothing stored and nothing checked.

It is shadowpi's stack (aiohttp's server and client, one event loop, one process) with shadowpi's work taken
out, so its ratios to nginx are the part of a gap that no handler on aiohttp can close: issue 11's targets are
judged against it (bench/report.py prints it beside shadowpi and nginx). Not a product: no cache validation,
no limits, no errors beyond passing the upstream's status on.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Mapping

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

SESSION = web.AppKey("session", ClientSession)
PAGES = web.AppKey("pages", dict)  # (project, accept, accept-encoding) -> (status, headers, body)
UPSTREAM = web.AppKey("upstream", str)
PASSED_ON = ("Content-Type", "Content-Encoding", "Content-Length", "ETag", "Last-Modified", "Vary")


async def page(request: web.Request) -> web.Response:
    key = (request.match_info["project"], request.headers.get("Accept", ""),
           request.headers.get("Accept-Encoding", ""))
    cached = request.app[PAGES].get(key)
    if cached is None:
        url = f"{request.app[UPSTREAM]}/simple/{key[0]}/"
        async with request.app[SESSION].get(url, headers=_asked(request)) as upstream:
            body = await upstream.read()
            cached = (upstream.status, _passed_on(upstream.headers), body)
        if cached[0] == 200:
            request.app[PAGES][key] = cached
    status, headers, body = cached
    return web.Response(status=status, headers=headers, body=body)


async def stream(request: web.Request) -> web.StreamResponse:
    url = f"{request.app[UPSTREAM]}{request.path}"
    async with request.app[SESSION].get(url, headers=_asked(request)) as upstream:
        response = web.StreamResponse(status=upstream.status, headers=_passed_on(upstream.headers))
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _asked(request: web.Request) -> dict[str, str]:
    # aiohttp's client would ask for gzip on its own: ask for exactly what the client asked for.
    return {"Accept": request.headers.get("Accept", "*/*"),
            "Accept-Encoding": request.headers.get("Accept-Encoding", "identity")}


def _passed_on(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in PASSED_ON if name in headers}


async def _session(app: web.Application) -> AsyncIterator[None]:
    # No decompression: pages pass through as the upstream encoded them, as shadowpi's cache keeps them.
    async with ClientSession(connector=TCPConnector(limit=100), auto_decompress=False,
                             timeout=ClientTimeout(total=600)) as session:
        app[SESSION] = session
        yield


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app[PAGES] = {}
    app.cleanup_ctx.append(_session)
    app.router.add_get("/health", health)
    app.router.add_get("/simple/{project}/", page)
    app.router.add_get("/{tail:.*}", stream)
    return app


def arguments(doc: str) -> argparse.ArgumentParser:
    """The flags every floor takes (bench/services.py starts them with these); `doc`: the floor's docstring."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's root, e.g. http://127.0.0.1:8001")
    return parser


def main() -> None:
    args = arguments(__doc__).parse_args()
    asyncio.run(_serve(make_app(args.upstream), args.port))


async def _serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
