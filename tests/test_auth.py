"""Tests for proxy.auth: htpasswd parsing and verification, the credential cache, tokens and permissions."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from proxy.auth import (
    BAD_CREDENTIALS,
    READ_NEEDS_AUTH,
    UPLOAD_NEEDS_AUTH,
    UPLOADS_NOT_SET_UP,
    Action,
    Authenticator,
    CredentialCache,
    FailureLimiter,
    Htpasswd,
    Identity,
    generate_token,
    hash_token,
    parse_basic_auth,
)
from proxy.backends.metadata import MetadataStore
from proxy.errors import AuthenticationRequired, ConfigError, Forbidden, TooManyRequests
from proxy.keys import AUTH, FILES
from tests.artifacts import build_wheel
from tests.proxy_fixtures import ProxyFactory
from tests.publishing import TOKEN_AUTH, add_token, write_htpasswd
from tests.stores import data_dir_meta


def bhash(password: str, prefix: str = "$2b$") -> str:
    """A real, fast (cost 4) bcrypt hash, spelled with the given prefix."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return prefix + hashed[4:]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def htpasswd_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    path.write_text(
        f"# shadowpi users\n\nalice:{bhash('wonderland')}\n"
        f"bob:{bhash('builder', '$2y$')}\r\ncarol:{bhash('pa:ss', '$2a$')}\n"
    )
    return path


@pytest.fixture(scope="module")
def users(htpasswd_file: Path) -> Htpasswd:
    return Htpasswd.load(htpasswd_file)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    async with data_dir_meta(tmp_path) as meta:
        yield meta


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Counts bcrypt.checkpw calls (records the hashes checked) while delegating to the real one."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


class NoTokens:
    async def token_record(self, token_hash: str) -> None:
        return None


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(text)
    return path


# --- Htpasswd --------------------------------------------------------------------------------------------


def test_right_password_verifies(users: Htpasswd) -> None:
    """A $2b$ entry accepts its password."""
    assert users.verify("alice", "wonderland")


def test_wrong_password_fails(users: Htpasswd) -> None:
    """A wrong password, or another user's password, is refused."""
    assert not users.verify("alice", "Wonderland")
    assert not users.verify("alice", "builder")


def test_unknown_user_fails_after_running_bcrypt(users: Htpasswd, bcrypt_calls: list[bytes]) -> None:
    """An unknown user is refused, but only after a bcrypt check against the dummy hash (same timing)."""
    assert not users.verify("mallory", "wonderland")
    assert len(bcrypt_calls) == 1


def test_2y_entry_as_htpasswd_b_writes_it(users: Htpasswd) -> None:
    """$2y$ (what `htpasswd -B` writes) verifies like $2b$; so does $2a$, and passwords may contain colons."""
    assert users.verify("bob", "builder")
    assert users.verify("carol", "pa:ss")
    assert not users.verify("bob", "wonderland")


def test_comments_blank_lines_and_crlf_are_ignored(users: Htpasswd) -> None:
    """Only the three entries are users; comments, blank lines and CRLF endings are skipped."""
    assert users.users == frozenset({"alice", "bob", "carol"})


def test_overlong_password_never_matches(tmp_path: Path) -> None:
    """A password over 72 bytes is a non-match (bcrypt would ignore the tail), even if its first 72 bytes match."""
    exact = "x" * 72
    users = Htpasswd.load(write(tmp_path, f"dave:{bhash(exact)}\n"))
    assert users.verify("dave", exact)
    assert not users.verify("dave", exact + "y")
    assert not users.verify("dave", "é" * 37)  # 74 bytes in UTF-8


