"""The records of the access model: index definitions, the whole graph, token scopes, members, who asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from proxy.simple.names import NormalizedName
from proxy.simple.policy import ShadowPolicy

ROOT = "root"  # the index served at /simple/, configured by [upstream], [policy] and [auth]
ANYONE = "*"  # anonymous included
AUTHENTICATED = "authenticated"  # any user with a password or a token
GROUP_PREFIX = "group:"
Role = Literal["owner", "maintainer"]


@dataclass(frozen=True, slots=True)
class IndexDef:
    """One index: its bases (ordered), whether names nobody in its chain holds go upstream, and who may do what.

    `owners`: whether project ownership is enforced (uploads to, and yank/delete of, an existing project need its
    owner, a maintainer or an admin). False only for the root index without an [indexes.root] table: there any
    uploader may upload to any project, as before indexes existed.
    """

    name: str
    bases: tuple[str, ...] = ()
    upstream: bool = False
    read: frozenset[str] = frozenset()
    upload: frozenset[str] = frozenset()
    admin: frozenset[str] = frozenset()
    private_patterns: tuple[str, ...] = ()
    merge_upstream: frozenset[NormalizedName] = frozenset()
    owners: bool = True
    # Built once: every project lookup through this index asks it (no allocation on the warm path).
    policy: ShadowPolicy = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", ShadowPolicy(self.merge_upstream, self.private_patterns))

    @property
    def world_readable(self) -> bool:
        return ANYONE in self.read


@dataclass(frozen=True, slots=True)
class Access:
    """Every index (root included) and the groups: validated, cycles refused (proxy.access.graph builds it)."""

    indexes: Mapping[str, IndexDef]
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    chains: Mapping[str, tuple[IndexDef, ...]] = field(default_factory=dict)
    # Every index's private_patterns: a pattern is a company-wide claim, so no index asks upstream about a match.
    all_patterns: ShadowPolicy = field(default_factory=ShadowPolicy)

    def chain(self, name: str) -> tuple[IndexDef, ...]:
        """The index itself, then its bases depth-first in order, each index once (KeyError: no such index)."""
        return self.chains[name]

    def groups_of(self, user: str | None) -> frozenset[str]:
        if user is None:
            return frozenset()
        return frozenset(group for group, users in self.groups.items() if user in users)


@dataclass(frozen=True, slots=True)
class TokenScope:
    """What a token may do, on top of (never beyond) its user's rights. Empty `indexes`: every index the user may
    reach; `project`: writes only to this project; `actions`: "read", "upload" (every write); `expires_at`: epoch."""

    indexes: frozenset[str] = frozenset()
    project: NormalizedName | None = None
    actions: frozenset[str] = frozenset({"read", "upload"})
    expires_at: float | None = None
    token_id: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """An owner or maintainer of a project in an index: a user name or "group:NAME"."""

    principal: str
    role: Role


@dataclass(frozen=True, slots=True)
class Who:
    """Who asks: a user (None: anonymous), the groups they are in, and the token they used, if any."""

    user: str | None
    groups: frozenset[str] = frozenset()
    token: TokenScope | None = None

    def matches(self, entries: frozenset[str]) -> bool:
        """Whether one of `entries` ("*", "authenticated", a user, "group:NAME") names this caller."""
        if ANYONE in entries:
            return True
        if self.user is None:
            return False
        return AUTHENTICATED in entries or self.user in entries or any(
            GROUP_PREFIX + group in entries for group in self.groups)

    def is_member(self, members: tuple[Member, ...], *, owner_only: bool = False) -> bool:
        if self.user is None:
            return False
        names = frozenset(m.principal for m in members if m.role == "owner" or not owner_only)
        return self.user in names or any(GROUP_PREFIX + group in names for group in self.groups)


class AccessRef:
    """The index graph the app serves with, swapped whole (a reload builds and validates a new one first)."""

    def __init__(self, access: Access) -> None:
        self.current = access

    def __call__(self) -> Access:
        return self.current
