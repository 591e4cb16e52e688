"""The index management API besides files: owners and maintainers
(`/api/indexes/<name>/projects/<project>/owners`), promotion (`POST /api/indexes/<name>/push`) and the audit log
(`GET /api/indexes/<name>/log`, index admins only)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from proxy import members
from proxy.access import Act, Member
from proxy.errors import BadRequest, IndexNotFound, ProjectNotFound
from proxy.keys import ACCESS, BACKENDS, PRIVATE
from proxy.simple.names import NormalizedName, parse_project_name
from proxy.web.access import actor, allow, index_of, readable_index, writer

routes = web.RouteTableDef()


async def _held_project(request: web.Request, index: str) -> NormalizedName:
    project = parse_project_name(request.match_info["project"])
    if index not in await request.app[PRIVATE].holders(project):
        raise ProjectNotFound(f"{project} is not a private project of index {index!r}")
    return project


@routes.get("/api/projects/{project}/owners")
@routes.get("/api/indexes/{index}/projects/{project}/owners")
async def list_owners(request: web.Request) -> web.Response:
    index = await readable_index(request)
    project = await _held_project(request, index.name)
    found = await request.app[BACKENDS].meta.project_members(index.name, project)
    return web.json_response({"project": project, "index": index.name,
                              "members": [{"principal": m.principal, "role": m.role} for m in found]})


@routes.post("/api/projects/{project}/owners")
@routes.post("/api/indexes/{index}/projects/{project}/owners")
async def add_owner(request: web.Request) -> web.Response:
    """Body: {"principal": "bob" | "group:NAME", "role": "owner" | "maintainer"} (default maintainer)."""
    index, identity = index_of(request), await writer(request)
    project = await _held_project(request, index.name)
    body = await _body(request)
    role = body.get("role", "maintainer")
    if role not in ("owner", "maintainer"):
        raise BadRequest('role must be "owner" or "maintainer"')
    principal = members.check_principal(str(body.get("principal", "")), frozenset(request.app[ACCESS].current.groups))
    meta = request.app[BACKENDS].meta
    allow(request, Act.OWNERS, identity, index, project=project,
          members=tuple(await meta.project_members(index.name, project)))
    changed = await members.add_member(meta, index.name, project, principal, role, actor(request, identity))
    return web.json_response({"principal": principal, "role": role, "changed": changed})


@routes.delete("/api/projects/{project}/owners")
@routes.delete("/api/indexes/{index}/projects/{project}/owners")
async def remove_owner(request: web.Request) -> web.Response:
    """The principal in ?principal= (or a JSON body {"principal": ...})."""
    index, identity = index_of(request), await writer(request)
    project = await _held_project(request, index.name)
    principal = request.query.get("principal") or str((await _body(request)).get("principal", ""))
    meta = request.app[BACKENDS].meta
    allow(request, Act.OWNERS, identity, index, project=project,
          members=tuple(await meta.project_members(index.name, project)))
    changed = await members.remove_member(meta, index.name, project, principal, actor(request, identity))
    return web.json_response({"principal": principal, "changed": changed})


@routes.post("/api/indexes/{index}/push")
async def push(request: web.Request) -> web.Response:
    """Body: {"project": ..., "version": ..., "to": INDEX}: the release's files become visible in INDEX as well."""
    source, identity = index_of(request), await writer(request)
    body = await _body(request)
    project = parse_project_name(str(body.get("project", "")))
    target = request.app[ACCESS].current.indexes.get(str(body.get("to", "")))
    if target is None:
        raise IndexNotFound(f"no index named {body.get('to')!r} to push to")
    allow(request, Act.READ, identity, source, project=project)

    def gate(exists: bool, found: tuple[Member, ...]) -> None:
        allow(request, Act.UPLOAD, identity, target, project=project, exists=exists, members=found)

    pushed = await members.push(request.app[BACKENDS].meta, project, str(body.get("version", "")), source.name,
                                target.name, actor(request, identity), gate)
    return web.json_response({"project": project, "to": target.name, "pushed": pushed})


@routes.get("/api/indexes/{index}/log")
async def audit_log(request: web.Request) -> web.Response:
    """?project=NAME&since=EPOCH: newest first, index admins only (root's with [indexes.root] admin)."""
    index, identity = index_of(request), await writer(request)
    allow(request, Act.LOG, identity, index)
    try:
        since = float(request.query["since"]) if "since" in request.query else None
    except ValueError:
        raise BadRequest("since must be a Unix time in seconds") from None
    project = parse_project_name(request.query["project"]) if "project" in request.query else None
    entries = await request.app[BACKENDS].meta.audit_entries(index=index.name, project=project, since=since)
    return web.json_response({"entries": [dataclasses.asdict(e) for e in entries]},
                             headers={"Cache-Control": "private, no-store"})


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body