@pytest.mark.parametrize(
    ("entry", "scheme"),
    [
        ("$apr1$abcdefgh$0123456789abcdefghijkl", "weak password scheme ($apr1$ MD5)"),
        ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "weak password scheme ({SHA} SHA-1)"),
        ("$1$abcdefgh$0123456789abcdefghijkl", "weak password scheme ($1$ MD5-crypt)"),
        ("abJnggxhB/yWI", "weak password scheme (crypt DES)"),
        ("hunter2", "weak password scheme (plaintext)"),
        ("$6$salt$" + "a" * 86, "unsupported password scheme"),
        ("$2b$04$tooshort", "malformed bcrypt hash"),
    ],
)
def test_non_bcrypt_entries_are_rejected_with_line_number(tmp_path: Path, entry: str, scheme: str) -> None:
    """Every non-bcrypt entry fails the load, naming file:line, the user and the scheme, but not the hash."""
    path = write(tmp_path, f"# users\nalice:{bhash('a')}\nbob:{entry}\n")
    with pytest.raises(ConfigError) as info:
        Htpasswd.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: user 'bob' ")
    assert scheme in message
    assert entry not in message  # a plaintext entry is a password
    if "weak" in scheme:
        assert message.endswith("recreate it with `htpasswd -B`")


@pytest.mark.parametrize("line", ["no-colon-here", ":$2b$04$x", "alice:"])
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    """A line without user or hash is a ConfigError with file:line, and the line's text is not echoed."""
    path = write(tmp_path, f"\n{line}\n")
    with pytest.raises(ConfigError, match=r":2: malformed line") as info:
        Htpasswd.load(path)
    assert str(info.value).startswith(f"{path}:2:")


def test_duplicate_and_reserved_users_are_rejected(tmp_path: Path) -> None:
    """A user listed twice, or the reserved __token__ user, fails the load."""
    with pytest.raises(ConfigError, match=r":2: user 'a' appears twice \(first on line 1\)"):
        Htpasswd.load(write(tmp_path, f"a:{bhash('1')}\na:{bhash('2')}\n"))
    with pytest.raises(ConfigError, match="reserved for API tokens"):
        Htpasswd.load(write(tmp_path, f"__token__:{bhash('1')}\n"))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file names the config key, the path and the reason."""
    path = tmp_path / "nope"
    with pytest.raises(ConfigError, match=rf"^auth\.htpasswd: cannot read {path}: No such file or directory$"):
        Htpasswd.load(path)


def test_repr_shows_path_and_count_only(users: Htpasswd, htpasswd_file: Path) -> None:
    """repr() names the path and user count, never user names or hashes."""
    assert repr(users) == f"Htpasswd(path={str(htpasswd_file)!r}, users=3)"
    assert "$2" not in repr(users) and "alice" not in repr(users)


# --- parse_basic_auth and tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("alice", "wonderland"), ("alice", "wonderland")),
        ("bAsIc " + base64.b64encode(b"u:p:q").decode(), ("u", "p:q")),
        ("Basic " + base64.b64encode(b":").decode(), ("", "")),
        (None, None),
        ("", None),
        ("Basic", None),
        ("Basic !!!", None),
        ("Bearer abc", None),
        ("Basic " + base64.b64encode(b"nocolon").decode(), None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
        ("Basic éé", None),
    ],
)
def test_parse_basic_auth(header: str | None, expected: tuple[str, str] | None) -> None:
    """Basic credentials are decoded (case-insensitive scheme, split on the first colon); garbage gives None."""
    assert parse_basic_auth(header) == expected


def test_tokens_are_prefixed_random_and_hashed_with_sha256() -> None:
    """Tokens start with spi_, differ each time, and are stored as a 64-hex sha256 that is not the token."""
    first, second = generate_token(), generate_token()
    assert first.startswith("spi_") and len(first) > 40 and first != second
    assert len(hash_token(first)) == 64 and hash_token(first) == hash_token(first) != hash_token(second)


# --- Authenticator: identify -----------------------------------------------------------------------------


async def test_password_login(users: Htpasswd) -> None:
    """Right Basic credentials give a password identity; wrong or unknown ones raise AuthenticationRequired."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=False)
    assert await auth.identify(basic("bob", "builder")) == Identity("bob", "password")
    for header in (basic("bob", "wrong"), basic("mallory", "builder")):
        with pytest.raises(AuthenticationRequired, match=f"^{BAD_CREDENTIALS}$"):
            await auth.identify(header)


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Digest username=x"])
async def test_no_basic_credentials_is_anonymous(users: Htpasswd, header: str | None) -> None:
    """No header, or another scheme than Basic, identifies nobody (anonymous) instead of failing."""
    assert await Authenticator(users, NoTokens(), read_requires_auth=False).identify(header) is None


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!",
        "basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + base64.b64encode(b"\xff:x").decode(),
    ],
)
async def test_garbled_basic_credentials_are_refused(users: Htpasswd, header: str) -> None:
    """A Basic header that cannot be decoded is a failed login, not anonymous."""
    with pytest.raises(AuthenticationRequired, match=f"^{BAD_CREDENTIALS}$"):
        await Authenticator(users, NoTokens(), read_requires_auth=False).identify(header)


