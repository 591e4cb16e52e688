"""Resource attacks (issue 10 items 4-8) against a real `shadowpi serve`: `.venv/bin/python bench/attacks.py`.

For each attack, a fresh server; the attack runs for --seconds while a real `pip install` goes through the same
server. Reported per attack: the server's peak RSS (VmHWM), /health latency (probed from a separate process),
how long pip took and whether it succeeded, how much the server logged, and what the attacker was answered.
tests/test_attacks.py checks only that pip succeeds (with smaller attacks); the numbers live here.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: import the checkout's packages, not bench/ siblings
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import tempfile
import time

from bench.fuzz import HealthProber, percentile
from tests.fuzzkit.siege import Siege, peak_rss_kib, siege, sieges, wait_seconds

RESULTS = Path(__file__).resolve().parent / "results" / "attacks-latest.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/attacks.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="only these attacks (repeatable), e.g. slowloris")
    parser.add_argument("--seconds", type=float, default=30, help="how long each attack runs (default 30)")
    parser.add_argument("--bomb-entries", type=int, default=1_850_000, help="central-directory entries (1.85 M)")
    parser.add_argument("--parts", type=int, default=100_000, help="parts per flood request (default 100,000)")
    parser.add_argument("--huge-files", type=int, default=100_000, help="files per huge page (default 100,000)")
    parser.add_argument("--connections", type=int, default=300, help="slowloris connections (default 300)")
    parser.add_argument("--flooders", type=int, default=32, help="concurrent wrong passwords (default 32)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"result file (default {RESULTS})")
    return parser


def measure(spec: Siege, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"shadowpi-{spec.name}-") as tmp:
        root = Path(tmp)
        with siege(spec, root / "server", huge_files=args.huge_files, engage_timeout=300) as field:
            engaged = time.monotonic()
            prober = HealthProber([field.server])
            code, output = field.pip_install(root / "site", "depends-on-tiny")
            pip_seconds = time.monotonic() - engaged
            wait_seconds(max(0.0, args.seconds - pip_seconds))
            rss = peak_rss_kib(field.server.pid)
            prober.stop()
            statuses = dict(field.attack.statuses)
        log_bytes = (root / "server" / spec.surface.name / "serve.log").stat().st_size
    samples = [ms for ms, _when, _port in prober.samples]
    return {
        "attack": spec.name, "item": spec.item, "peak_rss_mib": round(rss / 1024, 1),
        "pip_ok": code == 0, "pip_seconds": round(pip_seconds, 1), "pip_tail": "" if code == 0 else output[-300:],
        "health_p50_ms": round(percentile(samples, 0.5), 1), "health_p99_ms": round(percentile(samples, 0.99), 1),
        "health_max_ms": round(max(samples, default=0.0), 1), "health_failed": len(prober.failures),
        "log_bytes": log_bytes, "exit_code": field.server.exit_code, "attacker_answers": statuses,
    }


def main() -> int:
    args = build_parser().parse_args()
    specs = sieges(bomb_entries=args.bomb_entries, parts=args.parts, connections=args.connections,
                   flooders=args.flooders)
    rows = []
    for spec in specs:
        if args.only and spec.name not in args.only:
            continue
        print(f"[{spec.name}] item {spec.item}: attacking for {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
        rows.append(measure(spec, args))
    print(f"\n{'attack':14} {'item':>4} {'peak RSS':>10} {'pip':>12} {'/health p50/p99/max ms':>24} "
          f"{'failed':>6} {'log':>9} {'exit':>4}  attacker got")
    for r in rows:
        pip = f"{'ok' if r['pip_ok'] else 'FAILED'} {r['pip_seconds']}s"
        latency = f"{r['health_p50_ms']}/{r['health_p99_ms']}/{r['health_max_ms']}"
        print(f"{r['attack']:14} {r['item']:>4} {r['peak_rss_mib']:>8}MiB {pip:>12} {latency:>24} "
              f"{r['health_failed']:>6} {r['log_bytes']:>8}B {r['exit_code']!s:>4}  {r['attacker_answers']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"seconds": args.seconds, "rows": rows}, indent=1))
    return 0 if all(r["pip_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
