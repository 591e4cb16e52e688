"""The local-directory blob backend: content-addressed files under the data dir (blobs.py), fill coordination
between the processes sharing that directory with flock() and hard links (fills.py), all opened together
by backend.py's open_local()."""
