"""`python -m proxy` runs the shadowpi command line."""

from proxy.cli import main

raise SystemExit(main())
