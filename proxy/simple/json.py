"""Parse and render the JSON simple API (PEP 691 v1.x, with PEP 700 fields and PEP 714 metadata keys)."""

from __future__ import annotations

# An absolute import: this is the stdlib module, not proxy.simple.json itself.
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

from packaging.utils import InvalidName, canonicalize_name

from proxy.errors import UpstreamInvalid
from proxy.simple.html import parse_hash_pair
from proxy.simple.model import (
    EMITTABLE_HASHES,
    DistFile,
    Origin,
    ProjectList,
    ProjectPage,
    check_file_count,
    derive_versions,
    safe_files,
)
from proxy.simple.names import NormalizedName

__all__ = ["parse_project_json", "render_index_json", "render_project_json"]


def parse_project_json(
    data: str | bytes, page_url: str, name: NormalizedName | None = None, *, max_files: int | None = None
) -> ProjectPage:
    """Read a PEP 691 project detail document; relative file URLs resolve against `page_url`.

    Files whose name is not a plain path segment are dropped (with a warning). Raises UpstreamInvalid for
    non-JSON, a non-object, an api-version major other than 1, a missing `files` list, more than `max_files`
    files, a file without string `filename`/`url`, or a page `name` that differs from `name`.
    """
    doc = _load_object(data)
    _check_api_version(doc.get("meta"))
    entries = doc.get("files")
    if not isinstance(entries, list):
        raise UpstreamInvalid("JSON project page has no 'files' list")
    check_file_count(len(entries), max_files)
    page_name = _page_name(doc.get("name"), name)
    files = safe_files(page_name, (_dist_file(entry, page_url) for entry in entries))
    versions = _versions(doc.get("versions"), files)
    return ProjectPage(name=page_name, files=files, versions=versions)


def _load_object(data: str | bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        raise UpstreamInvalid(f"JSON project page is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UpstreamInvalid("JSON project page is not an object")
    return doc


def _check_api_version(meta: object) -> None:
    """PEP 629: clients must refuse a greater major version (and may merely warn on a greater minor)."""
    if meta is None:
        return
    if not isinstance(meta, dict):
        raise UpstreamInvalid("JSON 'meta' is not an object")
    version = meta.get("api-version")
    if version is None:
        return
    major = version.partition(".")[0] if isinstance(version, str) else ""
    if major != "1":
        raise UpstreamInvalid(f"unsupported simple API version {version!r} (need 1.x)")


def _page_name(raw: object, expected: NormalizedName | None) -> NormalizedName:
    """The page's own name, normalized; it must agree with the name that was asked for."""
    try:
        found = canonicalize_name(raw, validate=True) if isinstance(raw, str) else None
    except InvalidName:
        found = None
    if expected is not None and found is not None and found != expected:
        # Caching another project's files under this name would poison the cache.
        raise UpstreamInvalid(f"JSON page is for {found!r}, not {expected!r}")
    name = expected if expected is not None else found
    if name is None:
        raise UpstreamInvalid("JSON project page has no valid 'name'")
    return name


def _versions(raw: object, files: tuple[DistFile, ...]) -> tuple[str, ...]:
    """The page's own `versions` list, kept in its order; derived from filenames when absent.

    PEP 700 made `versions` mandatory only from 1.1, so 1.0 pages do not have it.
    """
    if isinstance(raw, list):
        return tuple(v for v in raw if isinstance(v, str))
    return derive_versions(files)


def _dist_file(entry: object, page_url: str) -> DistFile:
    if not isinstance(entry, dict):
        raise UpstreamInvalid("JSON file entry is not an object")
    filename, url = entry.get("filename"), entry.get("url")
    if not isinstance(filename, str) or not filename or not isinstance(url, str):
        raise UpstreamInvalid("JSON file entry lacks a string 'filename' or 'url'")
    # PEP 714: `core-metadata` wins; the legacy `dist-info-metadata` key is read only as a fallback.
    metadata = entry.get("core-metadata")
    if metadata is None:
        metadata = entry.get("dist-info-metadata")
    size, upload_time = entry.get("size"), entry.get("upload-time")
    return DistFile(
        filename=filename,
        url=urljoin(page_url, url),
        hashes=_hashes(entry.get("hashes")),
        requires_python=_nonempty(entry.get("requires-python")),
        yanked=_yanked(entry.get("yanked")),
        core_metadata=_core_metadata(metadata),
        # PEP 700: size is a non-negative int; bool is an int subclass in Python but not in JSON.
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=_nonempty(upload_time),
        origin=Origin.UPSTREAM,
    )


def _hashes(raw: object) -> dict[str, str]:
    """Well-formed `alg: hex` string pairs, lower-cased; anything else is dropped."""
    if not isinstance(raw, dict):
        return {}
    pairs = (parse_hash_pair(f"{k}={v}") for k, v in raw.items() if isinstance(k, str) and isinstance(v, str))
    return dict(pair for pair in pairs if pair is not None)


def _nonempty(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw else None


def _yanked(raw: object) -> bool | str:
    """PEP 592/691: true, or a non-empty reason string; anything else (false, "", null) is not yanked."""
    if raw is True:
        return True
    return raw if isinstance(raw, str) and raw else False


def _core_metadata(raw: object) -> Mapping[str, str] | bool:
    """PEP 658/691: a dict of hashes or true means available; an empty or unusable dict still does."""
    if raw is True:
        return True
    if isinstance(raw, dict):
        return _hashes(raw) or True
    return False


def _emittable(hashes: Mapping[str, str]) -> dict[str, str]:
    # uv hard-fails on algorithm names it does not know, so only EMITTABLE_HASHES leave the server.
    return {alg: hashes[alg] for alg in EMITTABLE_HASHES if alg in hashes}


def _file_object(dist: DistFile, url: str) -> dict[str, object]:
    obj: dict[str, object] = {"filename": dist.filename, "url": url, "hashes": _emittable(dist.hashes)}
    if dist.requires_python:
        obj["requires-python"] = dist.requires_python
    obj["yanked"] = dist.yanked
    if isinstance(dist.core_metadata, Mapping):
        obj["core-metadata"] = _emittable(dist.core_metadata) or True
    else:
        obj["core-metadata"] = dist.core_metadata
    # Never the legacy `dist-info-metadata` key: PEP 714, pip hard-fails on it.
    if dist.size is not None:
        obj["size"] = dist.size
    if dist.upload_time is not None:
        obj["upload-time"] = dist.upload_time
    return obj


def render_project_json(page: ProjectPage, href: Callable[[DistFile], str]) -> str:
    """A PEP 691 project detail document linking each file at `href(file)` (no fragment)."""
    # PEP 629/700: claim 1.1 only when every file has a size; versions are always sent.
    version = "1.1" if all(f.size is not None for f in page.files) else "1.0"
    doc = {
        "meta": {"api-version": version},
        "name": page.name,
        "files": [_file_object(f, href(f)) for f in page.files],
        "versions": list(page.versions or derive_versions(page.files)),
    }
    return _dump(doc)


def render_index_json(projects: ProjectList) -> str:
    """The PEP 691 project list. Claims 1.0: later minors add nothing to the root."""
    return _dump({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in projects.names]})


def _dump(doc: Mapping[str, object]) -> str:
    return json.dumps(doc, separators=(",", ":"))
