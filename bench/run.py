"""Run the shadowpi benchmark: `.venv/bin/python bench/run.py [--quick] [--runs N] [--json OUT] [--compare OLD]`.

See bench/README.md for what each scenario measures and how to read the table.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    # Run as a script, sys.path[0] is bench/ itself, where our module names could shadow others.
    # Import the `bench` package from the checkout instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    from bench.cli import main as bench_main

    try:
        return bench_main()
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
