"""One request strategy per route the app registers (method, path pattern), plus unrouted and malformed requests.

`ROUTES` must name every route of `create_app`: tests/test_fuzz.py enumerates `app.router` and fails on a route
without a strategy, so a new endpoint is fuzzed from the day it lands.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.artifacts import Artifact
from tests.fuzzkit.draft import Draft, DraftStrategy
from tests.fuzzkit.harness import METRICS_TOKEN, sample_dists
from tests.fuzzkit.multipart import ARTIFACTS, PRIVATE_PROJECT, Budget, UploadBody, upload_bodies
from tests.fuzzkit.ui_routes import UI_ROUTES
from tests.fuzzkit.values import (
    Credentials,
    credentials,
    extra_headers,
    header_text,
    long_value,
    query,
    short_text,
    url_segment,
)
from tests.fuzzkit.wire import HALF_CLOSE, RawRequest

UPSTREAM_ARTIFACTS = sample_dists().all
METADATA = ".metadata"




def _file_url(project: str, artifact: Artifact, suffix: str = "") -> bytes:
    return f"/files/{project}/{artifact.sha256}/{artifact.filename}{suffix}".encode()


def _known_file_urls() -> list[tuple[bytes, frozenset[int]]]:
    """Real file URLs (upstream and private), with what a plain GET of each must answer."""
    urls: list[tuple[bytes, frozenset[int]]] = []
    for artifact in UPSTREAM_ARTIFACTS:
        urls.append((_file_url(artifact.project, artifact), frozenset({200})))
        if artifact.is_wheel:
            urls.append((_file_url(artifact.project, artifact, METADATA), frozenset({200})))
    for artifact in ARTIFACTS:  # present only while uploaded and not deleted: no fixed answer
        urls.append((_file_url(PRIVATE_PROJECT, artifact), frozenset()))
    return urls


KNOWN_FILES = _known_file_urls()


def _page_drafts(method: bytes, _budget: Budget, *, slash: bool) -> st.SearchStrategy[Draft]:
    def build(segment: bytes, q: bytes) -> Draft:
        canonical = segment in {b"tinylib", b"depends-on-tiny", b"no-such-project"}
        expect: frozenset[int] = frozenset()
        if not slash and canonical:
            expect = frozenset({301})
        elif canonical and not q:
            expect = frozenset({404} if segment == b"no-such-project" else {200})
        return Draft(method, b"/simple/" + segment + (b"/" if slash else b"") + q, expect=expect)

    return st.builds(build, url_segment(), query())


def _index_drafts(method: bytes, _budget: Budget, *, slash: bool) -> st.SearchStrategy[Draft]:
    path, status = (b"/simple/", 200) if slash else (b"/simple", 301)
    return query().map(lambda q: Draft(method, path + q, expect=frozenset() if q else frozenset({status})))


def _file_drafts(method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
    known = st.sampled_from(KNOWN_FILES).map(lambda u: Draft(method, u[0], expect=u[1], accept=None))

    def mutated(url: bytes, index: int, segment: bytes) -> Draft:
        parts = url.split(b"/")  # b"", b"files", name, key, filename
        parts[2 + index % 3] = segment
        return Draft(method, b"/".join(parts), tags=frozenset({"path:mutated"}), accept=None)

    urls = st.sampled_from([u for u, _ in KNOWN_FILES])
    return st.one_of(known, st.builds(mutated, urls, st.integers(0, 2), url_segment()),
                     st.builds(lambda u, q: Draft(method, u + q, accept=None), urls, query()))


def _upload_drafts(method: bytes, budget: Budget, *, path: bytes) -> st.SearchStrategy[Draft]:
    def build(upload: UploadBody) -> Draft:
        return Draft(method, path, body=upload.body, content_type=upload.content_type, tags=upload.tags,
                     expect=upload.expect, write=True, accept=None)

    return upload_bodies(budget).map(build)


def _target_segment() -> st.SearchStrategy[bytes]:
    names = [a.filename.encode() for a in ARTIFACTS]
    return st.one_of(st.sampled_from([b"1.0", b"2.0", b"9.9", *names]), url_segment())


def _json_body() -> st.SearchStrategy[tuple[bytes, bytes | None]]:
    return st.one_of(
        st.just((b"", None)),
        short_text(40).map(lambda r: (b'{"reason": "' + r.replace(b"\\", b"").replace(b'"', b"") + b'"}',
                                      b"application/json")),
        st.sampled_from([(b"{", b"application/json"), (b"[]", b"application/json"), (b'{"reason": 5}',
                         b"application/json"), (b"null", b"application/json"), (b"reason=x", b"text/plain"),
                         (b'{"reason": "x"}', b"application/json; charset=latin-1")]),
        st.tuples(st.binary(max_size=100), st.sampled_from([b"application/json", None])),
    )


def _api_drafts(method: bytes, _budget: Budget, *, verb: bytes) -> st.SearchStrategy[Draft]:
    def build(project: bytes, target: bytes, body: tuple[bytes, bytes | None]) -> Draft:
        path = b"/api/projects/" + project + b"/" + target + (b"/" + verb if verb else b"")
        return Draft(method, path, body=body[0], content_type=body[1], write=True, accept=None)

    projects = st.one_of(st.sampled_from([PRIVATE_PROJECT.encode(), b"Fuzz_Private", b"tinylib"]), url_segment())
    return st.builds(build, projects, _target_segment(), _json_body())


def _ops_drafts(method: bytes, _budget: Budget, *, path: bytes, expect: int) -> st.SearchStrategy[Draft]:
    return query().map(lambda q: Draft(method, path + q, expect=frozenset({expect}) if not q else frozenset(),
                                       accept=None))


def _metrics_drafts(method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
    bearer = st.one_of(st.none(), st.sampled_from([b"Bearer " + METRICS_TOKEN.encode(), b"Bearer", b"Bearer x",
                                                   b"bearer " + METRICS_TOKEN.encode()]), header_text(30))
    return bearer.map(lambda a: Draft(method, b"/metrics", authorization=(a,), accept=None))


def _index_segment() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from([b"root", b"nope", b"ROOT"]), url_segment())


def _named_drafts(method: bytes, _budget: Budget, *, template: str) -> st.SearchStrategy[Draft]:
    """Issue 14's routes under /index/<name>/... and /api/indexes/<name>/...: every {placeholder} filled with a
    known or fuzzed segment (no fixed answer: the index may not exist), JSON or junk bodies for writes."""
    def build(index: bytes, segments: list[bytes], body: tuple[bytes, bytes | None], q: bytes) -> Draft:
        path = template.encode().replace(b"{index}", index)
        for segment in segments:
            start, end = path.find(b"{"), path.find(b"}")
            if start >= 0:
                path = path[:start] + segment + path[end + 1:]
        write = method not in {b"GET", b"HEAD"}
        return Draft(method, path + q, body=body[0] if write else b"", content_type=body[1] if write else None,
                     write=write, accept=None)

    names = st.one_of(st.sampled_from([PRIVATE_PROJECT.encode(), b"tinylib", b"1.0"]), _target_segment())
    return st.builds(build, _index_segment(), st.lists(names, min_size=4, max_size=4), _json_body(), query())


def _named(method: str, *templates: str) -> dict[tuple[str, str], DraftStrategy]:
    return {(method, t): (lambda m, b, t=t: _named_drafts(m, b, template=t)) for t in templates}


def _named_uploads(*paths: str) -> dict[tuple[str, str], DraftStrategy]:
    return {("POST", p): (lambda m, b, p=p: _upload_drafts(m, b, path=p.replace("{index}", "root").encode()))
            for p in paths}


def _peer_drafts(method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
    """The peer endpoint with every token but a valid one (only replicas hold the secret): a well-formed sha256
    is refused (403) before anything is looked up, anything else names no fill (404)."""
    tokens = st.one_of(st.none(), st.sampled_from([b"Shadowpi-Peer", b"Shadowpi-Peer 1.00", b"Shadowpi-Peer x.y",
                                                   b"Shadowpi-Peer 99999999999.ab", b"Basic Zm9vOmJhcg=="]),
                       header_text(60).map(lambda v: b"Shadowpi-Peer " + v))
    known = st.sampled_from([a.sha256.encode() for a in UPSTREAM_ARTIFACTS]).map(lambda s: (s, 403))
    other = url_segment().map(lambda s: (s, 404 if len(s) != 64 else 0))

    def build(sha: tuple[bytes, int], q: bytes, token: bytes | None) -> Draft:
        expect = frozenset({sha[1]}) if sha[1] else frozenset()
        return Draft(method, b"/_shadowpi/fills/" + sha[0] + q, expect=expect, authorization=(token,), accept=None)

    return st.builds(build, st.one_of(known, other), query(), tokens)


def _unrouted_drafts(_method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
    """The catch-all (proxy/web/edge.py's "unmatched"): any method, on paths no route has."""
    method = st.one_of(st.sampled_from(METHODS), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
                       .map(str.encode))
    prefix = st.sampled_from([b"/", b"/simple/", b"/files/", b"/api/projects/", b"/legacy/", b"/health/", b"//"])
    path = st.tuples(prefix, st.lists(url_segment(), max_size=4)).map(lambda t: t[0] + b"/".join(t[1]))
    return st.builds(lambda m, p: Draft(m, p, accept=None), method, path)


def _reads(path: str, make: DraftStrategy) -> dict[tuple[str, str], DraftStrategy]:
    return {("GET", path): make, ("HEAD", path): make}


def _uploads(*paths: str) -> dict[tuple[str, str], DraftStrategy]:
    return {("POST", p): (lambda m, b, p=p: _upload_drafts(m, b, path=p.encode())) for p in paths}


ROUTES: dict[tuple[str, str], DraftStrategy] = {
    **_reads("/simple/", lambda m, b: _index_drafts(m, b, slash=True)),
    **_reads("/simple", lambda m, b: _index_drafts(m, b, slash=False)),
    **_reads("/simple/{name}", lambda m, b: _page_drafts(m, b, slash=False)),
    **_reads("/simple/{name}/", lambda m, b: _page_drafts(m, b, slash=True)),
    **_reads("/files/{name}/{key}/{filename}", _file_drafts),
    **_uploads("/", "/legacy/", "/legacy", "/simple/"),
    ("POST", "/api/projects/{project}/{target}/yank"): lambda m, b: _api_drafts(m, b, verb=b"yank"),
    ("POST", "/api/projects/{project}/{target}/unyank"): lambda m, b: _api_drafts(m, b, verb=b"unyank"),
    ("DELETE", "/api/projects/{project}/{target}"): lambda m, b: _api_drafts(m, b, verb=b""),
    **_reads("/health", lambda m, b: _ops_drafts(m, b, path=b"/health", expect=200)),
    **_reads("/ready", lambda m, b: _ops_drafts(m, b, path=b"/ready", expect=200)),
    **_reads("/", lambda m, b: _ops_drafts(m, b, path=b"/", expect=200)),
    **_reads("/metrics", _metrics_drafts),
    **_named("GET", "/index/{index}/simple/", "/index/{index}/simple", "/index/{index}/simple/{name}",
             "/index/{index}/simple/{name}/", "/index/{index}/files/{name}/{key}/{filename}",
             "/api/projects/{project}/owners", "/api/indexes/{index}/projects/{project}/owners",
             "/api/indexes/{index}/log"),
    **_named("HEAD", "/index/{index}/simple/", "/index/{index}/simple", "/index/{index}/simple/{name}",
             "/index/{index}/simple/{name}/", "/index/{index}/files/{name}/{key}/{filename}",
             "/api/projects/{project}/owners", "/api/indexes/{index}/projects/{project}/owners",
             "/api/indexes/{index}/log"),
    **_named("POST", "/api/projects/{project}/owners", "/api/indexes/{index}/projects/{project}/owners",
             "/api/indexes/{index}/push", "/api/indexes/{index}/projects/{project}/{target}/yank",
             "/api/indexes/{index}/projects/{project}/{target}/unyank"),
    **_named("DELETE", "/api/projects/{project}/owners", "/api/indexes/{index}/projects/{project}/owners",
             "/api/indexes/{index}/projects/{project}/{target}"),
    **_named_uploads("/index/{index}/", "/index/{index}/legacy/", "/index/{index}/legacy"),
    **_reads("/_shadowpi/fills/{sha256}", _peer_drafts),
    **UI_ROUTES,  # the web interface (tests/fuzzkit/ui_routes.py)
    ("*", "/{_unmatched}"): _unrouted_drafts,  # every path and method no route above has
}


# --- from draft to raw request ---------------------------------------------------------------------------

FRAMINGS = ("exact",) * 12 + ("none", "short", "long", "chunked", "chunked-broken",
            "double-length", "te-and-cl")


def _framed(body: bytes, framing: str, method: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers that frame the body, and the bytes actually sent."""
    length = str(len(body)).encode()
    if framing == "exact":
        return ([(b"Content-Length", length)] if body or method not in {b"GET", b"HEAD"} else []), body
    if framing == "none":
        return [], body
    if framing == "short":
        return [(b"Content-Length", str(max(0, len(body) - 1) // 2).encode())], body
    if framing == "long":
        return [(b"Content-Length", str(len(body) + 10).encode())], body
    chunked = f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    if framing == "chunked":
        return [(b"Transfer-Encoding", b"chunked")], chunked
    if framing == "chunked-broken":
        return [(b"Transfer-Encoding", b"chunked")], b"zz\r\n" + body
    if framing == "double-length":
        return [(b"Content-Length", length), (b"Content-Length", str(len(body) + 1).encode())], body
    return [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", length)], chunked  # te-and-cl


@st.composite
def finish(draw: st.DrawFn, draft: Draft) -> RawRequest:
    """Credentials, optional headers and framing for a draft; tags say what was chosen."""
    creds = draw(credentials()) if draft.authorization is None else Credentials("route", draft.authorization[0])
    plain = draw(st.booleans())
    framing = draw(st.sampled_from(FRAMINGS))
    headers = [(b"Host", b"shadowpi.test")]
    if creds.value is not None:
        headers.append((b"Authorization", creds.value))
    if draft.content_type is not None:
        headers.append((b"Content-Type", draft.content_type))
    if plain and draft.accept is not None:
        headers.append((b"Accept", draft.accept))
    if not plain:
        headers += draw(extra_headers())
    framing_headers, body = _framed(draft.body, framing, draft.method)
    tags = set(draft.tags) | {f"auth:{creds.kind}", f"framing:{framing}"}
    if plain:
        tags.add("plain")
    if draft.write:
        tags.add("write")
    if framing == "long":
        tags.add(HALF_CLOSE)
    tags |= {f"expect:{status}" for status in draft.expect}
    return RawRequest(draft.method, draft.target, (*headers, *framing_headers), body, tags=frozenset(tags))


def route_requests(key: tuple[str, str], budget: Budget) -> st.SearchStrategy[RawRequest]:
    return ROUTES[key](key[0].encode(), budget).flatmap(finish)


# --- requests no route matches, and requests HTTP itself refuses --------------------------------------------

METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"get", b"PRI")


def unrouted_requests() -> st.SearchStrategy[RawRequest]:
    return _unrouted_drafts(b"", Budget()).flatmap(finish)


def malformed_requests() -> st.SearchStrategy[RawRequest]:
    host = (b"Host", b"shadowpi.test")
    line = st.one_of(
        st.binary(max_size=60),
        st.sampled_from([b"GET", b"GET /", b"GET / HTTP/9.9", b"GET / HTTP/1.1 extra", b"GET  / HTTP/1.1",
                         b"GET http://shadowpi.test/simple/ HTTP/1.1", b"OPTIONS * HTTP/1.1", b"GET /\x00 HTTP/1.1",
                         b"GET / HTTP/1.0", b"GET / HTTP/2.0", b"GET /simple/ http/1.1", b"\x16\x03\x01\x02\x00"]),
        long_value(20_000).map(lambda b: b"GET /" + b + b" HTTP/1.1"),
    )
    bad_headers = st.one_of(
        st.sampled_from([[(b"X-A\x00", b"1")], [(b"X-A", b"a\x00b")], [(b" X-A", b"1")], [(b"X-A ", b"1")],
                         [(b"X-A", b"1\r\n folded")], [(b"", b"no-name")], [(b"X-A", b"1\rX-B: 2")],
                         [(b"Host", b"a"), (b"Host", b"b")], [(b"Content-Length", b"-1")],
                         [(b"Content-Length", b"1e3")], [(b"Transfer-Encoding", b"gzip, chunked")]]),
        st.integers(1, 300).map(lambda n: [(b"X-Many-%d" % i, b"v") for i in range(n)]),
        long_value(20_000).map(lambda b: [(b"X-Long", b)]),
    )

    def from_line(raw: bytes) -> RawRequest:
        return RawRequest(b"", b"", (host,), line=raw, tags=frozenset({"malformed:line"}))

    def from_headers(headers: list[tuple[bytes, bytes]], path: bytes) -> RawRequest:
        return RawRequest(b"GET", path, (host, *headers), tags=frozenset({"malformed:headers"}))

    paths = st.sampled_from([b"/health", b"/simple/tinylib/", b"/"])
    return st.one_of(line.map(from_line), st.builds(from_headers, bad_headers, paths))
