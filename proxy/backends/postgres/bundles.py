"""PostgreSQL statements: the bulk reads of `shadowpi export`."""

from __future__ import annotations

from proxy.access.model import ROOT
from proxy.backends.postgres.pages import PageReads
from proxy.backends.postgres.private import PRIVATE_COLUMNS
from proxy.backends.postgres.tokens import TOKEN_COLUMNS
from proxy.backends.records import DeletedFile, PrivateFile, StoredPage, TokenRecord, token_record
from proxy.simple.names import NormalizedName


class BundleReads(PageReads):

    async def bundle_pages(self) -> list[tuple[NormalizedName, StoredPage]]:
        names = await self.cached_projects()
        found = [(name, await self.get_page(name)) for name in names]  # one page in flight at a time, as in SQLite
        return [(name, stored) for name, stored in found if stored is not None and stored.page is not None]

    async def bundle_blob_times(self) -> dict[str, float]:
        return {str(row[0]): float(row[1]) for row in await self._all("SELECT sha256, created_at FROM blobs")}

    async def bundle_upstream_files(self) -> dict[str, str]:
        return {str(row[0]): str(row[1]) for row in await self._all("SELECT url, sha256 FROM upstream_files")}

    async def bundle_private_files(self, index: str | None = ROOT) -> list[PrivateFile]:
        where, params = ("", ()) if index is None else ("WHERE index_name = $1 ", (index,))
        query = f"SELECT {PRIVATE_COLUMNS} FROM private_files {where}ORDER BY project, filename"  # noqa: S608 constant columns
        return [PrivateFile(*row) for row in await self._all(query, *params)]

    async def bundle_tokens(self) -> list[tuple[TokenRecord, str]]:
        query = f"SELECT {TOKEN_COLUMNS}, token_hash FROM tokens ORDER BY id"  # noqa: S608 constant columns
        return [(token_record(row[:-1]), str(row[-1])) for row in await self._all(query)]

    async def bundle_deleted_files(self, index: str = ROOT) -> list[DeletedFile]:
        query = "SELECT filename, sha256, deleted_at FROM deleted_files WHERE index_name = $1 ORDER BY filename"
        rows = await self._all(query, index)
        return [DeletedFile(str(r[0]), str(r[1]), float(r[2]), index) for r in rows]
