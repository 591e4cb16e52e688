"""Indexes, owners and permissions over HTTP (issue 14): two teams on one server, the permission table (user x
index x action -> the exact status), the hostile cases, shadowing across chains and the fake upstream's log."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.access import TokenScope
from proxy.auth import generate_token, hash_token
from proxy.simple.names import NormalizedName
from tests.artifacts import Artifact, build_wheel
from tests.conftest import Upstream
from tests.proxy_fixtures import JSON, ProxyFactory
from tests.publishing import twine_upload, write_htpasswd
from tests.stores import data_dir_meta

USERS = ("alice", "bob", "carol", "dora", "ci-reader")
CONFIG: dict[str, Any] = {
    "groups": {"ml": ["alice", "bob", "dora"], "web": ["carol"]},
    "indexes": {
        "ml": {"bases": ["root"], "read": ["group:ml", "ci-reader"], "upload": ["group:ml"], "admin": ["alice"],
               "private_patterns": ["acme-ml-*"]},
        "web": {"bases": ["root"], "upstream": True, "read": ["*"], "upload": ["group:web"]},
        "ml-release": {"read": ["*"], "upload": ["group:ml"]},
    },
}
ML_TOOL = build_wheel("ml-tool", "1.0")
ML_TOOL_2 = build_wheel("ml-tool", "2.0")
ML_NEW = build_wheel("ml-new", "1.0")
WEB_TOOL = build_wheel("web-tool", "1.0")
ROOT_LIB = build_wheel("root-lib", "1.0")
ML_ROOT_LIB = build_wheel("root-lib", "5.0")  # ml's own root-lib: shadows root's for ml's readers


def basic(user: str) -> tuple[str, str]:
    return (user, "pw")


@dataclass
class Teams:
    client: TestClient
    data_dir: Path
    upstream: Upstream
    tokens: dict[str, str]

    def auth(self, who: str | None) -> dict[str, str]:
        """Headers for a user (password), a named token ("tok:NAME"), or nobody."""
        if who is None:
            return {}
        if who.startswith("tok:"):
            return {"Authorization": aiohttp.encode_basic_auth("__token__", self.tokens[who[4:]])}
        return {"Authorization": aiohttp.encode_basic_auth(*basic(who))}

    async def upload(self, who: str | None, artifact: Artifact, index: str | None = "ml") -> int:
        path = f"/index/{index}/" if index else "/"
        resp = await twine_upload(self.client, artifact, auth=None, path=path, headers=self.auth(who))
        return resp.status

    async def get(self, who: str | None, path: str) -> aiohttp.ClientResponse:
        async with self.client.get(path, headers={**JSON, **self.auth(who)}) as resp:
            await resp.read()
            return resp

    async def post(self, who: str | None, path: str, body: Mapping[str, Any] | None = None) -> aiohttp.ClientResponse:
        async with self.client.post(path, json=body, headers=self.auth(who)) as resp:
            await resp.read()
            return resp


TOKENS = {
    "bob": TokenScope(),
    "bob-read": TokenScope(actions=frozenset({"read"})),
    "bob-expired": TokenScope(expires_at=1000.0),
    "bob-other-project": TokenScope(project=NormalizedName("ml-other")),
    "bob-web-only": TokenScope(indexes=frozenset({"web"})),
    "carol": TokenScope(),
    "ci-reader": TokenScope(actions=frozenset({"read"})),
}


@pytest.fixture
async def teams(make_proxy: ProxyFactory, populated_upstream: Upstream, tmp_path: Path) -> Teams:
    """Two teams (ml: alice admin, bob, dora; web: carol), ml-tool uploaded by bob to ml, web-tool by carol to web,
    root-lib by alice to root; tokens of TOKENS."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", dict.fromkeys(USERS, "pw"))
    tokens = {}
    async with data_dir_meta(make_proxy.data_dir) as meta:
        for name, scope in TOKENS.items():
            tokens[name] = generate_token()
            await meta.add_token(name.split("-")[0] if name != "ci-reader" else name, hash_token(tokens[name]),
                                 None, scope)
    client = await make_proxy(auth={"htpasswd": str(htpasswd)}, **CONFIG)
    found = Teams(client, make_proxy.data_dir, populated_upstream, tokens)
    assert await found.upload("bob", ML_TOOL) == 200
    assert await found.upload("carol", WEB_TOOL, "web") == 200
    assert await found.upload("alice", ROOT_LIB, None) == 200
    populated_upstream.fake.requests.clear()
    return found


