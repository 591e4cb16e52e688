"""Real engines for the test suite: a throwaway PostgreSQL cluster and a SeaweedFS S3 store (see fixtures.py)."""
