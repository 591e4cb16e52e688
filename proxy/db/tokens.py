"""Queries: API tokens (hashes only)."""

from __future__ import annotations

import sqlite3
import time

from proxy.db.base import Queries
from proxy.db.records import TokenRecord


class TokenQueries(Queries):

    async def add_token(self, user: str, token_hash: str, description: str | None = None) -> int:
        """Store a new token's hash; returns its id."""
        cur = await self._conn.execute(
            "INSERT INTO tokens (user, token_hash, description, created_at) VALUES (?, ?, ?, ?)",
            (user, token_hash, description, time.time()),
        )
        await self._conn.commit()
        return int(cur.lastrowid or 0)

    async def token_user(self, token_hash: str) -> str | None:
        """The user owning a live (not revoked) token with this hash; records its use."""
        query = "SELECT id, user FROM tokens WHERE token_hash = ? AND revoked_at IS NULL"
        row = await self._one(query, (token_hash,))
        if row is None:
            return None
        # Throttled: a 50-file install with a token must not mean 50 write commits.
        now = time.time()
        try:
            await self._conn.execute(
                "UPDATE tokens SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)",
                (now, row[0], now - 60),
            )
            # Always: the UPDATE opened a write transaction even when it changed nothing, and an open one holds
            # the database's write lock against every other writer (workers, commands) until something commits.
            await self._conn.commit()
        except sqlite3.OperationalError:  # a full disk: the use goes unrecorded, the token still works
            await self._conn.rollback()
        return str(row[1])

    async def revoke_token(self, token_id: int) -> bool:
        """Revoke a token by id; False when no live token has that id."""
        cur = await self._conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), token_id)
        )
        await self._conn.commit()
        return cur.rowcount > 0

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        """Tokens (optionally of one user), oldest first."""
        query = "SELECT id, user, description, created_at, last_used, revoked_at FROM tokens"
        params: tuple[str, ...] = ()
        if user is not None:
            query += " WHERE user = ?"
            params = (user,)
        async with self._conn.execute(query + " ORDER BY id", params) as cur:
            return [TokenRecord(*row) async for row in cur]
