"""PostgreSQL statements: project owners and maintainers, and the audit log (issue 14). Member changes decide on
private state (who may upload), so they take the private-state lock like every private write."""

from __future__ import annotations

import time

from proxy.access.model import Member, Role
from proxy.backends.changes import Topic
from proxy.backends.postgres.base import Queries, Statements
from proxy.backends.records import AuditEntry

_AUDIT = "at, actor, via, address, action, index_name, project, target, detail, id"


class AccessReads(Queries):

    async def project_members(self, index: str, project: str) -> list[Member]:
        query = "SELECT principal, role FROM project_members WHERE index_name = $1 AND project = $2 ORDER BY principal"
        return [Member(str(row[0]), row[1]) for row in await self._all(query, index, project)]

    async def audit_entries(
        self, *, index: str | None = None, project: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        clauses, params = [], list[object]()
        for column, value in (("index_name =", index), ("project =", project), ("at >=", since)):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} ${len(params)}")
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        query = f"SELECT {_AUDIT} FROM audit_log{where} ORDER BY id DESC LIMIT ${len(params) + 1}"  # noqa: S608 constant parts
        return [AuditEntry(*row) for row in await self._all(query, *params, limit)]


class AccessWrites(AccessReads, Statements):

    async def project_members(self, index: str, project: str) -> list[Member]:
        await self._lock_private()
        return await super().project_members(index, project)

    async def add_member(self, index: str, project: str, principal: str, role: Role) -> bool:
        await self._lock_private()
        query = ("INSERT INTO project_members (index_name, project, principal, role, added_at)"
                 " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (index_name, project, principal)"
                 " DO UPDATE SET role = excluded.role WHERE project_members.role <> excluded.role")
        return await self._run(query, index, project, principal, role, time.time(), topic=Topic.PRIVATE) > 0

    async def remove_member(self, index: str, project: str, principal: str) -> bool:
        await self._lock_private()
        query = "DELETE FROM project_members WHERE index_name = $1 AND project = $2 AND principal = $3"
        return await self._run(query, index, project, principal, topic=Topic.PRIVATE) > 0

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._run(
            "INSERT INTO audit_log (at, actor, via, address, action, index_name, project, target, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            entry.at, entry.actor, entry.via, entry.address, entry.action, entry.index, entry.project,
            entry.target, entry.detail,
        )
