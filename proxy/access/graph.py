"""The index graph from the config's [groups] and [indexes.*] tables: validated (one line naming the key for an
unknown base, a cycle, an unknown group, a bad name, an unknown key) and with every chain resolved once."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from proxy.access.model import ANYONE, AUTHENTICATED, GROUP_PREFIX, ROOT, Access, IndexDef
from proxy.errors import ConfigError, InvalidProjectName
from proxy.simple.names import NormalizedName, parse_project_name
from proxy.simple.policy import ShadowPolicy

INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
USER_NAME = re.compile(r"[^\s:*]+")  # htpasswd users: no spaces, no ":" (the group prefix), not "*"
INDEX_KEYS = ("bases", "upstream", "read", "upload", "admin", "private_patterns", "merge_upstream")
# [indexes.root] may tighten who does what; its bases, upstream and shadowing stay [upstream]'s and [policy]'s.
ROOT_KEYS = ("read", "upload", "admin")


def root_index(*, read_requires_auth: bool, policy: ShadowPolicy) -> IndexDef:
    """The root index as it was before indexes: anyone reads (or any user, under [auth] read = true), any user
    uploads to any project, nobody is an admin."""
    return IndexDef(
        name=ROOT, upstream=True, read=frozenset({AUTHENTICATED if read_requires_auth else ANYONE}),
        upload=frozenset({AUTHENTICATED}), private_patterns=policy.private_patterns,
        merge_upstream=policy.merge_upstream, owners=False,
    )


def build_access(groups: Mapping[str, Any], indexes: Mapping[str, Any], root: IndexDef) -> Access:
    """Validate the raw tables into an Access (raises ConfigError naming the key)."""
    parsed_groups = _groups(groups)
    defs: dict[str, IndexDef] = {ROOT: root}
    for name, table in indexes.items():
        key = f"indexes.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{key}: must be a table")
        if name == ROOT:
            defs[ROOT] = _root(table, root, parsed_groups)
            continue
        if not INDEX_NAME.fullmatch(name):
            raise ConfigError(f"{key}: invalid index name {name!r} (lower-case letters, digits and '-', 1-63)")
        defs[name] = _index(name, table, parsed_groups)
    for index in defs.values():
        for base in index.bases:
            if base not in defs:
                raise ConfigError(f"indexes.{index.name}.bases: unknown index {base!r} (known: {', '.join(defs)})")
    _refuse_cycles(defs)
    chains = {name: _chain(defs, name) for name in defs}
    patterns = tuple(p for index in defs.values() for p in index.private_patterns)
    return Access(defs, parsed_groups, chains, ShadowPolicy(private_patterns=patterns))


def _groups(raw: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    groups = {}
    for name, users in raw.items():
        key = f"groups.{name}"
        if not INDEX_NAME.fullmatch(name):
            raise ConfigError(f"{key}: invalid group name {name!r} (lower-case letters, digits and '-')")
        if not isinstance(users, list) or not all(isinstance(u, str) and USER_NAME.fullmatch(u) for u in users):
            raise ConfigError(f"{key}: must be a list of user names such as [\"alice\", \"bob\"]")
        groups[name] = frozenset(users)
    return groups


def _index(name: str, table: Mapping[str, Any], groups: Mapping[str, frozenset[str]]) -> IndexDef:
    key = f"indexes.{name}"
    _known_keys(key, table, INDEX_KEYS)
    parsers: dict[str, Callable[[str, object], object]] = {
        "bases": _bases, "upstream": _flag,
        "read": lambda k, v: _principals(k, v, groups), "upload": lambda k, v: _principals(k, v, groups),
        "admin": lambda k, v: _principals(k, v, groups),
        "private_patterns": name_patterns, "merge_upstream": project_names,
    }
    values = {field: parsers[field](f"{key}.{field}", value) for field, value in table.items()}
    return IndexDef(name=name, **values)  # type: ignore[arg-type]  # each parser returns its field's type


def _root(table: Mapping[str, Any], root: IndexDef, groups: Mapping[str, frozenset[str]]) -> IndexDef:
    _known_keys(f"indexes.{ROOT}", table, ROOT_KEYS, hint=" ([upstream] and [policy] configure the rest of root)")
    values = {field: _principals(f"indexes.{ROOT}.{field}", value, groups) for field, value in table.items()}
    return replace(root, owners=True, **values)  # type: ignore[arg-type]  # all three are principal sets


def _known_keys(key: str, table: Mapping[str, Any], known: tuple[str, ...], hint: str = "") -> None:
    for field in table:
        if field not in known:
            raise ConfigError(f"{key}.{field}: unknown key (known: {', '.join(known)}){hint}")


def _bases(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of index names such as [\"root\"]")
    return tuple(value)


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, not {value!r}")
    return value


def _principals(key: str, value: object, groups: Mapping[str, frozenset[str]]) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: must be a list of users, \"group:NAME\", \"authenticated\" or \"*\"")
    for entry in value:
        if entry.startswith(GROUP_PREFIX) and entry.removeprefix(GROUP_PREFIX) not in groups:
            raise ConfigError(f"{key}: unknown group {entry!r} (define it under [groups])")
        if not entry.startswith(GROUP_PREFIX) and entry != ANYONE and not USER_NAME.fullmatch(entry):
            raise ConfigError(f"{key}: {entry!r} is not a user name, \"group:NAME\", \"authenticated\" or \"*\"")
    return frozenset(value)


def name_patterns(key: str, value: object) -> tuple[str, ...]:
    """A config list of project name patterns (`private_patterns`, here and in [policy])."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: must be a list of name patterns such as \"acme-*\"")
    return tuple(value)


def project_names(key: str, value: object) -> frozenset[NormalizedName]:
    """A config list of project names, normalized (`merge_upstream`, here and in [policy])."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of project names")
    try:
        return frozenset(parse_project_name(v) for v in value)
    except InvalidProjectName as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _refuse_cycles(defs: Mapping[str, IndexDef]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = " -> ".join((*path[path.index(name):], name))
            raise ConfigError(f"indexes.{path[-1]}.bases: a cycle in bases: {cycle}")
        if name in done:
            return
        for base in defs[name].bases:
            visit(base, (*path, name))
        done.add(name)

    for name in defs:
        visit(name, ())


def _chain(defs: Mapping[str, IndexDef], name: str) -> tuple[IndexDef, ...]:
    """Depth-first in order, each index once (first occurrence wins); cycles were refused already."""
    seen: dict[str, IndexDef] = {}

    def walk(current: str) -> None:
        if current in seen:
            return
        seen[current] = defs[current]
        for base in defs[current].bases:
            walk(base)

    walk(name)
    return tuple(seen.values())