def _file(artifact: Artifact, index: str = "ml") -> str:
    return f"/index/{index}/files/{artifact.project}/{artifact.sha256}/{artifact.filename}"


# (who, action, expected status). Actions: read-list, read-page, read-file, upload-new, upload-existing, yank, log.
PERMISSIONS = [
    (None, "read-list", 401),
    (None, "read-page", 401),
    (None, "read-file", 401),
    ("carol", "read-list", 403),
    ("carol", "read-page", 403),
    ("carol", "read-file", 403),
    ("tok:carol", "read-page", 403),
    ("ci-reader", "read-page", 200),
    ("tok:ci-reader", "read-file", 200),
    ("bob", "read-file", 200),
    ("dora", "read-page", 200),
    ("tok:bob-expired", "read-page", 401),
    ("tok:bob-web-only", "read-page", 403),
    (None, "upload-new", 403),
    ("carol", "upload-new", 403),
    ("tok:carol", "upload-existing", 403),  # team web's token uploading to team ml's project
    ("ci-reader", "upload-new", 403),
    ("tok:ci-reader", "upload-new", 403),
    ("tok:bob-read", "upload-existing", 403),  # a read-only token uploading
    ("tok:bob-expired", "upload-existing", 403),
    ("tok:bob-other-project", "upload-existing", 403),  # scoped to another project
    ("tok:bob-web-only", "upload-existing", 403),
    ("dora", "upload-existing", 403),  # in the group, not an owner or maintainer
    ("dora", "upload-new", 200),
    ("bob", "upload-existing", 200),  # the owner
    ("tok:bob", "upload-existing", 200),
    ("alice", "upload-existing", 200),  # index admin
    ("carol", "yank", 403),
    ("dora", "yank", 403),
    ("tok:bob-read", "yank", 403),
    ("bob", "yank", 200),
    ("alice", "yank", 200),
    ("bob", "log", 403),
    ("tok:bob-read", "log", 403),
    ("alice", "log", 200),
]


@pytest.mark.parametrize(("who", "action", "status"), PERMISSIONS)
async def test_permission_table(teams: Teams, who: str | None, action: str, status: int):
    """Each user, token or anonymous caller gets exactly this status for this action in index ml."""
    if action == "read-list":
        got = (await teams.get(who, "/index/ml/simple/")).status
    elif action == "read-page":
        got = (await teams.get(who, "/index/ml/simple/ml-tool/")).status
    elif action == "read-file":
        got = (await teams.get(who, _file(ML_TOOL))).status
    elif action == "upload-new":
        got = await teams.upload(who, ML_NEW)
    elif action == "upload-existing":
        got = await teams.upload(who, ML_TOOL_2)
    elif action == "yank":
        got = (await teams.post(who, "/api/indexes/ml/projects/ml-tool/1.0/yank")).status
    else:
        got = (await teams.get(who, "/api/indexes/ml/log")).status
    assert got == status


async def test_refusals_say_why(teams: Teams):
    """PyPI-like reasons: who may not do what, where; read-only, expired and scoped tokens say so."""
    resp = await twine_upload(teams.client, ML_TOOL_2, auth=basic("carol"), path="/index/ml/")
    assert resp.reason == "The user 'carol' isn't allowed to upload to project 'ml-tool' in index 'ml'."
    resp = await twine_upload(teams.client, ML_TOOL_2, auth=None, path="/index/ml/", headers=teams.auth("tok:bob-read"))
    assert resp.reason == "This API token is read-only: it may not upload to index 'ml'."
    resp = await teams.get("tok:bob-expired", "/index/ml/simple/")
    assert resp.reason == "This API token expired on 1970-01-01 00:16 UTC; create a new one (shadowpi token create)."
    resp = await twine_upload(teams.client, ML_TOOL_2, auth=None, path="/index/ml/",
                              headers=teams.auth("tok:bob-other-project"))
    assert resp.reason == "This API token is scoped to project 'ml-other', not 'ml-tool'."


