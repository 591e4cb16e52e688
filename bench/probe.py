"""`python bench/probe.py PORT [PORT...]`: GET /health on 127.0.0.1:PORT every 20 ms until stdin closes.

A process of its own, so the latency it measures is the server's and not the GIL of a busy benchmark process.
Prints one line per probe: `<port> <unix time it started> <milliseconds>` (or `<port> <time> fail <reason>`).
"""

from __future__ import annotations

import http.client
import sys
import threading
import time

TIMEOUT = 30.0


def probe(port: int) -> str:
    return f"{port} {time.time():.3f} {_probe(port)}"


def _probe(port: int) -> str:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            return f"fail status {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return f"fail {type(exc).__name__}"
    finally:
        conn.close()
    return f"{(time.perf_counter() - started) * 1000:.2f}"


def main() -> int:
    ports = [int(p) for p in sys.argv[1:]]
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.02):
        for port in ports:
            print(probe(port), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
