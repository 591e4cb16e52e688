"""SQLite statements: project owners and maintainers, and the audit log (issue 14)."""

from __future__ import annotations

import time

from proxy.access.model import Member, Role
from proxy.backends.changes import Topic
from proxy.backends.records import AuditEntry
from proxy.backends.sqlite.base import Queries, Statements

_AUDIT = "at, actor, via, address, action, index_name, project, target, detail, id"


class AccessReads(Queries):

    async def project_members(self, index: str, project: str) -> list[Member]:
        query = "SELECT principal, role FROM project_members WHERE index_name = ? AND project = ? ORDER BY principal"
        return [Member(str(row[0]), row[1]) for row in await self._all(query, (index, project))]

    async def audit_entries(
        self, *, index: str | None = None, project: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        where, params = _filters(index, project, since)
        query = f"SELECT {_AUDIT} FROM audit_log{where} ORDER BY id DESC LIMIT ?"  # noqa: S608 constant parts
        return [AuditEntry(*row) for row in await self._all(query, (*params, limit))]


def _filters(index: str | None, project: str | None, since: float | None) -> tuple[str, tuple[object, ...]]:
    clauses, params = [], list[object]()
    for clause, value in (("index_name = ?", index), ("project = ?", project), ("at >= ?", since)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


class AccessWrites(AccessReads, Statements):

    async def add_member(self, index: str, project: str, principal: str, role: Role) -> bool:
        query = ("INSERT INTO project_members (index_name, project, principal, role, added_at) VALUES (?, ?, ?, ?, ?)"
                 " ON CONFLICT (index_name, project, principal) DO UPDATE SET role = excluded.role"
                 " WHERE project_members.role <> excluded.role")
        return await self._run(query, (index, project, principal, role, time.time()), topic=Topic.PRIVATE) > 0

    async def remove_member(self, index: str, project: str, principal: str) -> bool:
        query = "DELETE FROM project_members WHERE index_name = ? AND project = ? AND principal = ?"
        return await self._run(query, (index, project, principal), topic=Topic.PRIVATE) > 0

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._run(
            "INSERT INTO audit_log (at, actor, via, address, action, index_name, project, target, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.at, entry.actor, entry.via, entry.address, entry.action, entry.index, entry.project,
             entry.target, entry.detail),
        )
