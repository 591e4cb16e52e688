"""Which index a bundle's private records belong to (pure): `export --index` keeps some indexes, `import
--index-map OLD=NEW` renames them and refuses an index the importing server does not define."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from proxy.backends.records import PrivateFile
from proxy.bundle.manifest import BundleError
from proxy.bundle.records import PrivateProject
from proxy.simple.names import NormalizedName

if TYPE_CHECKING:  # export imports this module
    from proxy.bundle.export import Snapshot
    from proxy.bundle.reader import VerifiedBundle


def only_indexes(snapshot: Snapshot, indexes: frozenset[str] | None) -> Snapshot:
    """The snapshot restricted to the private projects, files, members and deleted names of `indexes` (pure)."""
    if indexes is None:
        return snapshot
    projects: dict[NormalizedName, PrivateProject] = {}
    for name, project in snapshot.projects.items():
        kept = tuple(i for i in project.indexes if i in indexes)
        if kept:
            projects[name] = PrivateProject(kept, tuple((i, m) for i, m in project.members if i in indexes))
    private = {name: [r for r in snapshot.private.get(name, []) if r.index in indexes] for name in projects}
    deleted = [d for d in snapshot.deleted if d.index in indexes]
    return replace(snapshot, private=private, deleted=deleted, projects=projects)




def map_indexes(bundle: VerifiedBundle, mapping: Mapping[str, str], known: Collection[str]) -> VerifiedBundle:
    """The bundle with its index names renamed by `mapping` (`--index-map OLD=NEW`). Pure; raises BundleError
    naming the first index this server does not define, before anything is changed."""

    def to(index: str) -> str:
        return mapping.get(index, index)

    projects = {
        name: PrivateProject(
            tuple(sorted({to(i) for i in p.indexes})), tuple(dict.fromkeys((to(i), m) for i, m in p.members))
        )
        for name, p in bundle.projects.items()
    }
    private: dict[NormalizedName, list[PrivateFile]] = {}
    for name, rows in bundle.private.items():
        placed: dict[tuple[str, str], PrivateFile] = {}
        for row in (replace(r, index=to(r.index)) for r in rows):
            if placed.setdefault((row.index, row.filename), row) != row:  # two indexes mapped onto one
                raise BundleError(f"--index-map puts two different files named {row.filename} into index {row.index}")
        private[name] = list(placed.values())
    deleted = tuple(dict.fromkeys(replace(d, index=to(d.index)) for d in bundle.deleted))
    used = {i for p in projects.values() for i in p.indexes} | {d.index for d in deleted}
    used |= {r.index for rows in private.values() for r in rows}
    unknown = sorted(used - set(known))
    if unknown:
        raise BundleError(
            f"the bundle holds private projects of index {unknown[0]!r}, which this server does not define"
            f" (add [indexes.{unknown[0]}] to the config, or import with --index-map {unknown[0]}=NAME)"
        )
    return replace(bundle, private=private, deleted=deleted, projects=projects)
