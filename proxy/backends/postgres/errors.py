"""Which asyncpg errors mean "the connection is gone" (as opposed to a statement's own error)."""

from __future__ import annotations

import asyncpg

__all__ = ["CONNECTION_ERRORS", "DATABASE_ERRORS"]

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    asyncpg.InterfaceError,  # the connection is closed, or in a state no query can be sent in
    asyncpg.PostgresConnectionError,  # class 08: the connection does not exist, failed, was closed mid-operation
    asyncpg.exceptions.OperatorInterventionError,  # class 57: pg_terminate_backend, shutdown, cannot connect now
)

# Anything PostgreSQL or the connection to it can raise.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
