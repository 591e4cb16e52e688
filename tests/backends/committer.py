"""A process that commits one big blob and can be killed mid-way: `python -m tests.backends.committer CONFIG SIZE`.

CONFIG is the JSON of the [server]/[database]/[storage] tables. The blob's bytes are SIZE bytes of a fixed
pattern (the parent computes the same sha256). It prints "committing" once the verified spool is written and the
commit starts, and "committed" when it is done. An object store's upload reads the spool part by part: reading
past the first part waits forever here, so the first part reaches the store but the upload can never complete, and
the parent's kill always lands mid-commit (a fast store on an idle machine could otherwise finish first).
"""

from __future__ import annotations

import asyncio
import json
import sys

from proxy.backends import open_backends
from proxy.backends.spool import Spool
from proxy.config_load import build_config


def pattern(size: int) -> bytes:
    """The blob's bytes: distinct per MiB, so a mix of two parts could never hash right."""
    block = 2**20
    return b"".join(i.to_bytes(8, "big") * (block // 8) for i in range(-(-size // block)))[:size]


def hold_after_the_first_part(spool: Spool) -> None:
    """Reads at offset 0 go through; any later read waits forever (see the module docstring)."""
    read = spool.read

    async def gated(offset: int, length: int) -> bytes:
        if offset > 0:
            await asyncio.Event().wait()
        return await read(offset, length)

    spool.read = gated  # type: ignore[method-assign]


async def main(raw: str, size: int) -> None:
    config = build_config(json.loads(raw))
    async with open_backends(config) as backends, backends.spools.new() as spool:
        await spool.write(pattern(size))
        hold_after_the_first_part(spool)
        print("committing", flush=True)
        await backends.blobs.commit(spool)
        print("committed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
