"""Project owners and maintainers (issue 14), and promotion of a release from one index to another (push). Each
change is written with its audit entry in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from packaging.version import InvalidVersion, Version

from proxy.access.model import GROUP_PREFIX, Member, Role
from proxy.audit import Actor, audit_entry
from proxy.backends.metadata import MetadataStore
from proxy.backends.records import AuditEntry
from proxy.errors import BadRequest, FileExists, FileNotFound, InvalidUpload
from proxy.simple.names import NormalizedName

# Raises Forbidden unless the pusher may upload to the target project (which exists or not, with these members).
PushGate = Callable[[bool, tuple[Member, ...]], None]


def check_principal(principal: str, groups: frozenset[str]) -> str:
    """A user name or "group:NAME" of a configured group. Raises BadRequest."""
    if not principal or any(c.isspace() for c in principal) or principal in {"*", "authenticated"}:
        raise BadRequest(f"{principal!r} is not a user name or group:NAME")
    if principal.startswith(GROUP_PREFIX) and principal.removeprefix(GROUP_PREFIX) not in groups:
        raise BadRequest(f"unknown group {principal!r} (groups are defined under [groups] in the config)")
    return principal


def owner_added(who: Actor, index: str, project: str, principal: str, role: Role, **detail: str) -> AuditEntry:
    """The audit entry of an owner or maintainer set (added, or given another role); `detail`: more to say."""
    return audit_entry(who, "owner-add", index, project, principal, {"role": role, **detail})


async def add_member(db: MetadataStore, index: str, project: NormalizedName, principal: str, role: Role,
                     who: Actor) -> bool:
    async with db.transaction() as tx:
        changed = await tx.add_member(index, project, principal, role)
        if changed:
            await tx.add_audit(owner_added(who, index, project, principal, role))
    return changed


async def remove_member(db: MetadataStore, index: str, project: NormalizedName, principal: str, who: Actor) -> bool:
    """Raises BadRequest when it would leave the project without an owner."""
    async with db.transaction() as tx:
        members = await tx.project_members(index, project)
        owners = {m.principal for m in members if m.role == "owner"}
        if owners == {principal}:
            raise BadRequest(f"{principal!r} is the last owner of {project}: add another owner first")
        changed = await tx.remove_member(index, project, principal)
        if changed:
            await tx.add_audit(audit_entry(who, "owner-remove", index, project, principal))
    return changed


async def push(db: MetadataStore, project: NormalizedName, version: str, source: str, target: str, who: Actor,
               gate: PushGate) -> list[str]:
    """Make a release's files of `source` visible in `target` too: the same bytes and hashes (rows pointing at the
    same blobs, nothing copied). Files already there with the same bytes are skipped. Raises FileNotFound, FileExists
    (the target has that filename with other bytes), InvalidUpload (a deleted filename's reuse), Forbidden."""
    files = [f for f in await db.private_files(project, source) if _same_version(f.version, version)]
    if not files:
        raise FileNotFound(f"{project} has no private files of version {version!r} in index {source!r}")
    pushed = []
    async with db.transaction() as tx:
        created = await tx.add_private_project(project, target, created_by=who.user)
        gate(not created, tuple(await tx.project_members(target, project)))
        for record in files:
            there = await tx.private_file(record.filename, target)
            if there is not None:
                if there.sha256 != record.sha256:
                    raise FileExists(f"File already exists ('{record.filename}' in index {target!r}, other bytes).")
                continue
            gone = await tx.deleted_sha256(record.filename, target)
            if gone is not None and gone != record.sha256:
                raise InvalidUpload(f"{record.filename} was deleted from index {target!r} and may not come back with"
                                    " other bytes.")
            await tx.add_private_file(replace(record, index=target, yanked=None))
            pushed.append(record.filename)
        if created:
            await tx.add_member(target, project, who.user, "owner")
        await tx.add_audit(audit_entry(who, "push", source, project, version, {"to": target, "files": pushed}))
    return pushed


def _same_version(stored: str, wanted: str) -> bool:
    try:
        return Version(stored) == Version(wanted)
    except InvalidVersion:
        return stored == wanted
