"""Contract: the bulk reads of `shadowpi export`."""

from __future__ import annotations

from proxy.backends.records import DeletedFile
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import SHA_A, SHA_B, missing_page, private_file, stored_page


async def test_bundle_reads_return_everything_in_a_stable_order(backends: BackendsUnderTest) -> None:
    """Pages (404s excluded) by name, private files by project and filename, deleted files by filename, blob
    creation times and upstream file mappings."""
    meta = backends.meta
    await meta.put_page(NormalizedName("zlib"), stored_page("zlib"))
    await meta.put_page(NormalizedName("alib"), stored_page("alib"))
    await meta.put_page(NormalizedName("gone"), missing_page())
    await meta.add_private_file(private_file("b-1.0.tar.gz", project="b"))
    await meta.add_private_file(private_file("a-2.0.tar.gz", project="a", version="2.0"))
    await meta.add_private_file(private_file("a-1.0.tar.gz", project="a"))
    await meta.add_deleted_file(DeletedFile("z-1.0.tar.gz", SHA_A, 3.0))
    await meta.add_deleted_file(DeletedFile("c-1.0.tar.gz", SHA_B, 4.0))
    await meta.record_blob(SHA_A, 10, now=7.0)
    await meta.remember_upstream_file("https://files.example/x.tar.gz", SHA_B)
    assert [(name, stored) for name, stored in await meta.bundle_pages()] == [
        (NormalizedName("alib"), stored_page("alib")), (NormalizedName("zlib"), stored_page("zlib"))
    ]
    assert [f.filename for f in await meta.bundle_private_files()] == ["a-1.0.tar.gz", "a-2.0.tar.gz", "b-1.0.tar.gz"]
    assert await meta.bundle_deleted_files() == [DeletedFile("c-1.0.tar.gz", SHA_B, 4.0),
                                                 DeletedFile("z-1.0.tar.gz", SHA_A, 3.0)]
    assert await meta.bundle_blob_times() == {SHA_A: 7.0}
    assert await meta.bundle_upstream_files() == {"https://files.example/x.tar.gz": SHA_B}
