"""Spools: local temporary files with running hashes, discarded unless committed, readable while they grow."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import pytest

from proxy.backends.spools import SpoolDir

DATA = b"wheel bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def spools(tmp_path: Path) -> SpoolDir:
    spools = SpoolDir(tmp_path / "tmp")
    await spools.open()
    return spools


def names(spools: SpoolDir) -> list[str]:
    return sorted(p.name for p in spools.directory.iterdir())


async def test_spool_hashes_only_fixed_length_algorithms_it_knows(spools: SpoolDir) -> None:
    """A spool computes the declared algorithms from a fixed list; shake_* (no fixed length) and unknown names are
    ignored instead of failing the download when the digests are read."""
    async with spools.new(["shake_128", "shake_256", "sha512", "blake2_256", "md5", "nope", "sha512_256"]) as spool:
        await spool.write(DATA)
        assert spool.digests() == {
            "sha256": SHA,
            "sha512": hashlib.sha512(DATA).hexdigest(),
            "blake2_256": hashlib.blake2b(DATA, digest_size=32).hexdigest(),
            "md5": hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
        }


@pytest.mark.parametrize("fails", [False, True])
async def test_a_spool_is_discarded_when_its_block_ends(spools: SpoolDir, fails: bool) -> None:
    """Left uncommitted, a spool's file is gone when the block ends, normally or by an exception."""
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        async with spools.new() as spool:
            await spool.write(DATA)
            assert names(spools) == [spool.path.name]
            if fails:
                raise RuntimeError("upload refused")
    assert names(spools) == []
    assert spool.closed


async def test_a_reader_follows_the_spool_and_outlives_it(spools: SpoolDir) -> None:
    """A spool's reader sees its size grow and keeps its bytes after the spool is gone."""
    async with spools.new() as spool:
        reader = spool.reader()
        await spool.write(DATA[:100])
        assert reader.size == 100
        await spool.write(DATA[100:])
        assert reader.size == len(DATA)
    assert b"".join([c async for c in reader.chunks(0, reader.size)]) == DATA
    reader.close()
