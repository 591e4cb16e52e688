"""SQLite statements: API tokens (hashes only)."""

from __future__ import annotations

import secrets
import time

from proxy.access.model import TokenScope
from proxy.backends.records import TokenRecord, record_scope_columns, scope_columns, token_record
from proxy.backends.sqlite.base import Queries, Statements

TOKEN_COLUMNS = ", ".join((  # what records.token_record reads, in its order
    "id", "user_name", "description", "created_at", "last_used", "revoked_at",
    "scope_indexes", "scope_project", "scope_actions", "expires_at",
))


class TokenReads(Queries):

    async def live_token(self, token_hash: str) -> TokenRecord | None:
        """The live (not revoked) token with this hash."""
        query = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ? AND revoked_at IS NULL"  # noqa: S608 constant columns
        row = await self._one(query, (token_hash,))
        return token_record(row) if row else None

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        query, params = f"SELECT {TOKEN_COLUMNS} FROM tokens", tuple[str, ...]()  # noqa: S608 constant columns
        if user is not None:
            query, params = query + " WHERE user_name = ?", (user,)
        return [token_record(row) for row in await self._all(query + " ORDER BY id", params)]


class TokenWrites(TokenReads, Statements):

    async def add_token(
        self, user: str, token_hash: str, description: str | None = None, scope: TokenScope | None = None
    ) -> int:
        cursor = await self._conn.execute(
            "INSERT INTO tokens (user_name, token_hash, description, created_at, scope_indexes, scope_project,"
            " scope_actions, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (user, token_hash, description, time.time(), *scope_columns(scope)),
        )
        return int(cursor.lastrowid or 0)

    async def revoke_token(self, token_id: int) -> bool:
        query = "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        return await self._run(query, (time.time(), token_id)) > 0

    async def restore_token(self, record: TokenRecord, token_hash: str) -> bool:
        changed = await self._run(
            "INSERT INTO tokens (user_name, token_hash, description, created_at, last_used, revoked_at, scope_indexes,"
            " scope_project, scope_actions, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(token_hash) DO UPDATE SET revoked_at = excluded.revoked_at"
            " WHERE tokens.revoked_at IS NULL AND excluded.revoked_at IS NOT NULL",
            (record.user, token_hash, record.description, record.created_at, record.last_used, record.revoked_at,
             *record_scope_columns(record)),
        )
        return changed > 0

    async def record_token_use(self, token_id: int, when: float, *, every: float) -> None:
        """Set last_used, unless it was set less than `every` seconds before `when`."""
        query = "UPDATE tokens SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)"
        await self._run(query, (when, token_id, when - every))

    async def shared_secret(self, name: str, length: int) -> bytes:
        """The named secret, created with `length` random bytes when there is none (the first writer wins)."""
        await self._run(
            "INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?, ?, ?)",
            (name, secrets.token_bytes(length), time.time()),
        )
        row = await self._one("SELECT value FROM secrets WHERE name = ?", (name,))
        return bytes(row[0])
