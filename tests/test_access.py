"""The pure core of issue 14 (proxy/access/): the index graph from the config, chain resolution and shadowing
across the chain, and the permission rule, by tables."""

from __future__ import annotations

import tomllib

import pytest

from proxy.access import ROOT, Act, IndexDef, Member, TokenScope, Who, decide, locate
from proxy.access.graph import root_index
from proxy.config_load import build_config
from proxy.errors import ConfigError
from proxy.simple.names import NormalizedName
from proxy.simple.policy import ShadowPolicy

TWO_TEAMS = """
[groups]
ml = ["alice", "bob"]
web = ["carol"]
[indexes.ml]
bases = ["root"]
read = ["group:ml", "ci-reader"]
upload = ["group:ml"]
admin = ["alice"]
private_patterns = ["acme-ml-*"]
[indexes.web]
bases = ["root"]
upstream = true
read = ["group:web"]
upload = ["group:web"]
[indexes.ml-dev]
bases = ["ml", "web", "root"]
read = ["*"]
upload = ["group:ml"]
"""


def _access(text: str = TWO_TEAMS):
    return build_config(tomllib.loads(text)).access()


def test_chains_are_depth_first_each_index_once():
    """chain(index) = the index, then its bases depth-first in order, each once; root's chain is root alone."""
    access = _access()
    assert [i.name for i in access.chain("ml-dev")] == ["ml-dev", "ml", "root", "web"]
    assert [i.name for i in access.chain("ml")] == ["ml", "root"]
    assert [i.name for i in access.chain(ROOT)] == [ROOT]


def test_defaults_without_index_tables_are_todays_root():
    """No [indexes] table: root alone, anyone reads, any user uploads to any project, nobody is admin."""
    access = build_config({}).access()
    assert list(access.indexes) == [ROOT]
    root = access.indexes[ROOT]
    assert (root.read, root.upload, root.admin, root.owners, root.upstream) == (
        frozenset({"*"}), frozenset({"authenticated"}), frozenset(), False, True)
    assert build_config({"auth": {"read": True}}).access().indexes[ROOT].read == frozenset({"authenticated"})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[indexes.ml]\nbases = ["nope"]\n', "indexes.ml.bases: unknown index 'nope'"),
        ('[indexes.a]\nbases = ["b"]\n[indexes.b]\nbases = ["a"]\n', "a cycle in bases: a -> b -> a"),
        ('[indexes.a]\nbases = ["a"]\n', "indexes.a.bases: a cycle in bases: a -> a"),
        ('[indexes.ml]\nread = ["group:nope"]\n', "indexes.ml.read: unknown group 'group:nope'"),
        ('[indexes.ML]\n', "indexes.ML: invalid index name 'ML'"),
        ('[indexes."a/b"]\n', "indexes.a/b: invalid index name"),
        ('[indexes.ml]\nuploads = []\n', "indexes.ml.uploads: unknown key"),
        ('[indexes.ml]\nupstream = "yes"\n', "indexes.ml.upstream: must be true or false"),
        ('[indexes.root]\nbases = ["ml"]\n', "indexes.root.bases: unknown key"),
        ('[indexes.ml]\nmerge_upstream = ["-x-"]\n', "indexes.ml.merge_upstream:"),
        ('[groups]\nml = "alice"\n', "groups.ml: must be a list of user names"),
        ("[indexes]\nml = 1\n", "indexes.ml: must be a table"),
    ],
)
def test_bad_definitions_stop_startup_with_one_line_naming_the_key(toml: str, message: str):
    """Each bad definition raises ConfigError whose single line names the key."""
    with pytest.raises(ConfigError) as raised:
        build_config(tomllib.loads(toml))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def _held(*pairs: str):
    held = set(pairs)
    return lambda index: index in held


