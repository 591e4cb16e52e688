"""Who may do what in the web interface: every "may this identity manage this project?" goes through here.

The rule is the API's (proxy/access/rules.py, issue 14): owners and maintainers of the project, and the index's
admins; in a root index without an [indexes.root] table, any user (as before indexes). The operations page is for
`[ui] admins`. Management actions are written to the audit log by the services (the same entries as the API's
and the CLI's); token changes made here are written by record().
"""

from __future__ import annotations

import logging
import time

from proxy.access import Act, Decision, decide
from proxy.access.model import Access, IndexDef, Member, Who
from proxy.audit import Actor, audit_entry
from proxy.auth import Identity
from proxy.backends.metadata import MetadataStore
from proxy.config import UiConfig
from proxy.simple.names import NormalizedName

log = logging.getLogger("proxy.ui.audit")


def may_manage(
    identity: Identity | None, project: NormalizedName, *, access: Access, index: IndexDef,
    members: tuple[Member, ...],
) -> bool:
    """Whether `identity` may yank, unyank and delete files of `project` (the same rule as the HTTP API)."""
    if identity is None:
        return False
    return manage_decision(identity, project, access=access, index=index, members=members).allowed


def manage_decision(
    identity: Identity, project: NormalizedName, *, access: Access, index: IndexDef,
    members: tuple[Member, ...],
) -> Decision:
    """The rule's decision on `identity` managing `project`, with its reason (a token's scope says what it allows)."""
    who = Who(identity.user, access.groups_of(identity.user), identity.token)
    return decide(Act.MANAGE, who, index, project=project, members=members, now=time.time())


def is_admin(identity: Identity | None, config: UiConfig) -> bool:
    """Whether `identity` may see the operations page: a user listed in [ui] admins (password or token)."""
    return identity is not None and identity.user in config.admins


def actor(identity: Identity, address: str | None) -> Actor:
    """The web interface's actor for the audit log: via "web" (a signed-in session)."""
    return Actor(identity.user, f"web:{identity.via}", address)


def audit(identity: Identity, action: str, subject: str, detail: str = "") -> None:
    """A log line per management action (logger proxy.ui.audit, like the API's "alice yanked …"); the audit log
    itself is written by the services."""
    log.info("%s %s %s%s (web, via %s)", identity.user, action, subject, f": {detail}" if detail else "",
             identity.via)


async def record(meta: MetadataStore, who: Actor, action: str, target: str) -> None:
    """An audit-log entry for a change made outside the services (the tokens page)."""
    await meta.add_audit(audit_entry(who, action, None, None, target))
