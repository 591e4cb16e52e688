"""Everything a project page shows, gathered from the services (the handler only renders it)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from proxy.access import ROOT, IndexDef, Member
from proxy.keys import ACCESS, BACKENDS, INDEX, PRIVATE
from proxy.pages import Outcome
from proxy.rendered import file_path
from proxy.simple.model import Origin
from proxy.simple.names import NormalizedName
from proxy.ui.access import may_manage
from proxy.ui.context import UI, Viewer
from proxy.ui.indexes import holder_of, shown
from proxy.ui.listing import Paged, latest_version, paginate
from proxy.ui.project_view import RELEASES_PER_PAGE, Install, Release, Standing, install_lines, standing
from proxy.ui.readme import Readme
from proxy.ui.sources import Found
from proxy.ui.sources import Origin as ReadmeOrigin
from proxy.ui.urls import Urls

DONE_MESSAGES = {"yanked": "Yanked", "unyanked": "Un-yanked", "deleted": "Deleted"}


@dataclass(frozen=True, slots=True)
class ProjectContext:
    name: NormalizedName
    standing: Standing
    outcome: Outcome
    latest: str | None
    releases: Paged[Release]
    release_count: int
    file_count: int
    install: Install
    readme: Readme | None
    readme_origin: ReadmeOrigin
    readme_version: str | None
    can_manage: bool
    holder: str | None  # the index of the chain whose private files these are (None: upstream only)
    holder_link: str | None  # that index's page of the project, when it is not the index shown
    members: tuple[Member, ...]  # its owners and maintainers there


async def gather(request: web.Request, viewer: Viewer, name: NormalizedName, page: int) -> ProjectContext:
    """Raises ProjectNotFound (404) or UpstreamUnavailable (502) as the simple API does for the same name."""
    ui, index = request.app[UI], shown(request)
    resolved = await request.app[INDEX].project(name, index.name)  # the shadow policy decides, as for pip
    project = resolved.page
    is_private = project.origin is Origin.PRIVATE
    holder = (holder_of(index.chain, await request.app[PRIVATE].holders(name)) or index.name) if is_private else None
    records = (await ui.catalog.private_files(holder)).get(name, []) if holder is not None else []
    members = tuple(await request.app[BACKENDS].meta.project_members(holder, name)) if holder is not None else ()
    uploaders = {r.filename: r.uploaded_by for r in records}
    releases = await ui.catalog.releases(project, lambda d: file_path(name, d), uploaders)
    latest = latest_version({r.version: r.yanked for r in releases})
    if is_private:
        found = await ui.sources.private(records, latest)
    else:
        found = await ui.sources.upstream(releases)
    return ProjectContext(
        name=name, standing=standing(project, has_private=is_private), outcome=resolved.outcome, latest=latest,
        releases=paginate(releases, page, RELEASES_PER_PAGE), release_count=len(releases),
        file_count=len(project.files), install=install_lines(viewer.endpoints, name, latest),
        readme=await _readme(request, found), readme_origin=found.origin, readme_version=found.version,
        can_manage=holder == index.name and _may_manage(request, viewer, name, index.index, members),
        holder=holder, holder_link=_holder_link(viewer, name, holder) if holder != index.name else None,
        members=members,
    )  # fmt: skip


def _may_manage(
    request: web.Request, viewer: Viewer, name: NormalizedName, index: IndexDef, members: tuple[Member, ...]
) -> bool:
    """Management forms only where the files are the shown index's own (a base's files are managed there)."""
    if viewer.identity is None:
        return False
    return may_manage(viewer.identity, name, access=request.app[ACCESS].current, index=index, members=members)


def _holder_link(viewer: Viewer, name: NormalizedName, holder: str | None) -> str | None:
    if holder is None:
        return None
    return Urls(viewer.urls.root, None if holder == ROOT else holder).project(name)


async def _readme(request: web.Request, found: Found) -> Readme | None:
    if found.metadata is None:
        return None
    return await request.app[UI].readmes.get(found.metadata)


def done_message(action: str | None, target: str | None) -> str | None:
    """The note shown after a management action redirected back here (fixed wording; the target is escaped)."""
    if action not in DONE_MESSAGES or not target:
        return None
    return f"{DONE_MESSAGES[action]} {target[:300]}."
