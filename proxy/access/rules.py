"""The permission rule, in one function: who may read, upload, manage files, manage owners and read the audit log
of an index, with token scopes intersected (a token never grants more than its user has)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from proxy.access.model import IndexDef, Member, TokenScope, Who
from proxy.simple.names import NormalizedName


class Act(enum.Enum):
    READ = "read"
    UPLOAD = "upload"  # a new file in a project (creating the project when it does not exist)
    MANAGE = "manage"  # yank, unyank, delete
    OWNERS = "owners"  # add or remove owners and maintainers
    LOG = "log"  # read the audit log


_VERB = {Act.READ: "read", Act.UPLOAD: "upload to", Act.MANAGE: "manage files of", Act.OWNERS: "manage owners of",
         Act.LOG: "read the audit log of"}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    status: int = 200  # 401 (anonymous read: pip prompts for credentials), 403 otherwise
    reason: str = ""


ALLOWED = Decision(True)


def token_expired(token: TokenScope | None, now: float) -> str | None:
    """The refusal for an expired token, else None."""
    if token is None or token.expires_at is None or token.expires_at > now:
        return None
    when = datetime.fromtimestamp(token.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"This API token expired on {when}; create a new one (shadowpi token create)."


def decide(
    act: Act, who: Who, index: IndexDef, *, project: NormalizedName | None = None, exists: bool = False,
    members: tuple[Member, ...] = (), now: float = 0.0,
) -> Decision:
    """Whether `who` may do `act` in `index` (on `project`, which `exists` or not, with these `members`)."""
    expired = token_expired(who.token, now)
    if expired is not None:
        return Decision(False, 401 if act is Act.READ else 403, expired)
    refused = _token_refuses(act, who.token, index, project)
    if refused is not None:
        return Decision(False, 403, refused)
    if _user_may(act, who, index, exists=exists, members=members):
        return ALLOWED
    if who.user is None:
        status = 401 if act is Act.READ else 403
        return Decision(False, status, f"Authentication required to {_VERB[act]} index {index.name!r}.")
    target = f"project {project!r} in index {index.name!r}" if project and act is not Act.READ else \
        f"index {index.name!r}"
    return Decision(False, 403, f"The user {who.user!r} isn't allowed to {_VERB[act]} {target}.")


def _user_may(act: Act, who: Who, index: IndexDef, *, exists: bool, members: tuple[Member, ...]) -> bool:
    if who.matches(index.admin):
        return True
    if act is Act.READ:
        return who.matches(index.read)
    if act is Act.LOG:
        return False
    if not index.owners:  # root before indexes: every uploader manages every project
        return who.user is not None and who.matches(index.upload)
    if act is Act.UPLOAD and not exists:
        return who.user is not None and who.matches(index.upload)
    return who.is_member(members, owner_only=act is Act.OWNERS)


def _token_refuses(act: Act, token: TokenScope | None, index: IndexDef, project: NormalizedName | None) -> str | None:
    if token is None:
        return None
    needed = "read" if act is Act.READ else "upload"
    if needed not in token.actions:
        return f"This API token is {'read-only' if 'read' in token.actions else 'upload-only'}: it may not " \
               f"{_VERB[act]} index {index.name!r}."
    if token.indexes and index.name not in token.indexes:
        return f"This API token is not valid for index {index.name!r} (only {', '.join(sorted(token.indexes))})."
    if act is not Act.READ and token.project is not None and project != token.project:
        return f"This API token is scoped to project {token.project!r}, not {project!r}."
    return None
