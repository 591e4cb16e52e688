"""Helpers for the web interface's tests: a shadowpi with users and a token, forms with their CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from proxy.ui.respond import CSP
from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import ProxyFactory
from tests.publishing import TOKEN, TOKEN_AUTH, add_token, twine_upload, write_htpasswd

USERS = {"alice": "alice-pw", "bob": "bob-pw"}  # alice is an admin ([ui] admins), bob is not
README_MD = (
    "# Acme utilities\n\nHelpers for **acme** services: retries, service discovery and structured logs.\n\n"
    "## Usage\n\n```python\nimport acme_utils\n\nclient = acme_utils.connect(\"billing\")\n```\n\n"
    "| feature | since |\n|---|---|\n| retries | 1.0 |\n| discovery | 2.0 |\n\n"
    "See the [changelog](https://git.example.invalid/acme/CHANGES.md) for details.\n"
)
HOSTILE_README = (
    "# Hostile\n\n<script>window.__pwned = 1</script>\n\n[click me](javascript:window.__pwned=2)\n\n"
    '<img src="x" onerror="window.__pwned=3">\n\n<a href="#" onclick="window.__pwned=4">also</a>\n'
)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def basic(user: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, USERS[user])}


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def acme_wheel(version: str = "1.0", *, description: str = README_MD, content_type: str = "text/markdown",
               **kw: Any) -> Artifact:
    headers = [f"Description-Content-Type: {content_type}", "Project-URL: Source, https://git.example.invalid/acme",
               "License: MIT"]
    return build_wheel("acme-utils", version, requires_python=">=3.9", description=description,
                       metadata_headers=headers, **kw)


def acme_sdist(version: str = "1.0", description: str = README_MD) -> Artifact:
    return build_sdist("acme-utils", version, description=description,
                       metadata_headers=["Description-Content-Type: text/markdown"])


@dataclass
class Ui:
    """A running shadowpi with an htpasswd (alice, bob), a token of alice's, and alice as [ui] admin."""

    client: TestClient
    data_dir: Path
    upstream: Upstream
    token_id: int

    async def upload(self, *artifacts: Artifact) -> None:
        for artifact in artifacts:
            resp = await twine_upload(self.client, artifact)
            assert resp.status == 200, await resp.text()

    async def page(self, path: str, **kw: Any) -> tuple[int, str]:
        resp = await self.client.get(path, **kw)
        return resp.status, await resp.text()

    async def sign_in(self, user: str, password: str | None = None) -> aiohttp.ClientResponse:
        """Sign in through the form (the client's cookie jar keeps the session)."""
        _status, html = await self.page("/account/login")
        form = {"csrf": csrf_of(html), "username": user, "password": password or USERS[user], "next": "/"}
        return await self.client.post("/account/login", data=form, allow_redirects=False)

    async def submit(self, page: str, action: str, fields: dict[str, str], **kw: Any) -> aiohttp.ClientResponse:
        """Post a form the way a browser would: with the CSRF token `page` rendered."""
        _status, html = await self.page(page, **kw)
        return await self.client.post(action, data={"csrf": csrf_of(html), **fields}, allow_redirects=False, **kw)


async def start_ui(make_proxy: ProxyFactory, upstream: Upstream, **sections: dict[str, Any]) -> Ui:
    htpasswd = write_htpasswd(make_proxy.data_dir.parent / "htpasswd", USERS)
    token_id = await add_token(make_proxy.data_dir, "alice")
    auth = {"htpasswd": str(htpasswd), **sections.pop("auth", {})}
    ui = {"admins": ["alice"], **sections.pop("ui", {})}
    client = await make_proxy(auth=auth, ui=ui, **sections)
    return Ui(client, make_proxy.data_dir, upstream, token_id)


def assert_security_headers(headers: Any) -> None:
    assert headers["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP and "default-src 'self'" in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


__all__ = ["TOKEN", "TOKEN_AUTH", "Ui", "acme_sdist", "acme_wheel", "basic", "csrf_of", "start_ui"]
