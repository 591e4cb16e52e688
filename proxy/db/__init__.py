"""Database edge: one aiosqlite connection, schema migrations, and queries that return models, never rows.

Nothing outside this module knows the backend is SQLite; a future PostgreSQL backend implements the same methods.
"""

from proxy.db.changes import Topic
from proxy.db.database import Database
from proxy.db.records import (
    BlobRecord,
    CacheUsage,
    DeletedFile,
    DuplicateFilename,
    PrivateFile,
    StoredPage,
    TokenRecord,
)
from proxy.db.schema import DB_FILENAME, MIGRATIONS

__all__ = [
    "DB_FILENAME",
    "MIGRATIONS",
    "BlobRecord",
    "CacheUsage",
    "Database",
    "DeletedFile",
    "DuplicateFilename",
    "PrivateFile",
    "StoredPage",
    "TokenRecord",
    "Topic",
]
