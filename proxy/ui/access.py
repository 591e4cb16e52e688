"""Who may do what in the web interface: every "may this identity manage this project?" goes through here.

Today's rules: managing (yank, unyank, delete) is the API's rule in proxy/auth.py (any authenticated user may);
the operations page is for `[ui] admins`. Issue 14 replaces both with owners/maintainers and index admins: change
these two functions and every page and form follows.
"""

from __future__ import annotations

import logging

from proxy.auth import Action, Identity, permits
from proxy.config import UiConfig
from proxy.simple.names import NormalizedName

log = logging.getLogger("proxy.ui.audit")


def may_manage(identity: Identity | None, project: NormalizedName, *, read_requires_auth: bool) -> bool:
    """Whether `identity` may yank, unyank and delete files of `project` (the same rule as the HTTP API)."""
    del project  # issue 14: per-project owners and maintainers
    return permits(Action.DELETE, identity, read_requires_auth=read_requires_auth)


def is_admin(identity: Identity | None, config: UiConfig) -> bool:
    """Whether `identity` may see the operations page: a user listed in [ui] admins (password or token)."""
    return identity is not None and identity.user in config.admins


def audit(identity: Identity, action: str, subject: str, detail: str = "") -> None:
    """Record a management action. Today a log line (logger proxy.ui.audit, like the API's "alice yanked …");
    issue 14's audit log hooks in here."""
    log.info("%s %s %s%s (web, via %s)", identity.user, action, subject, f": {detail}" if detail else "",
             identity.via)