async def test_password_without_htpasswd_is_refused() -> None:
    """With no htpasswd configured, user:password credentials can never succeed."""
    with pytest.raises(AuthenticationRequired):
        await Authenticator(None, NoTokens(), read_requires_auth=False).identify(basic("alice", "wonderland"))


async def test_credential_cache_runs_bcrypt_once(users: Htpasswd, bcrypt_calls: list[bytes]) -> None:
    """Repeated logins with the same credentials run bcrypt once; the cache holds no password."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=False)
    for _ in range(5):
        assert await auth.identify(basic("alice", "wonderland")) == Identity("alice", "password")
    assert len(bcrypt_calls) == 1
    assert b"wonderland" not in b"".join(auth._cache._expiry)


async def test_concurrent_logins_share_one_bcrypt_run(users: Htpasswd, bcrypt_calls: list[bytes]) -> None:
    """Parallel requests with the same uncached credentials (uv downloads) wait for one bcrypt run."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=False)
    results = await asyncio.gather(*(auth.identify(basic("alice", "wonderland")) for _ in range(10)))
    assert set(results) == {Identity("alice", "password")}
    assert len(bcrypt_calls) == 1


async def test_failed_logins_are_not_cached(users: Htpasswd, bcrypt_calls: list[bytes]) -> None:
    """Every failed login runs bcrypt again: failures are never cached."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=False)
    for _ in range(3):
        with pytest.raises(AuthenticationRequired):
            await auth.identify(basic("alice", "wrong"))
    assert len(bcrypt_calls) == 3
    assert len(auth._cache) == 0


async def test_reloading_htpasswd_drops_the_cache(users: Htpasswd, tmp_path: Path) -> None:
    """After set_htpasswd, a password cached from the old file no longer works."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=False)
    await auth.identify(basic("alice", "wonderland"))
    auth.set_htpasswd(Htpasswd.load(write(tmp_path, f"alice:{bhash('new')}\n")))
    with pytest.raises(AuthenticationRequired):
        await auth.identify(basic("alice", "wonderland"))
    assert await auth.identify(basic("alice", "new")) == Identity("alice", "password")


