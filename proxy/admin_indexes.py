"""Administrative commands of issue 14, on the data dir directly (server running or not): indexes, owners, scoped
tokens, promotion (push) and the audit log. The operator at the shell acts as "cli:<login>" in the audit log."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from proxy import members
from proxy.access import Act, Who, decide
from proxy.access.model import Access, IndexDef, Member, Role, TokenScope
from proxy.admin_data import Print, open_data
from proxy.audit import Actor, audit_entry, operator
from proxy.auth import generate_token, hash_token
from proxy.config import Config
from proxy.errors import ConfigError, Forbidden
from proxy.simple.names import parse_project_name

DAY = 86400.0


def _index(access: Access, name: str) -> IndexDef:
    index = access.indexes.get(name)
    if index is None:
        raise ConfigError(f"no index named {name!r} (known: {', '.join(access.indexes)})")
    return index


def index_list(config: Config, out: Print) -> int:
    access = config.access()
    out(f"{'index':<20} {'upstream':<9} {'chain':<40} read")
    for index in access.indexes.values():
        chain = " -> ".join(i.name for i in access.chain(index.name))
        out(f"{index.name:<20} {str(index.upstream).lower():<9} {chain:<40} {', '.join(sorted(index.read))}")
    return 0


async def index_show(config: Config, name: str, out: Print) -> int:
    access = config.access()
    index = _index(access, name)
    url = "/simple/" if index.name == "root" else f"/index/{index.name}/simple/"
    out(f"index:            {index.name}  ({url})")
    out(f"chain:            {' -> '.join(i.name for i in access.chain(index.name))}"
        f"{' -> upstream' if index.upstream else ''}")
    for label, entries in (("read", index.read), ("upload", index.upload), ("admin", index.admin)):
        out(f"{label + ':':<17} {', '.join(sorted(entries)) or '-'}")
    out(f"private_patterns: {', '.join(index.private_patterns) or '-'}")
    out(f"merge_upstream:   {', '.join(sorted(index.merge_upstream)) or '-'}")
    out(f"owners enforced:  {'yes' if index.owners else 'no (any uploader manages any project)'}")
    async with open_data(config) as (_backends, private):
        names = await private.names(index.name)
    out(f"private projects: {len(names)}" + (f" ({', '.join(names[:20])}{', …' if len(names) > 20 else ''})"
                                             if names else ""))
    return 0


async def owner_change(config: Config, action: str, project: str, principal: str, index: str, role: Role,
                       out: Print) -> int:
    access = config.access()
    _index(access, index)
    name = parse_project_name(project)
    async with open_data(config) as (backends, private):
        if index not in await private.holders(name):
            out(f"{name} is not a private project of index {index!r}")
            return 1
        if action == "list":
            for member in await backends.meta.project_members(index, name):
                out(f"{member.principal:<30} {member.role}")
            return 0
        checked = members.check_principal(principal, frozenset(access.groups))
        if action == "add":
            changed = await members.add_member(backends.meta, index, name, checked, role, operator())
        else:
            changed = await members.remove_member(backends.meta, index, name, checked, operator())
    out(f"{action} {checked} ({role}) on {name} in {index}: {'done' if changed else 'nothing to change'}")
    return 0


async def push(config: Config, project: str, version: str, source: str, target: str, as_user: str | None,
               out: Print) -> int:
    """Promote a release; with --as, only if that user may upload it to the target (else the operator decides)."""
    access = config.access()
    _index(access, source)
    goal = _index(access, target)
    name = parse_project_name(project)
    who = operator() if as_user is None else Actor(as_user, "cli")

    def gate(exists: bool, found: tuple[Member, ...]) -> None:
        if as_user is None:
            return
        decision = decide(Act.UPLOAD, Who(as_user, access.groups_of(as_user)), goal, project=name, exists=exists,
                          members=found, now=time.time())
        if not decision.allowed:
            raise Forbidden(decision.reason)

    async with open_data(config) as (backends, _private):
        pushed = await members.push(backends.meta, name, version, source, target, who, gate)
    out(f"pushed {name} {version} from {source} to {target}: " + (", ".join(pushed) or "already there"))
    return 0


async def token_create(config: Config, user: str, description: str | None, indexes: list[str],
                       project: str | None, read_only: bool, expires_days: float | None, out: Print) -> int:
    access = config.access()
    for name in indexes:
        _index(access, name)
    scope = TokenScope(
        frozenset(indexes), parse_project_name(project) if project else None,
        frozenset({"read"} if read_only else {"read", "upload"}),
        time.time() + expires_days * DAY if expires_days else None,
    )
    token = generate_token()
    async with open_data(config) as (backends, _private), backends.meta.transaction() as tx:
        token_id = await tx.add_token(user, hash_token(token), description, scope)
        detail = {"user": user, "indexes": sorted(scope.indexes), "project": scope.project,
                  "actions": sorted(scope.actions), "expires_at": scope.expires_at}
        await tx.add_audit(audit_entry(operator(), "token-create", None, None, str(token_id), detail))
    limits = [f"indexes {', '.join(indexes)}" if indexes else "every index", "read-only" if read_only else
              "read and upload"] + ([f"project {scope.project}"] if project else [])
    if scope.expires_at:
        limits.append(f"expires {_when(scope.expires_at)}")
    out(f"Created token {token_id} for {user} ({'; '.join(limits)}). It is shown only once; use it as the password")
    out("with username __token__ (twine, uv publish, pip). Revoke it with: shadowpi token revoke " + str(token_id))
    out(token)
    return 0


async def log(config: Config, index: str | None, project: str | None, since: str | None, out: Print) -> int:
    start = _since(since)
    name = parse_project_name(project) if project else None
    async with open_data(config) as (backends, _private):
        entries = await backends.meta.audit_entries(index=index, project=name, since=start, limit=10_000)
    for entry in reversed(entries):
        where = "/".join(p for p in (entry.index, entry.project) if p)
        detail = f" {json.dumps(json.loads(entry.detail), sort_keys=True)}" if entry.detail else ""
        out(f"{_when(entry.at)}  {entry.actor:<16} {entry.action:<13} {where} {entry.target or ''}"
            f"  [{entry.via}{', ' + entry.address if entry.address else ''}]{detail}")
    return 0


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() if "-" in text else float(text)
    except ValueError:
        raise ConfigError(f"--since: {text!r} is neither a date (2026-11-01) nor a Unix time") from None


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
