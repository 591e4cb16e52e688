"""shadowpi's benchmark: shadowpi and an nginx proxy_cache reference against a local static upstream.

Run it with `.venv/bin/python bench/run.py` (see bench/README.md).
"""
