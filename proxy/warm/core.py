"""warm(): plan every target (resolve requirements, read locks), then fetch the distinct files through shadowpi."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from yarl import URL

from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstream import USER_AGENT
from proxy.warm.client import IndexClient
from proxy.warm.download import Fetcher
from proxy.warm.locks import LockFile
from proxy.warm.model import TargetPlan, WarmError, WarmReport
from proxy.warm.plan import merge_plans, plan_lock, plan_resolution
from proxy.warm.report import Progress, Silent
from proxy.warm.requirements import RequirementSet
from proxy.warm.resolve import LoopSource, resolve_target
from proxy.warm.targets import Target

__all__ = ["WarmInputs", "warm"]

# Connect fast or fail; a big file may take long, but never minutes of silence.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)


@dataclass(frozen=True, slots=True)
class WarmInputs:
    """What to warm: requirements to resolve and lock files to follow as they are."""

    requirements: RequirementSet = field(default_factory=RequirementSet)
    locks: tuple[LockFile, ...] = ()

    def hash_algorithms(self) -> frozenset[str]:
        """Every algorithm some input pins a file with (they are all computed while downloading)."""
        from_reqs = {h.split(":", 1)[0] for r in (*self.requirements.requirements, *self.requirements.constraints)
                     for h in r.hashes}
        from_locks = {alg for lock in self.locks for p in lock.packages for f in p.files for alg in f.hashes}
        return frozenset(from_reqs | from_locks)


async def warm(
    simple_url: str,
    inputs: WarmInputs,
    targets: Sequence[Target],
    *,
    jobs: int = 8,
    headers: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> WarmReport:
    """Fill shadowpi's cache (at `simple_url`) with every file `inputs` need on each target.

    Never raises for index or download problems: they are in the report (see WarmReport.ok).
    """
    shown = progress or Silent()
    # Credentials in the URL (read auth) go to every request, including file URLs the pages point at.
    url = URL(simple_url)
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    if (auth := aiohttp.BasicAuth.from_url(url)) is not None:
        sent["Authorization"] = auth.encode()
    spool = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="shadowpi-warm-"))
    try:
        async with aiohttp.ClientSession(headers=sent, timeout=TIMEOUT) as session:
            fetcher = Fetcher(session, spool, jobs=jobs, algorithms=inputs.hash_algorithms(), progress=shown)
            client = IndexClient(session, str(url.with_user(None)), fetcher, jobs=jobs)
            shown.phase(f"resolving for {len(targets)} target(s)")
            planned = await _plan_targets(client, inputs, targets)
            await _download(fetcher, [plan for plan, _ in planned], shown)
            results = fetcher.results
    finally:
        shown.finish()
        await asyncio.to_thread(shutil.rmtree, spool, True)
    warnings = [*inputs.requirements.warnings, *(w for _, ws in planned for w in ws)]
    warnings += [f"{lock.origin}: skipped local package {s}" for lock in inputs.locks for s in lock.skipped]
    unsupported = [*inputs.requirements.unsupported, *(u for lock in inputs.locks for u in lock.unsupported)]
    return WarmReport(tuple(plan for plan, _ in planned), results, tuple(dict.fromkeys(warnings)),
                      tuple(unsupported))


async def _plan_targets(client: IndexClient, inputs: WarmInputs,
                        targets: Sequence[Target]) -> list[tuple[TargetPlan, tuple[str, ...]]]:
    # The resolver is synchronous: it runs in its own threads (never the default executor, which the
    # metadata reads it waits for need) and reaches the index through the loop.
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, len(targets))), thread_name_prefix="warm-resolve")
    try:
        return list(await asyncio.gather(*(_plan_target(client, inputs, t, pool) for t in targets)))
    finally:
        # Never wait here: on Ctrl-C a resolver thread may be waiting for this very loop.
        pool.shutdown(wait=False, cancel_futures=True)


async def _plan_target(client: IndexClient, inputs: WarmInputs, target: Target,
                       pool: ThreadPoolExecutor) -> tuple[TargetPlan, tuple[str, ...]]:
    parts: list[TargetPlan] = []
    warnings: tuple[str, ...] = ()
    wanted = inputs.requirements
    if wanted.requirements:
        loop = asyncio.get_running_loop()
        resolution = await loop.run_in_executor(pool, resolve_target, LoopSource(client, loop), target, wanted)
        parts.append(plan_resolution(target, resolution, wanted))
        warnings = resolution.warnings
    for lock in inputs.locks:
        pages, errors = await _lock_pages(client, lock)
        parts.append(plan_lock(lock, target, pages))
        parts.append(TargetPlan(target.label, errors=errors))
    return merge_plans(target.label, parts), warnings


async def _lock_pages(client: IndexClient,
                      lock: LockFile) -> tuple[dict[NormalizedName, ProjectPage | None], tuple[str, ...]]:
    names = list(dict.fromkeys(p.name for p in lock.packages))
    found = await asyncio.gather(*(client.page(n) for n in names), return_exceptions=True)
    pages: dict[NormalizedName, ProjectPage | None] = {}
    errors: list[str] = []
    for name, page in zip(names, found, strict=True):
        if isinstance(page, WarmError):
            errors.append(str(page))
        elif isinstance(page, BaseException):
            raise page
        else:
            pages[name] = page
    return pages, tuple(errors)


async def _download(fetcher: Fetcher, plans: Sequence[TargetPlan], progress: Progress) -> None:
    files: dict[str, DistFile] = {p.dist.url: p.dist for plan in plans for p in plan.picks}
    progress.start(len(files))

    async def one(dist: DistFile) -> None:
        await fetcher.fetch(dist)
        progress.file_done()

    await asyncio.gather(*(one(d) for d in files.values()))