def test_cache_entries_expire_and_the_oldest_is_evicted() -> None:
    """Entries expire after the TTL, and past max_entries the oldest one goes."""
    now = [0.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    cache = CredentialCache(ttl=300, max_entries=2, clock=clock)
    a, b, c = (cache.key(u, "pw") for u in "abc")
    cache.add(a)
    now[0] = 299.0
    assert cache.hit(a)
    now[0] = 300.0
    assert not cache.hit(a) and len(cache) == 0
    for key in (a, b, c):
        cache.add(key)
    assert not cache.hit(a) and cache.hit(b) and cache.hit(c)


def test_cache_keys_do_not_collide_across_the_separator() -> None:
    """("a", "b\\0c") and ("a\\0b", "c") are different cache keys."""
    cache = CredentialCache()
    assert cache.key("a", "b\0c") != cache.key("a\0b", "c")


async def test_token_login(db: MetadataStore, users: Htpasswd) -> None:
    """A stored token works with username __token__ or its owner's name, and identifies its owner."""
    token = generate_token()
    await db.add_token("alice", hash_token(token), "ci")
    auth = Authenticator(users, db, read_requires_auth=True)
    assert await auth.identify(basic("__token__", token)) == Identity("alice", "token")
    assert await auth.identify(basic("alice", token)) == Identity("alice", "token")
    for header in (basic("bob", token), basic("__token__", token + "x"), basic("__token__", "")):
        with pytest.raises(AuthenticationRequired, match=f"^{BAD_CREDENTIALS}$"):
            await auth.identify(header)


async def test_revoked_token_is_refused(db: MetadataStore) -> None:
    """After revoke_token, the token no longer identifies anyone."""
    token = generate_token()
    token_id = await db.add_token("alice", hash_token(token))
    auth = Authenticator(None, db, read_requires_auth=False)
    assert await auth.identify(basic("__token__", token)) == Identity("alice", "token")
    assert await db.revoke_token(token_id)
    with pytest.raises(AuthenticationRequired):
        await auth.identify(basic("__token__", token))


# --- Authenticator: permissions --------------------------------------------------------------------------

PASSWORD = Identity("alice", "password")
TOKEN = Identity("alice", "token")


@pytest.mark.parametrize(
    ("action", "identity", "read_requires_auth", "outcome"),
    [
        (Action.READ, None, False, None),
        (Action.READ, None, True, READ_NEEDS_AUTH),
        (Action.READ, PASSWORD, True, None),
        (Action.READ, TOKEN, True, None),
        (Action.UPLOAD, None, False, UPLOAD_NEEDS_AUTH),
        (Action.UPLOAD, None, True, UPLOAD_NEEDS_AUTH),
        (Action.UPLOAD, PASSWORD, False, None),
        (Action.UPLOAD, TOKEN, True, None),
        (Action.DELETE, None, False, UPLOAD_NEEDS_AUTH),
        (Action.DELETE, PASSWORD, False, None),
        (Action.DELETE, TOKEN, True, None),
    ],
)
def test_permission_table(
    users: Htpasswd, action: Action, identity: Identity | None, read_requires_auth: bool, outcome: str | None
) -> None:
    """check() allows anonymous reads unless read=true, and uploads/deletes for any authenticated identity."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=read_requires_auth)
    if outcome is None:
        auth.check(action, identity)
    else:
        with pytest.raises(AuthenticationRequired) as info:
            auth.check(action, identity)
        assert str(info.value) == outcome
        assert not isinstance(info.value, Forbidden)


def test_known_identity_refused_by_the_rule_gets_forbidden(users: Htpasswd, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the rule refuses an authenticated identity (future ownership rules), check() raises Forbidden."""
    monkeypatch.setattr("proxy.auth.authenticator.permits", lambda action, identity, *, read_requires_auth: False)
    with pytest.raises(Forbidden, match=r"^The user 'alice' isn't allowed to upload here\.$"):
        Authenticator(users, NoTokens(), read_requires_auth=False).check(Action.UPLOAD, TOKEN)


def test_anonymous_upload_without_htpasswd_explains_the_setup() -> None:
    """With no htpasswd, the anonymous-upload message tells the operator about --htpasswd and token create."""
    auth = Authenticator(None, NoTokens(), read_requires_auth=False)
    with pytest.raises(AuthenticationRequired) as info:
        auth.check(Action.UPLOAD, None)
    assert str(info.value) == UPLOADS_NOT_SET_UP
    assert "--htpasswd" in UPLOADS_NOT_SET_UP and "shadowpi token create --user NAME" in UPLOADS_NOT_SET_UP
    assert "\n" not in UPLOADS_NOT_SET_UP and len(UPLOADS_NOT_SET_UP) <= 300  # fits the HTTP reason phrase


async def test_authorize_skips_credentials_for_open_reads(users: Htpasswd) -> None:
    """authorize() lets open reads through even with wrong credentials, and checks them for uploads."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=False)
    assert await auth.authorize(Action.READ, basic("alice", "wrong")) is None
    assert await auth.authorize(Action.UPLOAD, basic("alice", "wonderland")) == PASSWORD
    with pytest.raises(AuthenticationRequired, match=f"^{BAD_CREDENTIALS}$"):
        await auth.authorize(Action.UPLOAD, basic("alice", "wrong"))
    with pytest.raises(AuthenticationRequired, match="Uploads to shadowpi need"):
        await auth.authorize(Action.DELETE, None)


# --- failed-login throttling (issue 10, item 4) -----------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_refuses_past_max_failures_until_the_window_passes() -> None:
    """After max_failures unforgiven attempts an address gets TooManyRequests (with the seconds until the oldest
    attempt leaves the window); other addresses are unaffected, and a forgiven attempt frees its slot."""
    clock = ManualClock()
    limiter = FailureLimiter(3, 60.0, clock=clock)
    tickets = [limiter.reserve("10.0.0.1") for _ in range(3)]
    with pytest.raises(TooManyRequests) as caught:
        limiter.reserve("10.0.0.1")
    assert caught.value.retry_after == 60
    assert str(caught.value) == "Too many failed logins from your address; retry in 60 s."
    limiter.reserve("10.0.0.2")  # another address: its own budget
    limiter.forgive("10.0.0.1", tickets[0])  # that one was a correct password after all
    limiter.reserve("10.0.0.1")
    clock.now += 45
    with pytest.raises(TooManyRequests) as caught:
        limiter.reserve("10.0.0.1")
    assert caught.value.retry_after == 15
    clock.now += 15
    limiter.reserve("10.0.0.1")


async def test_a_throttled_address_runs_no_bcrypt_and_tokens_still_work(
    db: MetadataStore, users: Htpasswd, bcrypt_calls: list[bytes]
) -> None:
    """Wrong passwords from one address run bcrypt max_failures times, then get 429 without bcrypt. From that
    same address a token still works (tokens never touch bcrypt), and from another address the right password."""
    token = generate_token()
    await db.add_token("ci", hash_token(token))
    auth = Authenticator(users, db, read_requires_auth=True, limiter=FailureLimiter(3, 60.0))
    for attempt in range(6):
        with pytest.raises(AuthenticationRequired if attempt < 3 else TooManyRequests):
            await auth.identify(basic("alice", f"guess{attempt}"), "10.0.0.1")
    assert len(bcrypt_calls) == 3
    assert await auth.identify(basic("__token__", token), "10.0.0.1") == Identity("ci", "token")
    assert await auth.identify(basic("ci", token), "10.0.0.1") == Identity("ci", "token")
    assert len(bcrypt_calls) == 3
    assert await auth.identify(basic("alice", "wonderland"), "10.0.0.2") == Identity("alice", "password")


async def test_parallel_logins_with_the_same_credentials_take_one_slot(users: Htpasswd) -> None:
    """uv downloads 50 files at once with one uncached password: that is one bcrypt run and one slot, so even a
    limit of 1 lets all of them through; successes never count as failures."""
    auth = Authenticator(users, NoTokens(), read_requires_auth=True, limiter=FailureLimiter(1, 60.0))
    for round_ in range(2):
        if round_:
            auth.set_htpasswd(users)  # drop the cache: the second round runs bcrypt again
        results = await asyncio.gather(*(auth.identify(basic("bob", "builder"), "10.0.0.1") for _ in range(50)))
        assert set(results) == {Identity("bob", "password")}
    with pytest.raises(AuthenticationRequired):
        await auth.identify(basic("bob", "wrong"), "10.0.0.1")
    with pytest.raises(TooManyRequests):
        await auth.identify(basic("bob", "wrong again"), "10.0.0.1")
    assert await auth.identify(basic("bob", "builder"), "10.0.0.1") == Identity("bob", "password")  # cached


# --- through the app ---


def other_address_session() -> aiohttp.ClientSession:
    """A client whose connections come from 127.0.0.2 (loopback answers the whole 127/8): another address."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))


async def test_password_flood_gets_429_and_locks_out_no_one_else(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    """[auth] read = true, max_failures = 4: a flood of wrong passwords from one address gets 401 four times,
    then 429 with Retry-After; a legitimate user from another address, and a token user from the attacker's own
    address, are served throughout."""
    await add_token(make_proxy.data_dir, "ci")
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "right"})
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True, "max_failures": 4})
    wrong = {"Authorization": aiohttp.encode_basic_auth("alice", "wrong")}
    statuses = [(await proxy.get("/simple/", headers=wrong)).status for _ in range(8)]
    assert statuses == [401] * 4 + [429] * 4
    throttled = await proxy.get("/simple/", headers=wrong)
    retry = int(throttled.headers["Retry-After"])  # seconds until the first failure leaves the 60 s window
    assert 0 < retry <= 60
    assert throttled.status == 429
    assert throttled.reason == f"Too many failed logins from your address; retry in {retry} s."
    token = {"Authorization": aiohttp.encode_basic_auth(*TOKEN_AUTH)}
    assert (await proxy.get("/simple/", headers=token)).status == 200
    async with other_address_session() as other:
        right = {"Authorization": aiohttp.encode_basic_auth("alice", "right")}
        async with other.get(proxy.make_url("/simple/"), headers=right) as resp:
            assert resp.status == 200


