"""The audit log's records as the services write them: who acts (and how), and one entry per change, written in
the transaction of the change it records (so API, CLI and web interface all record, and nothing is logged that
did not happen)."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from proxy.backends.records import AuditEntry


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: a user, how they proved it ("password", "token:<id>", "cli", "web"), from where."""

    user: str
    via: str
    address: str | None = None


def audit_entry(
    actor: Actor, action: str, index: str | None, project: str | None, target: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> AuditEntry:
    text = json.dumps(detail, sort_keys=True) if detail else ""
    return AuditEntry(time.time(), actor.user, actor.via, actor.address, action, index, project, target, text)


def operator() -> Actor:
    """The operator at the shell (the CLI commands): "cli:<login>"."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        login = "unknown"
    return Actor(f"cli:{login}", "cli")
