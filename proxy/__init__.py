"""shadowpi: caching proxy and private overlay index for Python packages."""

__version__ = "0.1.0"
