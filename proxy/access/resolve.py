"""Shadowing across a chain (the dependency-confusion rule, generalised): a project name is served by the first
index of the requested index's chain that holds it (a private project, even with every file deleted) or reserves
it (its private_patterns); every later index and upstream are hidden. Upstream is asked only when nobody in the
chain holds or reserves the name, no index anywhere reserves it, and the requested index has upstream = true
(or the holder lists it in merge_upstream)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxy.access.model import IndexDef
from proxy.simple.names import NormalizedName
from proxy.simple.policy import ShadowPolicy


@dataclass(frozen=True, slots=True)
class Location:
    """Where a name lives for one requested index: the index whose private files are the page (None: nobody in
    the chain holds it), and whether upstream may be asked about it."""

    holder: str | None
    upstream: bool
    reserved: bool  # some index reserves the name (a 404 says so when nothing is held)


def locate(
    name: NormalizedName, chain: Sequence[IndexDef], holds: Callable[[str], bool], *,
    reserved_anywhere: ShadowPolicy | None = None,
) -> Location:
    """`holds(index)` says whether an index has the private project; `reserved_anywhere`: every index's patterns
    (a name any index reserves never goes upstream, whatever the chain)."""
    requested = chain[0]
    elsewhere = reserved_anywhere is not None and reserved_anywhere.is_reserved(name)
    for index in chain:
        held = holds(index.name)
        if held or index.policy.is_reserved(name):
            merge = name in index.merge_upstream and requested.upstream
            return Location(index.name if held else None, merge, reserved=True)
    if name in requested.merge_upstream:  # as before indexes: listed names reach upstream even if reserved
        return Location(None, requested.upstream, reserved=elsewhere)
    return Location(None, requested.upstream and not elsewhere, reserved=elsewhere)