@pytest.mark.parametrize(
    ("index", "name", "holders", "expected"),
    [
        # (holder, upstream asked?, reserved)
        ("root", "flask", (), (None, True, False)),
        ("root", "tool", ("root",), ("root", False, True)),
        ("ml", "flask", (), (None, False, False)),  # upstream = false: never asked
        ("ml", "tool", ("root",), ("root", False, True)),  # root's private project shows through ml
        ("ml", "tool", ("ml", "root"), ("ml", False, True)),  # ml's shadows root's
        ("ml-dev", "tool", ("web", "root"), ("root", False, True)),  # root comes before web in ml-dev's chain
        ("web", "acme-ml-x", (), (None, False, True)),  # ml reserves it: no index asks upstream about it
        ("root", "acme-ml-x", (), (None, False, True)),
        ("web", "tool", ("ml",), (None, True, False)),  # ml is not in web's chain: its project is invisible
        ("ml", "acme-ml-y", (), (None, False, True)),  # reserved by ml itself: a 404, never upstream
    ],
)
def test_shadowing_across_the_chain(index: str, name: str, holders: tuple[str, ...], expected):
    """The first index of the chain that holds or reserves a name serves it; later ones and upstream are hidden."""
    access = _access()
    got = locate(NormalizedName(name), access.chain(index), _held(*holders), reserved_anywhere=access.all_patterns)
    assert (got.holder, got.upstream, got.reserved) == expected


def test_merge_upstream_of_the_holder_opts_in():
    """Root's [policy] merge_upstream keeps working: a held name listed there still merges upstream files."""
    policy = ShadowPolicy(frozenset({NormalizedName("tool")}), ("tool",))
    root = root_index(read_requires_auth=False, policy=policy)
    got = locate(NormalizedName("tool"), (root,), _held("root"))
    assert (got.holder, got.upstream) == ("root", True)


ML = IndexDef("ml", bases=("root",), read=frozenset({"group:ml", "ci-reader"}), upload=frozenset({"group:ml"}),
              admin=frozenset({"alice"}))
ROOT_OPEN = root_index(read_requires_auth=False, policy=ShadowPolicy())
OWNED = (Member("bob", "owner"), Member("group:ml-maint", "maintainer"))
P = NormalizedName("tool")
ALICE = Who("alice", frozenset({"ml"}))
BOB = Who("bob", frozenset({"ml"}))
DAN = Who("dan", frozenset({"ml"}))  # in group ml, not a member of the project
MAINT = Who("erin", frozenset({"ml-maint"}))
CAROL = Who("carol", frozenset({"web"}))
ANON = Who(None)
CI = Who("ci-reader")


@pytest.mark.parametrize(
    ("who", "act", "exists", "status"),
    [
        (ANON, Act.READ, True, 401),
        (CAROL, Act.READ, True, 403),
        (CI, Act.READ, True, 200),
        (DAN, Act.READ, True, 200),
        (ALICE, Act.LOG, True, 200),
        (BOB, Act.LOG, True, 403),
        (DAN, Act.UPLOAD, False, 200),  # a new project: index upload is enough
        (DAN, Act.UPLOAD, True, 403),  # somebody else's project
        (BOB, Act.UPLOAD, True, 200),  # its owner
        (MAINT, Act.UPLOAD, True, 200),  # a maintainer through a group
        (MAINT, Act.MANAGE, True, 200),
        (MAINT, Act.OWNERS, True, 403),  # maintainers do not manage owners
        (BOB, Act.OWNERS, True, 200),
        (ALICE, Act.MANAGE, True, 200),  # index admin
        (CAROL, Act.UPLOAD, False, 403),  # team B uploading to team A's index
        (ANON, Act.UPLOAD, False, 403),
        (CI, Act.UPLOAD, False, 403),
    ],
)
def test_permission_table(who: Who, act: Act, exists: bool, status: int):
    """user x action in index ml → allowed (200) or refused with the exact status."""
    got = decide(act, who, ML, project=P, exists=exists, members=OWNED if exists else ())
    assert (got.status if not got.allowed else 200) == status


