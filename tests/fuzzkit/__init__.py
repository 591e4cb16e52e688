"""Fuzzing the HTTP surface: a raw HTTP/1.1 sender, Hypothesis strategies per route, the servers and invariants.

Used by tests/test_fuzz.py (the bounded CI run) and bench/fuzz.py (the long run).
"""
