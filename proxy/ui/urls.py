"""Where the pages link to: one helper for every UI link, relative to the page, with the index as a parameter.

Links are relative (like the simple API's), so a reverse proxy may mount shadowpi under a path prefix. `index`
None is the root index (`/project/<name>/`); issue 14's named indexes live under `/index/<index>/`. Nothing else
in the UI spells a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from proxy.simple.names import NormalizedName

_LOCAL_HOSTS = ("localhost", "127.", "[::1]")


def root_from(path: str) -> str:
    """The relative prefix from a page at `path` (an absolute request path) back to the site root."""
    depth = path[1:].count("/")
    return "../" * depth if depth else "./"


@dataclass(frozen=True, slots=True)
class Urls:
    """Links from one page. `root` leads from that page to the site root ("./", "../", "../../")."""

    root: str
    index: str | None = None

    @property
    def base(self) -> str:
        """The index's own root: the site root, or `index/<name>/` for a named index."""
        return self.root if self.index is None else f"{self.root}index/{quote(self.index, safe='')}/"

    def home(self) -> str:
        return self.base

    def search(self, query: str = "", kind: str = "all", page: int = 1) -> str:
        params = {k: v for k, v in (("q", query), ("kind", kind if kind != "all" else ""),
                                    ("page", str(page) if page > 1 else "")) if v}
        return f"{self.base}search" + (f"?{urlencode(params)}" if params else "")

    def project(self, name: NormalizedName, page: int = 1) -> str:
        return f"{self.base}project/{name}/" + (f"?page={page}" if page > 1 else "")

    def project_action(self, name: NormalizedName, action: str) -> str:
        """Form targets on a project: yank, unyank, delete."""
        return f"{self.base}project/{name}/{action}"

    def delete_confirm(self, name: NormalizedName, target: str) -> str:
        return f"{self.base}project/{name}/delete?{urlencode({'target': target})}"

    def simple(self) -> str:
        return f"{self.base}simple/"

    def file(self, path: str) -> str:
        """A download link; `path` is the simple API's own file path (files/<name>/<sha256>/<filename>), under the
        index's root (a named index's files are read-checked like its pages)."""
        return self.base + path

    def static(self, name: str, version: str) -> str:
        return f"{self.root}static/ui/{name}?v={version}"

    def login(self, next_path: str | None = None) -> str:
        return f"{self.root}account/login" + (f"?{urlencode({'next': next_path})}" if next_path else "")

    def logout(self) -> str:
        return f"{self.root}account/logout"

    def tokens(self) -> str:
        return f"{self.root}account/tokens"

    def tokens_revoke(self) -> str:
        return f"{self.root}account/tokens/revoke"

    def operations(self) -> str:
        return f"{self.root}operations"

    def site(self, path: str) -> str:
        """A root-level endpoint (health, ready, metrics)."""
        return self.root + path


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Absolute URLs for clients (pip, uv, poetry, twine), derived from how this request reached us."""

    origin: str  # scheme://host[:port] plus any trusted path prefix, no trailing slash
    index: str | None = None

    @property
    def base(self) -> str:
        return self.origin + ("/" if self.index is None else f"/index/{quote(self.index, safe='')}/")

    @property
    def simple(self) -> str:
        return self.base + "simple/"

    @property
    def upload(self) -> str:
        """twine's repository URL (the legacy upload API answers on the index root too)."""
        return self.base

    @property
    def legacy(self) -> str:
        """uv publish's and poetry's upload URL."""
        return self.base + "legacy/"

    @property
    def host(self) -> str:
        """host[:port], for pip's trusted-host on plain http."""
        return self.origin.split("://", 1)[-1].split("/", 1)[0]

    @property
    def is_https(self) -> bool:
        return self.origin.startswith("https://")

    @property
    def trusted_host(self) -> str | None:
        """What pip needs as --trusted-host: it ignores a plain-http index unless it is on this machine."""
        if self.is_https or self.host.startswith(_LOCAL_HOSTS):
            return None
        return self.host


def safe_next(path: str | None) -> str | None:
    """A sign-in's return path, only when it is a local absolute path (never another site: no `//host`, no
    scheme, no backslash that browsers read as a slash, no control characters)."""
    if not path or not path.startswith("/") or path.startswith("//"):
        return None
    if "\\" in path or not path.isprintable() or ":" in path.split("?", 1)[0]:
        return None
    return path
