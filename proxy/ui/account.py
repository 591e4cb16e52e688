"""Signing in and out (session cookie), and the signed-in user's own API tokens."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from proxy.access.model import TokenScope
from proxy.auth import generate_token, hash_token
from proxy.errors import AuthenticationRequired, BadRequest, Forbidden
from proxy.keys import ACCESS, AUTH, BACKENDS
from proxy.ui.access import actor, audit, record
from proxy.ui.context import UI, Viewer
from proxy.ui.respond import checked_form, field, render, see_other, sign_in_required, ui_page
from proxy.ui.session import SESSION_COOKIE, Session
from proxy.ui.urls import safe_next

routes = web.RouteTableDef()
WRONG_CREDENTIALS = "Wrong user name or password (or token)."
TOKENS_NEED_PASSWORD = "Sign in with your password to create tokens: a token cannot make more tokens."  # noqa: S105 - a message
# A leaked token must not lock its owner's other tokens (CI's) out.
REVOKE_ONLY_OWN = (
    "Signed in with a token, you may revoke only the token you signed in with: sign in with your password to "
    "revoke others."
)


@routes.get("/account/login", name="ui.login")
@ui_page(public=True)
async def login_form(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    context = {"next": safe_next(request.query.get("next")) or "/", "error": None}
    return render(request, viewer, "login.html", context, forms=True)


@routes.post("/account/login", name="ui.login_post")
@ui_page(public=True)
async def login(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The same users and tokens as the API (bcrypt in its own threads, the same failure limit per address)."""
    form = await checked_form(request, viewer)
    user, password = field(form, "username", 200), field(form, "password", 1000)
    next_path = safe_next(field(form, "next", 2000)) or "/"
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        if ":" in user or not user:
            raise AuthenticationRequired(WRONG_CREDENTIALS)
        identity = await request.app[AUTH].identify(header, request.remote)
    except AuthenticationRequired:
        context = {"next": next_path, "error": WRONG_CREDENTIALS, "username": user}
        return render(request, viewer, "login.html", context, status=403, forms=True)
    assert identity is not None  # identify() returns None only without Basic credentials
    lifetime = request.app[UI].config.ui.session_lifetime
    token_hash = hash_token(password) if identity.via == "token" else None
    cookie = request.app[UI].signer.session_cookie(
        Session(identity.user, identity.via, time.time() + lifetime, token_hash))
    response = see_other(viewer.urls.root + next_path[1:])
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(lifetime), httponly=True, samesite="Lax",
                        secure=viewer.secure, path="/")
    return response


@routes.post("/account/logout", name="ui.logout")
@ui_page(public=True)
async def logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await checked_form(request, viewer)
    response = see_other(viewer.urls.home())
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/account/tokens", name="ui.tokens")
@ui_page()
async def tokens(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    if viewer.identity is None:
        return sign_in_required(request, viewer)
    return await _tokens_page(request, viewer, created=None, done=request.query.get("revoked"))


async def _tokens_page(request: web.Request, viewer: Viewer, *, created: str | None, done: str | None) -> web.Response:
    assert viewer.user is not None
    records = await request.app[UI].tokens.list_tokens(viewer.user)
    context = {"tokens": list(reversed(records)), "created": created, "revoked": done,
               "can_create": viewer.identity is not None and viewer.identity.via == "password"}
    return render(request, viewer, "tokens.html", context, forms=True)


@routes.post("/account/tokens", name="ui.tokens_create")
@ui_page()
async def create_token(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A new token for the signed-in user, shown once in this response (never in a URL, never stored)."""
    form = await checked_form(request, viewer)
    if viewer.identity is None:
        return sign_in_required(request, viewer)
    if viewer.identity.via != "password":
        raise Forbidden(TOKENS_NEED_PASSWORD)
    description = field(form, "description", 200) or None
    scope = _scope(request, form)
    token = generate_token()
    token_id = await request.app[UI].tokens.add_token(viewer.identity.user, hash_token(token), description, scope)
    audit(viewer.identity, "created token", str(token_id), description or "")
    await record(request.app[BACKENDS].meta, actor(viewer.identity, request.remote), "token-create", str(token_id))
    return await _tokens_page(request, viewer, created=token, done=None)


def _scope(request: web.Request, form: Mapping[str, Any]) -> TokenScope:
    """The scope chosen in the form (issue 14): indexes (comma-separated; empty: every index), read-only, expiry in
    days (empty: none). Raises BadRequest naming the field."""
    known = request.app[ACCESS].current.indexes
    indexes = frozenset(name.strip() for name in field(form, "indexes", 500).split(",") if name.strip())
    unknown = sorted(indexes - set(known))
    if unknown:
        raise BadRequest(f"No index named {unknown[0]!r} (known: {', '.join(known)}).")
    days = field(form, "expires_days", 10)
    if days and not (days.isdigit() and 0 < int(days) <= 3650):
        raise BadRequest("Expires in: a whole number of days between 1 and 3650, or nothing.")
    actions = frozenset({"read"} if field(form, "read_only", 10) else {"read", "upload"})
    return TokenScope(indexes, None, actions, time.time() + int(days) * 86400 if days else None)


@routes.post("/account/tokens/revoke", name="ui.tokens_revoke")
@ui_page()
async def revoke_token(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await checked_form(request, viewer)
    if viewer.identity is None:
        return sign_in_required(request, viewer)
    token_id = field(form, "token_id", 20)
    store = request.app[UI].tokens
    own = {t.id for t in await store.list_tokens(viewer.identity.user) if t.revoked_at is None}
    if not token_id.isdigit() or int(token_id) not in own:  # only one's own tokens, whoever asks
        raise BadRequest(f"You have no active token with id {token_id!r}.")
    used = viewer.identity.token
    if viewer.identity.via == "token" and (used is None or used.token_id != int(token_id)):
        raise Forbidden(REVOKE_ONLY_OWN)
    await store.revoke_token(int(token_id))
    audit(viewer.identity, "revoked token", token_id)
    await record(request.app[BACKENDS].meta, actor(viewer.identity, request.remote), "token-revoke", token_id)
    return see_other(viewer.urls.tokens() + f"?revoked={token_id}")
