"""The simple repository API: /simple/ and /simple/<project>/ (PEP 503 HTML, PEP 691 JSON), the root index's; the
same for every named index under /index/<name>/simple/."""

from __future__ import annotations

import weakref

from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.access import ROOT, IndexDef
from proxy.index import STEADY
from proxy.keys import ACCESS, CONFIG, INDEX, METRICS, READY, RENDERED
from proxy.rendered import Rendered, render_index
from proxy.simple.names import is_canonical, parse_project_name
from proxy.simple.negotiate import Format, choose_format
from proxy.web.access import needs_no_reader_check, prefix, readable_index
from proxy.web.ready import Ready, Shape, shape_of

routes = web.RouteTableDef()
PAGE_MAX_AGE = 60  # seconds an HTTP cache may reuse a page; shadowpi itself revalidates upstream per page_ttl


# Registered first: aiohttp tries the routes of a path prefix in registration order, and this one answers nearly
# every request under /simple and /index (each route tried before it costs a page request about 0.6 µs).
@routes.get("/simple/{name}/", name="project")
@routes.get("/index/{index}/simple/{name}/", name="named_project")
async def project_page(request: web.Request) -> web.StreamResponse:
    shape = shape_of(request)
    ready = request.app[READY].answer(shape)  # a warm page asked the same way before, if its answer still holds
    if ready is not None:
        return _answer(request, *ready)
    return await _project_page(request, await readable_index(request), shape)


async def _project_page(request: web.Request, index: IndexDef, shape: Shape) -> web.StreamResponse:
    """The full path: the name, the format, the index's answer and its rendering; a steady answer is kept ready."""
    app = request.app
    access = app[ACCESS].current  # the graph `index` came from (no await since readable_index for open ones)
    raw = request.match_info["name"]
    name = parse_project_name(raw)
    if not is_canonical(raw):  # PEP 503: one canonical URL per project (as PyPI does)
        raise web.HTTPMovedPermanently(_moved(request, f"{prefix(index)}/simple/{name}/"))
    fmt = _format(request)
    resolved = await app[INDEX].project(name, index.name)
    renders = app[RENDERED]
    rendered = renders.get(resolved.page, fmt) or await renders.render(resolved.page, fmt)
    outcome = resolved.outcome.value
    app[METRICS].page_lookup(outcome)
    body, headers = _chosen(request, rendered, index, outcome)
    if resolved.outcome in STEADY and needs_no_reader_check(index):  # others decide per reader: never ready
        app[READY].keep(shape, Ready(access, index.name, name, weakref.ref(resolved), weakref.ref(rendered),
                                     body is rendered.gzipped, headers, outcome))
    return _answer(request, body, headers)


@routes.get("/simple/", name="index")
@routes.get("/index/{index}/simple/", name="named_index")
async def index_page(request: web.Request) -> web.StreamResponse:
    index = await readable_index(request)
    fmt = _format(request)
    projects = await request.app[INDEX].project_list(index.name)
    return _answer(request, *_chosen(request, render_index(projects, fmt), index, None))


@routes.get("/simple", name="index_noslash")
@routes.get("/index/{index}/simple", name="named_index_noslash")
async def index_redirect(request: web.Request) -> web.StreamResponse:
    index = await readable_index(request)
    raise web.HTTPMovedPermanently(_moved(request, f"{prefix(index)}/simple/"))


@routes.get("/simple/{name}", name="project_noslash")
@routes.get("/index/{index}/simple/{name}", name="named_project_noslash")
async def project_redirect(request: web.Request) -> web.StreamResponse:
    index = await readable_index(request)
    name = parse_project_name(request.match_info["name"])
    raise web.HTTPMovedPermanently(_moved(request, f"{prefix(index)}/simple/{name}/"))


def _moved(request: web.Request, path: str) -> str:
    """The canonical location, keeping the query string (?format= must survive the redirect)."""
    query = request.rel_url.raw_query_string
    return f"{path}?{query}" if query else path


def _format(request: web.Request) -> Format:
    query_format = request.query.get("format") if request.query_string else None
    if query_format is not None:  # an unencoded "v1+json" arrives as "v1 json"; media types hold no spaces
        query_format = query_format.replace(" ", "+")
    fmt = choose_format(request.headers.get("Accept"), query_format)
    if fmt is None:
        raise web.HTTPNotAcceptable(
            reason="Unsupported format",
            text="format must be application/vnd.pypi.simple.v1+json, "
            "application/vnd.pypi.simple.v1+html or text/html\n",
        )
    return fmt


def _chosen(
    request: web.Request, rendered: Rendered, index: IndexDef, outcome: str | None
) -> tuple[bytes, CIMultiDictProxy[str]]:
    """The body (gzip when accepted and worth it) and headers of a rendering; `outcome`: the page's cache outcome
    for X-Shadowpi-Cache (None for the project list)."""
    packed = rendered.gzipped if "gzip" in request.headers.get("Accept-Encoding", "") else None
    headers = rendered.headers(packed is not None, _cache_control(request, index), outcome)
    return (rendered.body if packed is None else packed), headers


def _answer(request: web.Request, body: bytes, headers: CIMultiDictProxy[str]) -> web.Response:
    """The response, or 304 when the client has this representation (If-None-Match)."""
    if "If-None-Match" in request.headers and headers["ETag"] in _if_none_match(request):
        # RFC 9110 15.4.5: the validators and caching fields, no representation metadata.
        return web.Response(status=304, headers={k: headers[k] for k in _NOT_MODIFIED})
    return web.Response(body=body, headers=headers)


_NOT_MODIFIED = ("Vary", "ETag", "Cache-Control")
_PUBLIC = f"public, max-age={PAGE_MAX_AGE}"
_PRIVATE = f"private, max-age={PAGE_MAX_AGE}"  # reads need credentials: shared caches must not keep pages


def _cache_control(request: web.Request, index: IndexDef) -> str:
    if index.name == ROOT:
        return _PRIVATE if request.app[CONFIG].auth.read else _PUBLIC
    return _PUBLIC if index.world_readable else _PRIVATE


def _if_none_match(request: web.Request) -> set[str]:
    raw = request.headers.get("If-None-Match")
    if not raw:
        return set()
    return {tag.strip().removeprefix("W/") for tag in raw.split(",") if tag.strip()}
