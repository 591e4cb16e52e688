"""Administrative commands that work on a data dir directly (server running or not): tokens, yank, delete, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp

from proxy.access.model import ROOT
from proxy.admin_data import Print, open_data
from proxy.audit import audit_entry, operator
from proxy.auth import generate_token, hash_token
from proxy.config import Config
from proxy.errors import UpstreamUnavailable
from proxy.reaper import BlobReaper
from proxy.simple.names import NormalizedName, parse_project_name
from proxy.upstream import USER_AGENT, Missing, UpstreamClient


async def token_create(config: Config, user: str, description: str | None, out: Print) -> int:
    token = generate_token()
    async with open_data(config) as (backends, _private):
        token_id = await backends.meta.add_token(user, hash_token(token), description)
    out(f"Created token {token_id} for {user}. It is shown only once; use it as the password with")
    out("username __token__ (twine, uv publish, pip). Revoke it with: shadowpi token revoke " + str(token_id))
    out(token)
    return 0


async def token_list(config: Config, user: str | None, out: Print) -> int:
    async with open_data(config) as (backends, _private):
        tokens = await backends.meta.list_tokens(user)
    out(f"{'id':>4}  {'user':<16} {'created':<20} {'last used':<20} {'state':<8} description")
    for t in tokens:
        state = "revoked" if t.revoked_at else "active"
        used = _when(t.last_used)
        out(f"{t.id:>4}  {t.user:<16} {_when(t.created_at):<20} {used:<20} {state:<8} {t.description or ''}")
    return 0


async def token_revoke(config: Config, token_id: int, out: Print) -> int:
    async with open_data(config) as (backends, _private), backends.meta.transaction() as tx:
        revoked = await tx.revoke_token(token_id)
        if revoked:
            await tx.add_audit(audit_entry(operator(), "token-revoke", None, None, str(token_id)))
    out(f"Revoked token {token_id}." if revoked else f"No active token with id {token_id}.")
    return 0 if revoked else 1


async def change_files(
    config: Config, action: str, project: str, target: str, reason: str, out: Print, *, index: str = ROOT
) -> int:
    """yank / unyank / delete private files: `target` is a filename or a version (all of its files)."""
    async with open_data(config) as (_backends, private):
        selection = await private.select(parse_project_name(project), target, index)
        if action == "yank":
            await private.yank(selection, reason, operator())
        elif action == "unyank":
            await private.unyank(selection, operator())
        else:
            await private.delete(selection, operator())
    for record in selection.files:
        out(f"{action}: {record.filename}")
    return 0


async def cache_usage(config: Config, out: Print) -> int:
    async with open_data(config) as (backends, private):
        usage = await backends.meta.cache_usage()
        names = await private.names()
    limit = f"{config.cache.max_size:,} bytes" if config.cache.max_size else "unlimited"
    out(f"cached upstream files: {usage.files:,} ({usage.bytes:,} bytes, {usage.pinned_bytes:,} pinned)")
    out(f"cache limit:           {limit}")
    out(f"private projects:      {len(names):,} (never evicted)")
    return 0


async def cache_purge(config: Config, project: str, out: Print) -> int:
    """Forget a project's cached upstream page and delete its cached files (private files are untouched)."""
    name = parse_project_name(project)
    async with open_data(config) as (backends, _private):
        meta = backends.meta
        stored = await meta.drop_page(name)
        blobs: set[str | None] = set()
        for dist in stored.page.files if stored and stored.page else ():
            blobs.update((dist.sha256 or await meta.upstream_file_sha256(dist.url), dist.metadata_sha256))
        removed = len(await BlobReaper(meta, backends.blobs).reclaim(blobs))  # private uploads of the same bytes stay
    out(f"purged {name}: page {'dropped' if stored else 'was not cached'}, {removed} cached file(s) deleted")
    return 0


async def audit(config: Config, out: Print) -> int:
    """Private projects that also exist upstream, i.e. where shadowing is protecting installs right now.

    This asks upstream about every private name: an explicit operator action, never done by the server.
    """
    if config.upstream.offline:
        out("audit needs upstream, but upstream.offline is true")
        return 2
    async with open_data(config) as (backends, private):
        names = await private.names()
        held = await backends.meta.private_project_indexes()
    _shadowed_bases(config, held, out)
    if not names:
        out("No private projects.")
        return 0
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
        client = UpstreamClient(session, config.upstream)
        results = await asyncio.gather(*(_exists_upstream(client, name) for name in names))
    shadowed = [name for name, exists in zip(names, results, strict=True) if exists]
    for name, exists in zip(names, results, strict=True):
        state = {True: "SHADOWED (exists upstream)", False: "private only", None: "unknown (upstream error)"}[exists]
        merged = " [merge_upstream]" if name in config.policy.merge_upstream else ""
        out(f"{name:<40} {state}{merged}")
    out(f"{len(shadowed)} of {len(names)} private project(s) also exist upstream.")
    return 0


def _shadowed_bases(config: Config, held: list[tuple[str, NormalizedName]], out: Print) -> None:
    """Names a named index holds that a later index of its chain holds too: its readers get its own (issue 14)."""
    access = config.access()
    holders: dict[NormalizedName, set[str]] = {}
    for holder, name in held:
        holders.setdefault(name, set()).add(holder)
    for index in access.indexes.values():
        chain = access.chain(index.name)
        for name in sorted(n for i, n in held if i == index.name):
            hidden = [base.name for base in chain[1:] if base.name in holders[name]]
            if hidden:
                out(f"{name:<40} in index {index.name} SHADOWS its base(s) {', '.join(hidden)}")


async def _exists_upstream(client: UpstreamClient, name: str) -> bool | None:
    try:
        result = await client.fetch_project(parse_project_name(name))
    except UpstreamUnavailable:
        return None
    return not isinstance(result, Missing)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
