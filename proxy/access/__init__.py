"""Indexes, owners and permissions (issue 14): the pure core. The index graph from the config, chain resolution
with shadowing across the chain, and the permission rule; no I/O, no aiohttp (services gather the facts)."""

from proxy.access.model import ROOT, Access, IndexDef, Member, TokenScope, Who
from proxy.access.resolve import Location, locate
from proxy.access.rules import Act, Decision, decide, token_expired

__all__ = [
    "ROOT", "Access", "Act", "Decision", "IndexDef", "Location", "Member", "TokenScope", "Who", "decide", "locate",
    "token_expired",
]