async def test_a_file_url_guessed_across_indexes_is_a_404(teams: Teams):
    """ml's file under web's (or root's) URL is a 404, never its bytes, though web is world-readable."""
    for index in ("web", "ml-release"):
        resp = await teams.get(None, _file(ML_TOOL, index))
        assert resp.status == 404
    resp = await teams.get(None, f"/files/ml-tool/{ML_TOOL.sha256}/{ML_TOOL.filename}")
    assert resp.status == 404
    # (root and web do ask upstream about the name ml-tool: ml is not in their chains. A name every index must keep
    # from upstream goes in private_patterns, which apply everywhere: see the reserved-name test below.)
    resp = await teams.client.get(_file(ML_TOOL), headers=teams.auth("bob"))
    assert (resp.status, await resp.read()) == (200, ML_TOOL.data)
    assert resp.headers["Cache-Control"] == "private, max-age=31536000, immutable"


async def test_root_private_projects_show_through_ml_but_upstream_never_does(teams: Teams):
    """ml (bases root, upstream false): root's private project is there, an upstream project is a 404 and upstream
    is never asked; web (upstream true) gets it from upstream."""
    page = await teams.client.get("/index/ml/simple/root-lib/", headers={**JSON, **teams.auth("bob")})
    assert [f["filename"] for f in (await page.json(content_type=None))["files"]] == [ROOT_LIB.filename]
    assert (await teams.get("bob", "/index/ml/simple/tinylib/")).status == 404
    assert [p for p in teams.upstream.fake.requests if "tinylib" in p] == []
    assert (await teams.get(None, "/index/web/simple/tinylib/")).status == 200
    assert [p for p in teams.upstream.fake.requests if "tinylib" in p] != []
    listing = await teams.client.get("/index/ml/simple/", headers={**JSON, **teams.auth("bob")})
    assert [p["name"] for p in (await listing.json(content_type=None))["projects"]] == ["ml-tool", "root-lib"]


async def test_a_name_held_in_ml_shadows_the_base(teams: Teams):
    """ml's own root-lib hides root's root-lib for ml's readers; root's readers still see root's."""
    assert await teams.upload("bob", ML_ROOT_LIB) == 200
    page = await teams.client.get("/index/ml/simple/root-lib/", headers={**JSON, **teams.auth("bob")})
    assert [f["filename"] for f in (await page.json(content_type=None))["files"]] == [ML_ROOT_LIB.filename]
    page = await teams.client.get("/simple/root-lib/", headers=JSON)
    assert [f["filename"] for f in (await page.json(content_type=None))["files"]] == [ROOT_LIB.filename]


async def test_a_name_reserved_in_ml_is_never_asked_upstream_through_another_index(teams: Teams):
    """acme-ml-* is reserved by ml: asked through web or root (upstream true), a 404 and no upstream request."""
    teams.upstream.fake.add(build_wheel("acme-ml-secret", "9.0"))
    for path in ("/index/web/simple/acme-ml-secret/", "/simple/acme-ml-secret/"):
        resp = await teams.get(None, path)
        assert resp.status == 404
    assert [p for p in teams.upstream.fake.requests if "acme-ml" in p] == []


async def test_upload_urls_of_an_index_and_an_unknown_index(teams: Teams):
    """/index/ml/legacy/ takes uploads like /index/ml/; an unknown index is a 404 for reads and uploads."""
    resp = await twine_upload(teams.client, ML_NEW, auth=basic("bob"), path="/index/ml/legacy/")
    assert resp.status == 200
    assert (await teams.get("bob", "/index/nope/simple/")).status == 404
    assert await teams.upload("bob", ML_NEW, "nope") == 404


