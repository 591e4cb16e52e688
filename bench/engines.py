"""Choose the S3 client and the PostgreSQL driver for scale-out by measuring them against the test engines.

    .venv/bin/python bench/engines.py                 # 3 runs, a 1 GiB object: about 5 minutes on 2 cores
    .venv/bin/python bench/engines.py --quick         # 1 run, 64 MiB: about a minute
    .venv/bin/python bench/engines.py --only pg       # only the drivers (or --only s3)

Needs the two candidates that were not chosen: `.venv/bin/pip install obstore 'psycopg[binary]' psycopg-pool`.

It starts the same SeaweedFS and PostgreSQL the tests use (tests/engines/) and reports their start-up time.
S3 (aiobotocore vs obstore, bench/engines_s3.py, each measurement in a fresh child process): multipart upload
of the object from a local file and a streamed download to a sink (MB/s = 10^6 bytes/s, the child's peak RSS
and its growth during the transfer, client CPU seconds), presigned/ranged/HEAD/list/conditional-create/delete
behaviour, credentials from ~/.aws/credentials, and `mypy --strict` on a typical snippet. PostgreSQL (asyncpg vs
psycopg 3 + psycopg-pool, bench/engines_pg.py): connect, query latency, pool throughput, LISTEN/NOTIFY latency,
advisory locks, SKIP LOCKED, and `mypy --strict`. Runs alternate the order of the candidates; the table shows
the median with (min-max) over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import `bench` and `tests` from the checkout
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.engines_pg import DRIVERS, run_driver
from bench.engines_typing import typing_check
from tests.engines.postgres import PostgresServer
from tests.engines.seaweed import S3Bucket, SeaweedServer

REPO = Path(__file__).resolve().parent.parent
S3_CLIENTS = ("aiobotocore", "obstore")
MIB = 2**20
EXIT_CRASHES: dict[str, int] = {}  # child processes that printed their result and then crashed while exiting
def log(message: str) -> None:
    print(f"[engines] {message}", file=sys.stderr, flush=True)


def child_env(bucket: S3Bucket, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.lower().endswith("_proxy")}
    return {**base, **bucket.env, "BENCH_BUCKET": bucket.name, "PYTHONPATH": str(REPO), **extra}


def run_child(client: str, what: str, env: dict[str, str]) -> Any:
    result = subprocess.run([sys.executable, "-m", "bench.engines_s3", client, what], env=env, cwd=REPO,
                            capture_output=True, text=True, check=False, timeout=1800)
    lines = result.stdout.splitlines()
    if result.returncode != 0 and lines and lines[-1].startswith(("{", "[", '"')):
        # Finished and printed its result, then died on the way out (seen: obstore, SIGABRT at exit).
        EXIT_CRASHES[f"{client} {what}"] = EXIT_CRASHES.get(f"{client} {what}", 0) + 1
        log(f"{client} {what}: result printed, then exit code {result.returncode}: {result.stderr[-300:]!r}")
    elif result.returncode != 0:
        raise RuntimeError(f"{client} {what} failed with exit code {result.returncode}:\n"
                           f"{result.stdout[-1000:]}{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def s3_transfers(server: SeaweedServer, source: Path, runs: int) -> dict[str, list[dict[str, Any]]]:
    bucket = server.create_bucket()
    samples: dict[str, list[dict[str, Any]]] = {f"{c} {op}": [] for c in S3_CLIENTS for op in ("upload", "download")}
    failures: dict[str, int] = {}
    try:
        for run in range(runs):
            for client in S3_CLIENTS if run % 2 == 0 else reversed(S3_CLIENTS):
                env = child_env(bucket, BENCH_KEY=f"big-{client}-{run}", BENCH_FILE=str(source))
                for op in ("upload", "download"):
                    try:
                        sample = run_child(client, op, env)
                    except RuntimeError as exc:  # keep measuring; the table counts failures per row
                        log(f"run {run + 1} {client} {op}: {exc}")
                        failures[f"{client} {op}"] = failures.get(f"{client} {op}", 0) + 1
                        break
                    if sample["bytes"] != source.stat().st_size:
                        raise RuntimeError(f"{client} {op}: {sample['bytes']} bytes, not {source.stat().st_size}")
                    samples[f"{client} {op}"].append(sample)
                    log(f"run {run + 1} {client} {op}: {sample['bytes'] / sample['seconds'] / 1e6:.0f} MB/s, "
                        f"peak RSS {sample['rss_peak'] / MIB:.0f} MiB")
                if client == S3_CLIENTS[0] and not failures:  # references: the same object, other readers
                    _references(server, bucket, f"big-{client}-{run}", source.stat().st_size, env, samples)
                with contextlib.suppress(Exception):
                    server.admin_client().delete_object(Bucket=bucket.name, Key=f"big-{client}-{run}")
    finally:
        server.delete_bucket(bucket.name)
    for name, count in failures.items():
        samples[f"{name}: FAILED {count}x"] = []
    return samples


def _references(server: SeaweedServer, bucket: S3Bucket, key: str, size: int, env: dict[str, str],
                samples: dict[str, list[dict[str, Any]]]) -> None:
    """curl on a presigned URL (the server's ceiling: C client, little CPU) and aiohttp with a large buffer."""
    samples.setdefault("aiohttp presigned download (reference)", []).append(
        run_child("aiohttp-presigned", "download", {**env, "BENCH_KEY": key}))
    curl = shutil.which("curl")
    if curl is None:
        return
    url = server.admin_client().generate_presigned_url("get_object", Params={"Bucket": bucket.name, "Key": key},
                                                       ExpiresIn=600)
    out = subprocess.run([curl, "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                          url], capture_output=True, text=True, check=True, timeout=600).stdout.split()
    if int(out[0]) != size:
        raise RuntimeError(f"curl got {out[0]} bytes, not {size}")
    samples.setdefault("curl presigned download (reference)", []).append(
        {"bytes": size, "seconds": float(out[1]), "rss_before": 0, "rss_peak": 0, "cpu_seconds": float("nan")})


def s3_behaviour(server: SeaweedServer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for client in S3_CLIENTS:
        bucket = server.create_bucket()
        try:
            out[client] = run_child(client, "features", child_env(bucket))
            out[client]["credentials from ~/.aws only"] = _from_aws_files(client, bucket, "")
            if client == "obstore":
                out[client]["credentials from ~/.aws only"] += "; with a botocore credential provider: " + \
                    _from_aws_files(client, bucket, "+botocore")
            out[client]["RSS after import"] = f"{run_child(client, 'import-rss', child_env(bucket)) / MIB:.0f} MiB"
        finally:
            server.delete_bucket(bucket.name)
    return out


def _from_aws_files(client: str, bucket: S3Bucket, variant: str) -> str:
    with tempfile.TemporaryDirectory() as home:
        aws = Path(home, ".aws")
        aws.mkdir()
        aws.joinpath("credentials").write_text(f"[default]\naws_access_key_id = {bucket.env['AWS_ACCESS_KEY_ID']}\n"
                                               f"aws_secret_access_key = {bucket.env['AWS_SECRET_ACCESS_KEY']}\n")
        aws.joinpath("config").write_text("[default]\nregion = us-east-1\n")
        # Without credentials object_store asks the EC2 metadata service: keep that on a closed local port.
        env = child_env(bucket, HOME=home, AWS_METADATA_ENDPOINT="http://127.0.0.1:1")
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"]
        return str(run_child(client, "aws-files" + variant, env))


def pg_drivers(server: PostgresServer, runs: int) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {d.name: [] for d in DRIVERS}
    for run in range(runs):
        for driver in DRIVERS if run % 2 == 0 else tuple(reversed(DRIVERS)):
            database = server.create_database()
            try:
                samples[driver.name].append(asyncio.run(run_driver(driver, database.url)))
            finally:
                server.drop_database(database.name)
            log(f"run {run + 1} {driver.name}: done")
    return samples


def _cell(values: list[float], fmt: str) -> str:
    if not values or any(v != v or v == 0 for v in values):  # NaN or 0: not measured for this row
        return "-"
    middle = fmt.format(statistics.median(values))
    return middle if len(values) == 1 else f"{middle} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def s3_table(samples: dict[str, list[dict[str, Any]]]) -> list[str]:
    rows = ["| S3 transfer | MB/s | peak RSS MiB | RSS growth MiB | client CPU s |", "|---|---|---|---|---|"]
    for name, runs in samples.items():
        if not runs:
            rows.append(f"| {name} | - | - | - | - |")
            continue
        rows.append(f"| {name} | {_cell([r['bytes'] / r['seconds'] / 1e6 for r in runs], '{:.0f}')} | "
                    f"{_cell([r['rss_peak'] / MIB for r in runs], '{:.0f}')} | "
                    f"{_cell([(r['rss_peak'] - r['rss_before']) / MIB for r in runs], '{:.0f}')} | "
                    f"{_cell([r['cpu_seconds'] for r in runs], '{:.2f}')} |")
    return rows


def pg_table(samples: dict[str, list[dict[str, Any]]]) -> list[str]:
    metrics = [("connect (scram) ms", "connect_time", "connect_ms", "{:.1f}"),
               ("query p50 µs", "query_latency", "p50_us", "{:.0f}"),
               ("query p99 µs", "query_latency", "p99_us", "{:.0f}"),
               ("pool of 10, 64 tasks: queries/s", "pool_throughput", "pool_qps", "{:.0f}"),
               ("NOTIFY→callback p50 µs", "notify_latency", "p50_us", "{:.0f}"),
               ("NOTIFY→callback p99 µs", "notify_latency", "p99_us", "{:.0f}"),
               ("advisory lock+unlock µs", "advisory_locks", "lock+unlock_us", "{:.0f}")]
    names = list(samples)
    rows = ["| PostgreSQL | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, scenario, key, fmt in metrics:
        rows.append(f"| {label} | " + " | ".join(_cell([r[scenario][key] for r in samples[n]], fmt) for n in names)
                    + " |")
    for scenario in ("advisory_locks", "skip_locked"):
        cells = ["ok" if all(r[scenario]["ok"] for r in samples[n]) else json.dumps(samples[n][0][scenario])
                 for n in names]
        rows.append(f"| {scenario} semantics | " + " | ".join(cells) + " |")
    return rows


def missing_candidates() -> list[str]:
    """The candidates that are not in the `test` extra (the chosen ones are) must be installed by hand."""
    import importlib.util

    wanted = {"obstore": "obstore", "psycopg": "psycopg[binary]", "psycopg_pool": "psycopg-pool"}
    return [package for module, package in wanted.items() if importlib.util.find_spec(module) is None]


def main() -> int:
    if missing := missing_candidates():
        sys.exit("bench/engines.py compares against candidates not in '.[test]': "
                 f".venv/bin/pip install {' '.join(repr(m) for m in missing)}")
    parser = argparse.ArgumentParser(prog="bench/engines.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 run with a 64 MiB object")
    parser.add_argument("--runs", type=int, help="runs per candidate (default 3, 1 with --quick)")
    parser.add_argument("--size-mib", type=int, help="object size for the transfers (default 1024, 64 with --quick)")
    parser.add_argument("--only", choices=("s3", "pg"), help="measure only one engine's candidates")
    parser.add_argument("--json", type=Path, help="also write every sample as JSON here")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    size = (args.size_mib or (64 if args.quick else 1024)) * MIB
    report: dict[str, Any] = {"typing (mypy --strict)": typing_check()}
    lines: list[str] = []
    if args.only != "pg":
        lines += measure_s3(report, runs, size)
    if args.only != "s3":
        lines += measure_pg(report, runs)
    if EXIT_CRASHES:
        lines += ["", "Child processes that crashed on exit after printing their result: "
                  + ", ".join(f"{name} {count}x" for name, count in EXIT_CRASHES.items())]
    lines += ["", "| mypy --strict on a typical snippet | result |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in report["typing (mypy --strict)"].items()]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


def measure_s3(report: dict[str, Any], runs: int, size: int) -> list[str]:
    started = time.perf_counter()
    server = SeaweedServer.start()
    report["seaweedfs start s"] = time.perf_counter() - started
    log(f"SeaweedFS ready in {report['seaweedfs start s']:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="shadowpi-bench-") as tmp:
            source = Path(tmp, "object.bin")
            with source.open("wb") as out:
                for _ in range(size // (16 * MIB) or 1):
                    out.write(os.urandom(min(size, 16 * MIB)))
            report["s3 transfers"] = s3_transfers(server, source, runs)
        report["s3 behaviour"] = s3_behaviour(server)
    finally:
        server.stop()
    lines = [f"SeaweedFS start-up: {report['seaweedfs start s']:.1f} s; object {size // MIB} MiB; {runs} run(s)", ""]
    lines += s3_table(report["s3 transfers"])
    lines += ["", "| S3 behaviour against SeaweedFS | " + " | ".join(S3_CLIENTS) + " |",
              "|---|" + "---|" * len(S3_CLIENTS)]
    behaviour = report["s3 behaviour"]
    for key in behaviour[S3_CLIENTS[0]]:
        lines.append(f"| {key} | " + " | ".join(str(behaviour[c].get(key)) for c in S3_CLIENTS) + " |")
    return [*lines, ""]


def measure_pg(report: dict[str, Any], runs: int) -> list[str]:
    started = time.perf_counter()
    server = PostgresServer.start()
    report["postgres start s"] = time.perf_counter() - started
    log(f"PostgreSQL ready in {report['postgres start s']:.1f} s")
    try:
        report["pg drivers"] = pg_drivers(server, runs)
    finally:
        server.stop()
    return [f"PostgreSQL start-up (initdb + pg_ctl start): {report['postgres start s']:.1f} s; {runs} run(s)", "",
            *pg_table(report["pg drivers"])]


if __name__ == "__main__":
    sys.exit(main())
