"""Contract: API tokens, stored as hashes."""

from __future__ import annotations

from tests.backends.conftest import BackendsUnderTest

HASH_1, HASH_2, HASH_3 = "1" * 64, "2" * 64, "3" * 64


async def test_tokens_are_found_by_hash_until_revoked(backends: BackendsUnderTest) -> None:
    """token_user returns the owner of a live token; after revoke_token, nobody (revoking twice says False)."""
    meta = backends.meta
    token_id = await meta.add_token("alice", HASH_1, "ci")
    assert await meta.token_user(HASH_1) == "alice"
    assert await meta.token_user(HASH_2) is None
    assert await meta.revoke_token(token_id) is True
    assert await meta.token_user(HASH_1) is None
    assert await meta.revoke_token(token_id) is False
    assert await meta.revoke_token(token_id + 100) is False


async def test_tokens_are_listed_oldest_first_optionally_by_user(backends: BackendsUnderTest) -> None:
    """list_tokens: every token (or one user's), in the order they were created, with their bookkeeping."""
    meta = backends.meta
    ids = [await meta.add_token(user, token_hash, note) for user, token_hash, note in
           (("alice", HASH_1, "ci"), ("bob", HASH_2, None), ("alice", HASH_3, "laptop"))]
    assert len(set(ids)) == 3
    listed = await meta.list_tokens()
    assert [(t.id, t.user, t.description) for t in listed] == [
        (ids[0], "alice", "ci"), (ids[1], "bob", None), (ids[2], "alice", "laptop")
    ]
    assert [t.id for t in await meta.list_tokens("alice")] == [ids[0], ids[2]]
    assert all(t.last_used is None and t.revoked_at is None and t.created_at > 0 for t in listed)


async def test_a_token_use_is_recorded_at_most_once_a_minute(backends: BackendsUnderTest) -> None:
    """The first use sets last_used; uses within the next minute leave it alone (no write per request)."""
    meta = backends.meta
    await meta.add_token("alice", HASH_1)
    assert await meta.token_user(HASH_1) == "alice"
    [first] = await meta.list_tokens()
    assert first.last_used is not None
    assert await meta.token_user(HASH_1) == "alice"
    [second] = await meta.list_tokens()
    assert second.last_used == first.last_used


async def test_a_shared_secret_is_created_once_and_the_same_for_every_process(backends: BackendsUnderTest) -> None:
    """shared_secret: the first caller creates `length` random bytes; every later caller, in this process or
    another (a worker, a replica), gets the very same bytes; different names are different secrets."""
    first = await backends.meta.shared_secret("ui-session")
    assert len(first) == 32
    async with backends.reopen() as other:
        assert await other.meta.shared_secret("ui-session") == first
        assert await other.meta.shared_secret("another", 16) != first[:16]
    assert await backends.meta.shared_secret("ui-session") == first
    assert len(await backends.meta.shared_secret("another", 16)) == 16