class GatedHtpasswd(Htpasswd):
    """A real htpasswd file whose checks wait for a gate (a slow bcrypt, held as long as a test needs)."""

    def __init__(self, path: Path, hashes: Mapping[str, bytes]) -> None:
        super().__init__(path, hashes)
        self.gate = threading.Event()
        self.started = 0
        self.busy = asyncio.Event()  # set (on the test's loop) once a check has started
        self.loop = asyncio.get_running_loop()
        self._lock = threading.Lock()

    def verify(self, user: str, password: str) -> bool:
        with self._lock:
            self.started += 1
        self.loop.call_soon_threadsafe(self.busy.set)
        self.gate.wait(timeout=60)
        return super().verify(user, password)


async def test_password_checks_never_starve_file_io(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    """While many password checks are stuck in bcrypt, a token user's download of a cached file (stat and open
    run in the default executor) still completes: bcrypt has its own bounded pool."""
    wheel = build_wheel("poolcheck", "1.0")
    make_proxy.upstream.fake.add(wheel)
    await add_token(make_proxy.data_dir, "ci")
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "right"})
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True, "max_failures": 1000})
    token = {"Authorization": aiohttp.encode_basic_auth(*TOKEN_AUTH)}
    url = f"/files/poolcheck/{wheel.sha256}/{wheel.filename}"
    assert (await proxy.get("/simple/poolcheck/", headers=token)).status == 200
    assert await (await proxy.get(url, headers=token)).read() == wheel.data
    await proxy.app[FILES].settled()
    gated = GatedHtpasswd.load(htpasswd)
    assert isinstance(gated, GatedHtpasswd)
    proxy.app[AUTH].set_htpasswd(gated)
    flood = [asyncio.create_task(proxy.get("/simple/", headers={
        "Authorization": aiohttp.encode_basic_auth("alice", f"wrong{i}")})) for i in range(40)]
    try:
        await asyncio.wait_for(gated.busy.wait(), timeout=10)
        async with asyncio.timeout(20):  # a guard against a hang, not a timing assertion
            cached = await proxy.get(url, headers=token)
            assert (cached.status, await cached.read()) == (200, wheel.data)
        assert gated.started <= 2  # the pool's size (auth.bcrypt_threads): the rest wait their turn
    finally:
        gated.gate.set()
        for resp in await asyncio.gather(*flood):
            assert resp.status == 401


# --- [auth] read = true covers /ready and /metrics (issue 10, item 20) -------------------------------------


@pytest.mark.parametrize("path", ["/ready", "/metrics", "/", "/no/such/page"])
async def test_read_auth_covers_every_path_but_health(make_proxy: ProxyFactory, tmp_path: Path, path: str) -> None:
    """Under [auth] read = true only /health is anonymous: /ready, /metrics, the landing page and even unknown
    paths answer 401 without credentials, and work with them."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "right"})
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True})
    anonymous = await proxy.get(path)
    assert (anonymous.status, anonymous.headers.get("WWW-Authenticate")) == (401, 'Basic realm="shadowpi"')
    authorized = await proxy.get(path, headers={"Authorization": aiohttp.encode_basic_auth("alice", "right")})
    assert authorized.status == (404 if path == "/no/such/page" else 200)
    assert (await proxy.get("/health")).status == 200


async def test_metrics_token_still_works_under_read_auth(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    """With [metrics] token set, Prometheus keeps scraping with its bearer token alone under read = true."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "right"})
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True}, metrics={"token": "scrape-me"})
    assert (await proxy.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).status == 200
    assert (await proxy.get("/metrics")).status == 401
    assert (await proxy.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
