"""Web interface pages with many projects: `.venv/bin/python bench/ui_pages.py [--projects 10000] [--seconds 3]`.

Builds a data dir with N private projects (3 releases each, one wheel per release, sharing one README) and N cached
upstream projects (5 files each), starts `shadowpi serve --offline` on it, and measures each page with wrk
(requests/s, p50/p99 latency, server CPU per request): home, the whole project list, a name search, a late page
of the list, a private and a cached project page, and the simple API's page of a private project beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

README = (
    "# Example project\n\nA README with a little of everything.\n\n## Usage\n\n```python\nimport example\n"
    "example.run()\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
)


async def populate(data_dir: Path, projects: int) -> None:
    """N private projects and N cached upstream pages, written in one transaction (as an import does)."""
    from proxy.backends import open_backends
    from proxy.backends.records import PrivateFile, StoredPage
    from proxy.config_load import build_config
    from proxy.simple.model import DistFile, ProjectPage
    from proxy.simple.names import NormalizedName

    config = build_config({"server": {"data_dir": str(data_dir)}})
    async with open_backends(config, migrate=True) as backends:
        await backends.blobs.open()
        metadata = await backends.blobs.put_bytes(
            b"Metadata-Version: 2.1\nName: example\nVersion: 1.0\nSummary: an example\n"
            b"Description-Content-Type: text/markdown\n\n" + README.encode()
        )
        async with backends.meta.transaction() as tx:
            for i in range(projects):
                name = NormalizedName(f"proj-{i:05d}")
                await tx.add_private_project(name)
                for minor in range(3):
                    version = f"1.{minor}"
                    await tx.add_private_file(PrivateFile(
                        filename=f"proj_{i:05d}-{version}-py3-none-any.whl", project=name,
                        version=version, sha256=f"{i:058d}{minor:06d}", blake2_256=None, size=1000 + i,
                        requires_python=">=3.9", metadata_sha256=metadata.sha256, yanked=None,
                        upload_time=f"2025-01-{1 + minor:02d}T00:00:{i % 60:02d}.000000Z", uploaded_by="ci",
                    ))  # fmt: skip
                upstream = NormalizedName(f"up-{i:05d}")
                files = tuple(
                    DistFile(filename=f"up_{i:05d}-{v}.0-py3-none-any.whl", url=f"https://files.invalid/{i}/{v}.whl",
                             hashes={"sha256": f"{i:059d}{v:05d}"}, size=2000,
                             upload_time="2025-02-01T00:00:00.000000Z")
                    for v in range(5)
                )
                await tx.put_page(upstream, StoredPage(ProjectPage(upstream, files), None, None, time.time()))


def main() -> int:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    from bench.loadgen import PIP_HEADERS, get, run_wrk
    from bench.services import Supervisor, cpu_seconds, ensure_tools, free_port, process_tree, start_shadowpi

    parser = argparse.ArgumentParser(prog="bench/ui_pages.py", description=__doc__)
    parser.add_argument("--projects", type=int, default=10_000, help="private and cached projects (each)")
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk duration per page")
    args = parser.parse_args()
    _nginx, wrk = ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="shadowpi-ui-bench-"))
    supervisor = Supervisor()
    try:
        started = time.monotonic()
        asyncio.run(populate(tmp / "data", args.projects))
        print(f"populated {args.projects:,} private + {args.projects:,} cached projects in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)
        port = free_port()
        service = start_shadowpi(supervisor, "shadowpi", port=port, data_dir=tmp / "data",
                                 upstream="http://127.0.0.1:9/simple/", workers=1, log_path=tmp / "shadowpi.log",
                                 offline=True)
        base = f"http://127.0.0.1:{port}"
        middle = f"{args.projects // 2:05d}"
        pages = {
            "home": "/",
            "project list, page 1": "/search",
            f"project list, page {2 * args.projects // 50}": f"/search?page={2 * args.projects // 50}",
            "search 'proj-0123'": "/search?q=proj-0123",
            "private project page": f"/project/proj-{middle}/",
            "cached project page": f"/project/up-{middle}/",
            "simple API page (pip)": f"/simple/proj-{middle}/",
        }
        print(f"{'page':<28} {'first (ms)':>10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10}")
        for title, path in pages.items():
            headers = PIP_HEADERS if path.startswith("/simple/") else {"Accept": "text/html"}
            first = get(base + path, headers)
            if first.status != 200:
                raise RuntimeError(f"{path}: HTTP {first.status}")
            pids = process_tree(service.pid)
            before = cpu_seconds(pids)
            result = run_wrk(wrk, base + path, connections=8, threads=2, seconds=args.seconds, headers=headers)
            cpu = (cpu_seconds(pids) - before) / max(result.requests, 1) * 1000
            print(f"{title:<28} {first.total * 1000:>10.1f} {result.rps:>8.0f} {result.p50_ms:>8.2f} "
                  f"{result.p99_ms:>8.2f} {cpu:>10.2f}")
    finally:
        supervisor.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
