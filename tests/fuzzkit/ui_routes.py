"""Request strategies for the web interface's routes (proxy/ui): pages with hostile names and queries, and every
form posted with and without a CSRF token, as a browser or an attacker would send it."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

from tests.fuzzkit.draft import Draft, DraftStrategy
from tests.fuzzkit.multipart import PRIVATE_PROJECT, Budget
from tests.fuzzkit.values import short_text, url_segment
from tests.fuzzkit.wire import RawRequest

PAGE_NAMES = [PRIVATE_PROJECT.encode(), b"tinylib", b"depends-on-tiny", b"no-such-project", b"Fuzz_Private"]
FORM_FIELDS = [b"csrf", b"username", b"password", b"next", b"reason", b"target", b"confirm", b"description",
               b"token_id", b"project"]
FORM_TYPES = [b"application/x-www-form-urlencoded", b"application/x-www-form-urlencoded; charset=latin-1",
              b"multipart/form-data; boundary=x", b"text/plain", b"application/json"]
# Named indexes: root (also reachable as /index/root/), an unknown one, hostile ones.
INDEX_NAMES = [b"root", b"nope", b"ROOT", b"..", b"%2e%2e", b"a%2Fb"]
STATIC = [b"style.css", b"ui.js", b"missing.css", b"..%2Fsession.py", b"%2e%2e", b"style.css%00"]


def _query(keys: list[bytes]) -> st.SearchStrategy[bytes]:
    if not keys:
        return st.just(b"")
    pair = st.tuples(st.sampled_from(keys), short_text(40)).map(
        lambda kv: kv[0] + b"=" + quote_from_bytes(kv[1], safe="").encode())
    return st.one_of(st.just(b""), st.lists(pair, min_size=1, max_size=4).map(lambda ps: b"?" + b"&".join(ps)))


def _form() -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(body, content type): form fields a browser posts, with a CSRF token that is missing, garbage or empty."""
    value = st.one_of(short_text(40), st.sampled_from([b"", b"1.0", b"yes", b"/", b"//evil.example/", b"0"]))
    pair = st.tuples(st.sampled_from(FORM_FIELDS), value).map(
        lambda kv: kv[0] + b"=" + quote_from_bytes(kv[1], safe="").encode())
    body = st.lists(pair, max_size=6).map(b"&".join)
    return st.tuples(st.one_of(body, st.binary(max_size=200)), st.sampled_from(FORM_TYPES))


def _pages(path: Callable[[bytes], bytes], keys: list[bytes]) -> DraftStrategy:
    def drafts(method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
        names = st.one_of(st.sampled_from(PAGE_NAMES), url_segment())
        return st.builds(lambda n, q: Draft(method, path(n) + q, accept=b"text/html"), names, _query(keys))

    return drafts


def _posts(path: Callable[[bytes], bytes]) -> DraftStrategy:
    def drafts(method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
        names = st.one_of(st.sampled_from(PAGE_NAMES), url_segment())

        def build(name: bytes, form: tuple[bytes, bytes]) -> Draft:
            # A forged form never changes anything: "write" tells the invariants that nothing may be stored
            # unless the answer says it was done (a 2xx/3xx with a valid token, which fuzzing cannot forge).
            return Draft(method, path(name), body=form[0], content_type=form[1], write=True, accept=b"text/html")

        return st.builds(build, names, _form())

    return drafts


def _indexed(path: Callable[[bytes, bytes], bytes], keys: list[bytes], *, post: bool = False) -> DraftStrategy:
    """Pages (or forms) under /index/<index>/: hostile index names and project names together."""

    def drafts(method: bytes, budget: Budget) -> st.SearchStrategy[Draft]:
        indexes = st.one_of(st.sampled_from(INDEX_NAMES), url_segment())
        inner = _posts if post else (lambda p: _pages(p, keys))
        return indexes.flatmap(lambda i: inner(lambda n: path(i, n))(method, budget))

    return drafts


def _static(method: bytes, _budget: Budget) -> st.SearchStrategy[Draft]:
    names = st.one_of(st.sampled_from(STATIC), url_segment())
    return st.builds(lambda n, q: Draft(method, b"/static/ui/" + n + q, accept=None), names, _query([b"v"]))


def _fixed(path: bytes, keys: list[bytes]) -> DraftStrategy:
    return _pages(lambda _name: path, keys)


UI_ROUTES: dict[tuple[str, str], DraftStrategy] = {}
for method in ("GET", "HEAD"):
    UI_ROUTES |= {
        (method, "/search"): _fixed(b"/search", [b"q", b"page", b"kind"]),
        (method, "/project/{name}"): _pages(lambda n: b"/project/" + n, [b"page"]),
        (method, "/project/{name}/"): _pages(lambda n: b"/project/" + n + b"/", [b"page", b"done", b"target"]),
        (method, "/project/{name}/delete"): _pages(lambda n: b"/project/" + n + b"/delete", [b"target"]),
        (method, "/static/ui/{filename}"): _static,
        (method, "/account/login"): _fixed(b"/account/login", [b"next"]),
        (method, "/account/tokens"): _fixed(b"/account/tokens", [b"created"]),
        (method, "/operations"): _fixed(b"/operations", []),
        (method, "/index/{index}"): _indexed(lambda i, _n: b"/index/" + i, []),
        (method, "/index/{index}/"): _indexed(lambda i, _n: b"/index/" + i + b"/", []),
        (method, "/index/{index}/search"): _indexed(
            lambda i, _n: b"/index/" + i + b"/search", [b"q", b"page", b"kind"]),
        (method, "/index/{index}/project/{name}"): _indexed(lambda i, n: b"/index/" + i + b"/project/" + n, [b"page"]),
        (method, "/index/{index}/project/{name}/"): _indexed(
            lambda i, n: b"/index/" + i + b"/project/" + n + b"/", [b"page", b"done", b"target"]),
        (method, "/index/{index}/project/{name}/delete"): _indexed(
            lambda i, n: b"/index/" + i + b"/project/" + n + b"/delete", [b"target"]),
    }
UI_ROUTES |= {
    ("POST", "/account/login"): _posts(lambda _n: b"/account/login"),
    ("POST", "/account/logout"): _posts(lambda _n: b"/account/logout"),
    ("POST", "/account/tokens"): _posts(lambda _n: b"/account/tokens"),
    ("POST", "/account/tokens/revoke"): _posts(lambda _n: b"/account/tokens/revoke"),
    ("POST", "/project/{name}/yank"): _posts(lambda n: b"/project/" + n + b"/yank"),
    ("POST", "/project/{name}/unyank"): _posts(lambda n: b"/project/" + n + b"/unyank"),
    ("POST", "/project/{name}/delete"): _posts(lambda n: b"/project/" + n + b"/delete"),
    ("POST", "/index/{index}/project/{name}/yank"): _indexed(
        lambda i, n: b"/index/" + i + b"/project/" + n + b"/yank", [], post=True),
    ("POST", "/index/{index}/project/{name}/unyank"): _indexed(
        lambda i, n: b"/index/" + i + b"/project/" + n + b"/unyank", [], post=True),
    ("POST", "/index/{index}/project/{name}/delete"): _indexed(
        lambda i, n: b"/index/" + i + b"/project/" + n + b"/delete", [], post=True),
}


def is_ui_route(key: tuple[str, str]) -> bool:
    return key in UI_ROUTES


__all__ = ["STATIC", "UI_ROUTES", "RawRequest", "is_ui_route"]
