"""Read-only pages: home (GET /), search and project lists, project pages, and the UI's static files."""

from __future__ import annotations

from aiohttp import web

from proxy import __version__
from proxy.errors import InvalidProjectName
from proxy.keys import ACCESS
from proxy.simple.names import is_canonical, parse_project_name
from proxy.ui.context import UI, Viewer
from proxy.ui.indexes import readable, shown
from proxy.ui.listing import Kind, normalize_query, parse_page
from proxy.ui.project_page import done_message, gather
from proxy.ui.respond import render, ui_page

routes = web.RouteTableDef()
IMMUTABLE = "public, max-age=31536000, immutable"


@routes.get("/", name="ui.home")
@routes.get("/index/{index}/", name="ui.index_home")
@ui_page()
async def home(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The home of the root index (with the named indexes the viewer may read) or of a named index."""
    catalog, index = request.app[UI].catalog, shown(request)
    private, cached = await catalog.counts(index.chain)
    named = readable(request.app[ACCESS].current, viewer.identity) if index.url_name is None else []
    context = {"recent": await catalog.recent(index.chain, 10), "private_count": private, "cached_count": cached,
               "index": index.url_name, "upstream": index.index.upstream, "indexes": named,
               "bases": [i.name for i in index.chain[1:]]}
    return render(request, viewer, "home.html", context)


@routes.get("/index/{index}", name="ui.index_noslash")
@ui_page()
async def index_redirect(request: web.Request, _viewer: Viewer) -> web.StreamResponse:
    return web.Response(status=301, headers={"Location": f"./{shown(request).name}/"})


@routes.get("/search", name="ui.search")
@routes.get("/index/{index}/search", name="ui.index_search")
@ui_page()
async def search(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    query = request.query.get("q", "")[:200]
    kind = Kind.parse(request.query.get("kind"))
    chain = shown(request).chain
    results = await request.app[UI].catalog.search(query, kind, parse_page(request.query.get("page")), chain)
    return render(request, viewer, "search.html", {
        "query": query, "kind": kind.value, "results": results, "lookup": _lookup_name(query, results.items),
        "upstream": chain[0].upstream,  # an index without upstream has nothing to look up beyond its list
    })  # fmt: skip


def _lookup_name(query: str, rows: tuple[object, ...]) -> str | None:
    """A valid project name the list does not show: offer its project page (which asks upstream if allowed)."""
    wanted = normalize_query(query)
    try:
        name = parse_project_name(wanted) if wanted else None
    except InvalidProjectName:
        return None
    if name is None or any(getattr(row, "name", None) == name for row in rows):
        return None
    return name


@routes.get("/project/{name}", name="ui.project_noslash")
@routes.get("/index/{index}/project/{name}", name="ui.index_project_noslash")
@ui_page()
async def project_redirect(request: web.Request, _viewer: Viewer) -> web.StreamResponse:
    name = parse_project_name(request.match_info["name"])
    return web.Response(status=301, headers={"Location": f"./{name}/"})


@routes.get("/project/{name}/", name="ui.project")
@routes.get("/index/{index}/project/{name}/", name="ui.index_project")
@ui_page()
async def project(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    raw = request.match_info["name"]
    name = parse_project_name(raw)  # InvalidProjectName: a 400 page
    if not is_canonical(raw):  # one URL per project, as the simple API
        query = request.rel_url.raw_query_string
        return web.Response(status=301, headers={"Location": f"../{name}/" + (f"?{query}" if query else "")})
    context = await gather(request, viewer, name, parse_page(request.query.get("page")))
    done = done_message(request.query.get("done"), request.query.get("target"))
    return render(request, viewer, "project.html", {"p": context, "done": done})


@routes.get("/static/ui/{filename}", name="ui.static")
async def static(request: web.Request) -> web.StreamResponse:
    """The stylesheet and script, from memory. Open to everyone (they say nothing about the index): the sign-in
    page needs them before anyone has credentials."""
    asset = request.app[UI].assets.get(request.match_info["filename"])
    if asset is None:
        raise web.HTTPNotFound(text="no such file\n")
    etag = f'"{asset.version}"'
    headers = {
        "Cache-Control": IMMUTABLE if request.query.get("v") == asset.version else "public, max-age=300",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers)


async def plain_root(_request: web.Request) -> web.Response:
    """GET / with [ui] enabled = false: one line for people who open the server in a browser anyway."""
    return web.Response(
        text=f"shadowpi {__version__}: simple index at /simple/ (pip: --index-url http://HOST:PORT/simple/)\n"
    )
