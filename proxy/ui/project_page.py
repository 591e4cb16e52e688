"""Everything a project page shows, gathered from the services (the handler only renders it)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from proxy.access import ROOT
from proxy.keys import ACCESS, BACKENDS, INDEX
from proxy.pages import Outcome
from proxy.rendered import file_path
from proxy.simple.model import Origin
from proxy.simple.names import NormalizedName
from proxy.ui.access import may_manage
from proxy.ui.context import UI, Viewer
from proxy.ui.listing import Paged, latest_version, paginate
from proxy.ui.project_view import RELEASES_PER_PAGE, Install, Release, Standing, install_lines, standing
from proxy.ui.readme import Readme
from proxy.ui.sources import Found
from proxy.ui.sources import Origin as ReadmeOrigin

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


async def gather(request: web.Request, viewer: Viewer, name: NormalizedName, page: int) -> ProjectContext:
    """Raises ProjectNotFound (404) or UpstreamUnavailable (502) as the simple API does for the same name."""
    ui = request.app[UI]
    resolved = await request.app[INDEX].project(name)  # the shadow policy decides, as for pip
    project = resolved.page
    is_private = project.origin is Origin.PRIVATE
    records = (await ui.catalog.private_files()).get(name, []) if is_private else []
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
        can_manage=is_private and await _may_manage(request, viewer, name),
    )  # fmt: skip


async def _may_manage(request: web.Request, viewer: Viewer, name: NormalizedName) -> bool:
    if viewer.identity is None:
        return False
    access = request.app[ACCESS].current
    members = tuple(await request.app[BACKENDS].meta.project_members(ROOT, name))
    return may_manage(viewer.identity, name, access=access, index=access.indexes[ROOT], members=members)


async def _readme(request: web.Request, found: Found) -> Readme | None:
    if found.metadata is None:
        return None
    return await request.app[UI].readmes.get(found.metadata)


def done_message(action: str | None, target: str | None) -> str | None:
    """The note shown after a management action redirected back here (fixed wording; the target is escaped)."""
    if action not in DONE_MESSAGES or not target:
        return None
    return f"{DONE_MESSAGES[action]} {target[:300]}."
