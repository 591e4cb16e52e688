"""PostgreSQL statements: API tokens (hashes only)."""

from __future__ import annotations

import secrets
import time

from proxy.access.model import TokenScope
from proxy.backends.postgres.base import Queries, Statements
from proxy.backends.records import TokenRecord, record_scope_columns, scope_columns, token_record

TOKEN_COLUMNS = ", ".join((  # what records.token_record reads, in its order
    "id", "user_name", "description", "created_at", "last_used", "revoked_at",
    "scope_indexes", "scope_project", "scope_actions", "expires_at",
))


class TokenReads(Queries):

    async def live_token(self, token_hash: str) -> TokenRecord | None:
        """The live (not revoked) token with this hash."""
        query = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL"  # noqa: S608 constant
        row = await self._one(query, token_hash)
        return token_record(row) if row is not None else None

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        if user is None:
            rows = await self._all(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id")  # noqa: S608 constant columns
        else:
            query = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_name = $1 ORDER BY id"  # noqa: S608 constant columns
            rows = await self._all(query, user)
        return [token_record(row) for row in rows]


class TokenWrites(TokenReads, Statements):

    async def add_token(
        self, user: str, token_hash: str, description: str | None = None, scope: TokenScope | None = None
    ) -> int:
        token_id = await self._db.fetchval(
            "INSERT INTO tokens (user_name, token_hash, description, created_at, scope_indexes, scope_project,"
            " scope_actions, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            user, token_hash, description, time.time(), *scope_columns(scope),
        )
        return int(token_id)

    async def revoke_token(self, token_id: int) -> bool:
        query = "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        return await self._run(query, time.time(), token_id) > 0

    async def restore_token(self, record: TokenRecord, token_hash: str) -> bool:
        changed = await self._run(
            "INSERT INTO tokens (user_name, token_hash, description, created_at, last_used, revoked_at, scope_indexes,"
            " scope_project, scope_actions, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (token_hash) DO UPDATE SET revoked_at = excluded.revoked_at"
            " WHERE tokens.revoked_at IS NULL AND excluded.revoked_at IS NOT NULL",
            record.user, token_hash, record.description, record.created_at, record.last_used, record.revoked_at,
            *record_scope_columns(record),
        )
        return changed > 0

    async def record_token_use(self, token_id: int, when: float, *, every: float) -> None:
        """Set last_used, unless it was set less than `every` seconds before `when`."""
        query = "UPDATE tokens SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $3)"
        await self._run(query, when, token_id, when - every)

    async def shared_secret(self, name: str, length: int) -> bytes:
        """The named secret, created with `length` random bytes when there is none (the first writer wins)."""
        await self._run(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            name, secrets.token_bytes(length), time.time(),
        )
        value = await self._db.fetchval("SELECT value FROM secrets WHERE name = $1", name)
        return bytes(value)
