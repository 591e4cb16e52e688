"""Process-wide memory settings: the C allocator's arenas, and the start-up heap kept out of Python's collector.

The C allocator's arenas: two for the whole process, as `MALLOC_ARENA_MAX=2` would set them.

glibc gives every thread that allocates an arena of its own, up to eight per core, and memory freed into one arena is
not reused by another. shadowpi's threads (the event loop, the default executor's, the database's, the page
parsers') each held on to theirs: in the benchmark's cold 1 GiB download (after the 5,000-file page) the process
peaked at 89.4 MiB with the default and 76.8 MiB with two arenas, at the same speed. The threads mostly take turns
on the GIL, so two arenas cost no contention worth measuring.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os

log = logging.getLogger(__name__)

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Limit glibc's malloc to `arenas` arenas; call before any thread starts. Leaves the limit alone when the
    environment sets MALLOC_ARENA_MAX (the operator's choice), and does nothing on a C library without mallopt
    (musl, macOS). True when the limit was set here."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:  # glibc returns 1 on success
        log.debug("mallopt(M_ARENA_MAX) was refused")
        return False
    return True


def freeze_startup_heap() -> int:
    """Keep everything alive once the server has started (modules, the app, its services) out of the cyclic
    collector's full collections from now on: collect first, so no garbage is kept, then gc.freeze(). Returns how
    many objects were frozen.

    A full collection walks every tracked object, and it stops the event loop while it does: 20 ms at start-up, and
    56-60 ms later in a benchmark run (after the 5,000-file page), once in the middle of an install. About 50,000
    objects exist from start-up on; frozen, the full collections of the same run took 8 ms. Frozen objects are
    still freed when nothing refers to them; only one caught in a reference cycle later (a start-up object
    replaced by a reload, say) would never be: kilobytes, once. Called before the server listens, so the one
    collection here (about 30 ms) keeps no request waiting.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
