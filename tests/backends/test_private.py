"""Contract: private files, private names, deleted filenames."""

from __future__ import annotations

import asyncio

import pytest

from proxy.backends.metadata import DuplicateFilename
from proxy.backends.records import DeletedFile
from proxy.simple.names import NormalizedName
from tests.backends.conftest import BackendsUnderTest
from tests.backends.samples import SHA_A, SHA_B, SHA_C, private_file

ACME = NormalizedName("acme")
SDIST, WHEEL = "acme-1.0.tar.gz", "acme-1.0-py3-none-any.whl"


async def test_added_files_are_listed_by_filename_and_make_the_name_private(backends: BackendsUnderTest) -> None:
    """A private file is found by filename and in its project's list (sorted); its project becomes private."""
    meta = backends.meta
    await meta.add_private_file(private_file(WHEEL, SHA_B, metadata_sha256=SHA_C))
    await meta.add_private_file(private_file(SDIST, SHA_A))
    assert await meta.private_file(SDIST) == private_file(SDIST, SHA_A)
    assert [f.filename for f in await meta.private_files(ACME)] == [WHEEL, SDIST]
    assert await meta.private_files(NormalizedName("other")) == []
    assert await meta.private_projects() == [ACME]


async def test_a_taken_filename_raises_duplicate_filename_unless_replacing(backends: BackendsUnderTest) -> None:
    """Adding an existing filename raises DuplicateFilename and changes nothing; with replace=True it replaces."""
    meta = backends.meta
    await meta.add_private_file(private_file(SDIST, SHA_A))
    with pytest.raises(DuplicateFilename):
        await meta.add_private_file(private_file(SDIST, SHA_B))
    assert (await meta.private_file(SDIST)) == private_file(SDIST, SHA_A)
    await meta.add_private_file(private_file(SDIST, SHA_B), replace=True)
    assert (await meta.private_file(SDIST)) == private_file(SDIST, SHA_B)


async def test_racing_adds_of_one_filename_in_two_processes_leave_one(backends: BackendsUnderTest) -> None:
    """Two processes adding the same filename at once: one succeeds, the other gets DuplicateFilename."""
    async with backends.reopen() as other:
        results = await asyncio.gather(
            backends.meta.add_private_file(private_file(SDIST, SHA_A)),
            other.meta.add_private_file(private_file(SDIST, SHA_B)),
            return_exceptions=True,
        )
    assert sorted(type(r).__name__ for r in results) == ["DuplicateFilename", "NoneType"]
    winner = SHA_A if results[0] is None else SHA_B
    stored = await backends.meta.private_file(SDIST)
    assert stored is not None and stored.sha256 == winner


async def test_yank_and_unyank_count_the_files_they_change(backends: BackendsUnderTest) -> None:
    """set_yanked sets a reason (possibly empty) or clears it (None), and counts the rows it names."""
    meta = backends.meta
    await meta.add_private_file(private_file(SDIST))
    await meta.add_private_file(private_file(WHEEL, SHA_B))
    assert await meta.set_yanked([SDIST, WHEEL], "broken") == 2
    assert [f.yanked for f in await meta.private_files(ACME)] == ["broken", "broken"]
    assert await meta.set_yanked([SDIST], "") == 1
    assert (await meta.private_file(SDIST)) == private_file(SDIST, yanked="")
    assert await meta.set_yanked([SDIST, "nothing.tar.gz"], None) == 1
    assert (await meta.private_file(SDIST)) == private_file(SDIST)


async def test_deleted_files_are_remembered_and_the_name_stays_private(backends: BackendsUnderTest) -> None:
    """delete_private_files removes the rows, remembers each filename's sha256, and the project stays private."""
    meta = backends.meta
    await meta.add_private_file(private_file(SDIST, SHA_A))
    await meta.add_private_file(private_file(WHEEL, SHA_B))
    await meta.delete_private_files([private_file(SDIST, SHA_A)])
    assert await meta.private_file(SDIST) is None
    assert await meta.deleted_sha256(SDIST) == SHA_A
    assert await meta.deleted_sha256(WHEEL) is None
    await meta.delete_private_files(await meta.private_files(ACME))
    assert await meta.private_files(ACME) == []
    assert await meta.private_projects() == [ACME]


async def test_imported_names_deletions_and_removals(backends: BackendsUnderTest) -> None:
    """add_private_project and add_deleted_file say whether they added anything (an import counts them);
    remove_private_file drops a row without remembering it."""
    meta = backends.meta
    assert await meta.add_private_project(ACME) is True
    assert await meta.add_private_project(ACME) is False
    gone = DeletedFile(SDIST, SHA_A, 12.0)
    assert await meta.add_deleted_file(gone) is True
    assert await meta.add_deleted_file(DeletedFile(SDIST, SHA_B, 13.0)) is False  # the first one stays
    assert await meta.deleted_sha256(SDIST) == SHA_A
    await meta.add_private_file(private_file(WHEEL, SHA_B))
    await meta.remove_private_file(WHEEL)
    assert await meta.private_file(WHEEL) is None
    assert await meta.deleted_sha256(WHEEL) is None


async def test_a_blob_is_private_while_a_file_or_its_metadata_is_it(backends: BackendsUnderTest) -> None:
    """is_private_blob: true for a private file's blob and for its metadata file's blob, false otherwise."""
    meta = backends.meta
    await meta.add_private_file(private_file(WHEEL, SHA_A, metadata_sha256=SHA_B))
    assert [await meta.is_private_blob(sha) for sha in (SHA_A, SHA_B, SHA_C)] == [True, True, False]
    async with meta.transaction() as tx:
        assert await tx.is_private_blob(SHA_B) is True
        await tx.delete_private_files([private_file(WHEEL, SHA_A, metadata_sha256=SHA_B)])
        assert await tx.is_private_blob(SHA_B) is False