@pytest.mark.parametrize(
    ("token", "act", "index", "project", "status", "reason"),
    [
        (TokenScope(actions=frozenset({"read"})), Act.UPLOAD, ML, "tool", 403, "read-only"),
        (TokenScope(actions=frozenset({"read"})), Act.READ, ML, "tool", 200, ""),
        (TokenScope(indexes=frozenset({"root"})), Act.READ, ML, "tool", 403, "not valid for index 'ml'"),
        (TokenScope(project=NormalizedName("other")), Act.UPLOAD, ML, "tool", 403, "scoped to project 'other'"),
        (TokenScope(project=NormalizedName("tool")), Act.UPLOAD, ML, "tool", 200, ""),
        (TokenScope(expires_at=100.0), Act.READ, ML, "tool", 401, "expired on 1970-01-01 00:01 UTC"),
        (TokenScope(expires_at=100.0), Act.UPLOAD, ML, "tool", 403, "expired"),
        (TokenScope(expires_at=10_000.0), Act.UPLOAD, ML, "tool", 200, ""),
    ],
)
def test_token_scopes_intersect_with_the_user(token, act, index, project, status, reason):
    """A token narrows its user's rights (actions, indexes, one project, expiry) and never widens them."""
    who = Who("bob", frozenset({"ml"}), token)
    got = decide(act, who, index, project=NormalizedName(project), exists=True, members=OWNED, now=1_000.0)
    assert (200 if got.allowed else got.status) == status
    assert reason in got.reason


def test_a_token_never_grants_more_than_its_user():
    """A full-scope token of a user without rights in an index is refused there."""
    got = decide(Act.UPLOAD, Who("carol", frozenset({"web"}), TokenScope()), ML, project=P, exists=False)
    assert (got.allowed, got.status) == (False, 403)
    assert got.reason == "The user 'carol' isn't allowed to upload to project 'tool' in index 'ml'."


@pytest.mark.parametrize(
    ("who", "act", "allowed"),
    [(ANON, Act.READ, True), (ANON, Act.UPLOAD, False), (DAN, Act.UPLOAD, True), (DAN, Act.MANAGE, True),
     (DAN, Act.LOG, False)],
)
def test_root_without_a_table_keeps_todays_rule(who: Who, act: Act, allowed: bool):
    """Root without [indexes.root]: anyone reads, any user uploads to and manages any project (as before)."""
    assert decide(act, who, ROOT_OPEN, project=P, exists=True, members=OWNED).allowed is allowed


def test_the_commented_two_team_example_in_config_example_toml_is_valid():
    """config.example.toml's commented two-team example, uncommented, loads: it cannot rot."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "config.example.toml").read_text().split("A two-team example")[1]
    lines = [line[2:] if line.startswith("# ") else "" for line in text.splitlines()[1:] if line.startswith("#")]
    access = build_config(tomllib.loads("\n".join(lines))).access()
    assert [i.name for i in access.chain("ml")] == ["ml", "root"]
    assert access.indexes[ROOT].admin == frozenset({"alice"})


@pytest.mark.parametrize("holders", [(), ("root",), ("ml",), ("ml", "root"), ("web",), ("web", "root")])
@pytest.mark.parametrize("index", ["root", "ml", "web", "ml-dev"])
@pytest.mark.parametrize("name", ["tool", "merged"])
def test_the_fast_path_without_patterns_agrees_with_locate(index: str, holders: tuple[str, ...], name: str):
    """ProjectIndex's shortcut for configs without private_patterns gives locate()'s answer in every case."""
    from proxy.index import _first_holder

    text = TWO_TEAMS.replace('private_patterns = ["acme-ml-*"]\n', 'merge_upstream = ["merged"]\n')
    access = _access(text)
    got = locate(NormalizedName(name), access.chain(index), _held(*holders), reserved_anywhere=access.all_patterns)
    fast = _first_holder(access, index, NormalizedName(name), frozenset(holders))
    assert fast == (got.holder, got.upstream, got.reserved)
