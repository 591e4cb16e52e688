"""`shadowpi export --static DIR`: a static PEP 503/691 index any web server (or pip's file:// URLs) can serve.

    DIR/simple/index.html, DIR/simple/index.json                 the project list
    DIR/simple/<project>/index.html, .../index.json              project pages, relative links
    DIR/files/<sha256>/<filename>, .../<filename>.metadata      the bytes (PEP 658 metadata beside its file)

The tree is always complete for the exported projects (it ignores --since), and it is one index's view (root's, or
`--index NAME`'s), resolved by the same rule as the server: the first index of its chain holding a name serves it,
and hides it in every later index and upstream (unless the holder lists it in merge_upstream).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from proxy.access.model import ROOT, Access
from proxy.access.resolve import locate
from proxy.bundle.blobfiles import BlobFiles
from proxy.bundle.export import Snapshot
from proxy.bundle.manifest import BundleError
from proxy.bundle.records import file_blob, metadata_blob
from proxy.errors import InvalidFilename
from proxy.private import to_dist
from proxy.simple import html, json
from proxy.simple.model import METADATA_SUFFIX, DistFile, Origin, ProjectList, ProjectPage
from proxy.simple.names import NormalizedName, check_safe_filename, filename_length_error
from proxy.simple.policy import merge_versions, resolve_project
from proxy.simple.publishing import display_value

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StaticTree:
    """What to write: text files by relative path, blob copies (relative path -> sha256), and what was left out."""

    texts: dict[str, str]
    blobs: dict[str, str]
    skipped: list[str] = field(default_factory=list)  # one line per file left out, saying why


def plan_static(snapshot: Snapshot, access: Access, index: str = ROOT) -> StaticTree:
    """The static index of what `index`'s readers see, for a snapshot of every index (pure)."""
    chain = access.chain(index)
    upstream = {record.name: record for record in snapshot.pages}
    mapping: dict[str, str] = {}
    for record in snapshot.pages:
        mapping.update(record.upstream_files)
    tree = StaticTree({}, {})
    names: list[NormalizedName] = []
    for name in sorted(set(upstream) | set(snapshot.private)):
        holders = snapshot.projects[name].indexes if name in snapshot.projects else ()
        where = locate(name, chain, holders.__contains__, reserved_anywhere=access.all_patterns)
        private = _private_page(name, snapshot, where.holder) if where.holder is not None else None
        cached = upstream.get(name) if where.upstream else None
        page = resolve_project(private, cached.stored.page if cached is not None else None)
        if page is None or not page.files:
            continue
        page = replace(page, files=tuple(_placed(tree, name, page.files, mapping)))
        names.append(name)
        href = _href(mapping)
        tree.texts[f"simple/{name}/index.html"] = html.render_project_html(page, href)
        tree.texts[f"simple/{name}/index.json"] = json.render_project_json(page, href)
    projects = ProjectList(tuple(names))
    tree.texts["simple/index.html"] = html.render_index_html(projects, lambda n: f"{n}/")
    tree.texts["simple/index.json"] = json.render_index_json(projects)
    return tree


def _private_page(name: NormalizedName, snapshot: Snapshot, index: str) -> ProjectPage:
    """The private page in an index; without files when every file was deleted (the name still hides upstream)."""
    rows = [row for row in snapshot.private.get(name, []) if row.index == index]
    files = tuple(to_dist(row) for row in rows)
    return ProjectPage(name, files, merge_versions(row.version for row in rows), Origin.PRIVATE)


def _href(mapping: Mapping[str, str]) -> Callable[[DistFile], str]:
    def href(dist: DistFile) -> str:
        return f"../../files/{file_blob(dist, mapping)}/{quote(dist.filename)}"

    return href


def _placed(
    tree: StaticTree, project: str, files: tuple[DistFile, ...], mapping: Mapping[str, str]
) -> Iterator[DistFile]:
    """Files with a storable filename and known bytes, each scheduled for copying; hash-less ones gain their sha256.

    A filename that cannot be a file (unsafe, or too long for a file system) is left out of the tree and its
    pages with a line in `tree.skipped`: one odd name must not fail the whole export.
    """
    for dist in files:
        sha256 = file_blob(dist, mapping)
        if (problem := _unstorable(dist.filename)) is not None:
            tree.skipped.append(f"left out {project}/{display_value(dist.filename, limit=80)}: {problem}")
            continue
        if sha256 is None:
            continue
        tree.blobs[f"files/{sha256}/{dist.filename}"] = sha256
        meta = metadata_blob(dist, mapping)
        if meta is not None:
            tree.blobs[f"files/{sha256}/{dist.filename}{METADATA_SUFFIX}"] = meta
        yield dist if dist.sha256 else replace(dist, hashes={**dist.hashes, "sha256": sha256})


def _unstorable(filename: str) -> str | None:
    """Why `filename` cannot be a path component of the tree (it and its .metadata sibling), or None."""
    try:
        check_safe_filename(filename)
    except InvalidFilename as exc:
        return str(exc)
    too_long = filename_length_error(filename)
    return None if too_long is None else f"the filename is too long ({too_long})"


def write_static(out: Path, tree: StaticTree, files: BlobFiles) -> int:
    """Write the tree to `out` (which must not exist) via a temporary sibling; returns the file count.

    Synchronous: run it in a worker thread (`files` reads blobs through the event loop). Raises BundleError.
    """
    if out.exists():
        raise BundleError(f"{out} already exists; choose a new directory for the static index")
    partial = out.with_name(f".{out.name}.partial-{secrets.token_hex(4)}")
    try:
        for relative, text in tree.texts.items():
            target = partial / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for relative, sha256 in tree.blobs.items():
            target = partial / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with files.open(sha256) as source, target.open("xb") as copy:
                shutil.copyfileobj(source, copy, COPY_CHUNK)
        partial.rename(out)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return len(tree.texts) + len(tree.blobs)