async def test_owners_add_maintainers_who_may_then_upload(teams: Teams):
    """bob (owner) adds dora as maintainer; dora may then upload; dora may not manage owners; the owners list."""
    assert await teams.upload("dora", ML_TOOL_2) == 403
    resp = await teams.post("dora", "/api/indexes/ml/projects/ml-tool/owners", {"principal": "dora"})
    assert resp.status == 403
    resp = await teams.post("bob", "/api/indexes/ml/projects/ml-tool/owners", {"principal": "dora"})
    assert resp.status == 200
    assert await teams.upload("dora", ML_TOOL_2) == 200
    listing = await teams.client.get("/api/indexes/ml/projects/ml-tool/owners", headers=teams.auth("bob"))
    assert (await listing.json())["members"] == [{"principal": "bob", "role": "owner"},
                                                 {"principal": "dora", "role": "maintainer"}]
    async with teams.client.delete("/api/indexes/ml/projects/ml-tool/owners?principal=bob",
                                   headers=teams.auth("bob")) as resp:
        assert resp.status == 400  # the last owner stays


async def test_push_promotes_the_same_bytes_and_the_target_rules_apply(teams: Teams):
    """bob pushes ml-tool 1.0 from ml to ml-release: the same bytes and hash there (anyone reads ml-release); carol
    may not push into ml-release; the audit log records upload, push and yank."""
    body = {"project": "ml-tool", "version": "1.0", "to": "ml-release"}
    assert (await teams.post("carol", "/api/indexes/ml/push", body)).status == 403
    resp = await teams.post("bob", "/api/indexes/ml/push", body)
    assert resp.status == 200
    got = await teams.client.get(_file(ML_TOOL, "ml-release"))
    assert (got.status, await got.read()) == (200, ML_TOOL.data)
    assert (await teams.post("bob", "/api/indexes/ml/projects/ml-tool/1.0/yank")).status == 200
    log = await teams.client.get("/api/indexes/ml/log", headers=teams.auth("alice"))
    entries = (await log.json())["entries"]
    assert [(e["action"], e["actor"], e["project"]) for e in entries] == [
        ("yank", "bob", "ml-tool"), ("push", "bob", "ml-tool"), ("upload", "bob", "ml-tool")]
    assert entries[2]["address"] == "127.0.0.1"
    assert json.loads(entries[1]["detail"]) == {"files": [ML_TOOL.filename], "to": "ml-release"}
    assert time.time() - entries[0]["at"] < 3600


async def test_root_is_unchanged_by_named_indexes(teams: Teams):
    """Root keeps today's rule with no [indexes.root]: any user uploads to and yanks any root project."""
    assert await teams.upload("carol", build_wheel("root-lib", "2.0"), None) == 200
    assert (await teams.post("carol", "/api/projects/root-lib/1.0/yank")).status == 200
    assert (await teams.get(None, "/simple/root-lib/")).status == 200


async def test_a_pushed_file_keeps_its_bytes_when_deleted_from_the_source(teams: Teams):
    """Push shares the blob: deleting the release from ml leaves ml-release's copy serving the same bytes."""
    body = {"project": "ml-tool", "version": "1.0", "to": "ml-release"}
    assert (await teams.post("bob", "/api/indexes/ml/push", body)).status == 200
    async with teams.client.delete("/api/indexes/ml/projects/ml-tool/1.0", headers=teams.auth("bob")) as resp:
        assert resp.status == 200
    assert (await teams.get("bob", _file(ML_TOOL))).status == 404
    got = await teams.client.get(_file(ML_TOOL, "ml-release"))
    assert (got.status, await got.read()) == (200, ML_TOOL.data)


async def test_under_auth_read_a_token_scoped_to_ml_does_not_read_root(make_proxy: ProxyFactory,
                                                                      populated_upstream: Upstream, tmp_path: Path):
    """[auth] read = true: bob's token limited to index ml gets 403 on root's pages and files; his unscoped
    token and his password read root."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"bob": "pw"})
    scoped, plain = generate_token(), generate_token()
    async with data_dir_meta(make_proxy.data_dir) as meta:
        await meta.add_token("bob", hash_token(scoped), None, TokenScope(indexes=frozenset({"ml"})))
        await meta.add_token("bob", hash_token(plain))
    client = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True}, **CONFIG)
    for token, status in ((scoped, 403), (plain, 200)):
        headers = {"Authorization": aiohttp.encode_basic_auth("__token__", token)}
        async with client.get("/simple/tinylib/", headers=headers) as resp:
            assert resp.status == status
    async with client.get("/index/ml/simple/", headers={"Authorization": aiohttp.encode_basic_auth(
            "__token__", scoped)}) as resp:
        assert resp.status == 200
