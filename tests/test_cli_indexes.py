"""Issue 14's commands as operators run them (subprocesses on the data dir a live app also uses): index list/show,
owner add/remove/list, scoped token create, push, log, and a bad index definition at start-up."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.artifacts import build_wheel
from tests.clients import RunResult, run
from tests.conftest import Upstream
from tests.proxy_fixtures import ProxyFactory
from tests.publishing import twine_upload, write_htpasswd

TOOL = build_wheel("ml-tool", "1.0")
TOOL_2 = build_wheel("ml-tool", "2.0")
CONFIG = """
[groups]
ml = ["bob", "dora"]
[indexes.ml]
bases = ["root"]
read = ["group:ml"]
upload = ["group:ml"]
[indexes.release]
read = ["*"]
upload = ["bob"]
"""


async def shadowpi(config: Path, data_dir: Path, *args: str) -> RunResult:
    return await run(sys.executable, "-m", "proxy", *args, "--config", str(config), "--data-dir", str(data_dir),
                     timeout=60)


def _config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "shadowpi.toml"
    path.write_text(text)
    return path


def _sections() -> dict[str, dict[str, object]]:
    import tomllib
    return tomllib.loads(CONFIG)


async def test_index_list_and_show(tmp_path: Path, make_proxy: ProxyFactory):
    """index list shows every index with its chain; show one: its chain, permissions and private projects."""
    config = _config(tmp_path)
    listed = await shadowpi(config, make_proxy.data_dir, "index", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["index", "root", "ml", "release"]
    assert "ml -> root" in lines[2]
    shown = await shadowpi(config, make_proxy.data_dir, "index", "show", "ml")
    assert shown.returncode == 0, shown.stderr
    assert "chain:            ml -> root\n" in shown.stdout and "upload:           group:ml\n" in shown.stdout
    missing = await shadowpi(config, make_proxy.data_dir, "index", "show", "nope")
    assert missing.returncode == 1 and "no index named 'nope'" in missing.stderr


async def test_a_bad_index_definition_stops_every_command_with_one_line(tmp_path: Path, make_proxy: ProxyFactory):
    """A cycle in bases: one line naming the key, exit status 2."""
    config = _config(tmp_path, '[indexes.a]\nbases = ["b"]\n[indexes.b]\nbases = ["a"]\n')
    result = await shadowpi(config, make_proxy.data_dir, "index", "list")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "shadowpi: config error: indexes.b.bases: a cycle in bases: a -> b -> a")


async def test_scoped_tokens_owners_push_and_log(tmp_path: Path, make_proxy: ProxyFactory, upstream: Upstream):
    """A project-scoped token publishes its project; a read-only token does not; owner add lets dora upload;
    push makes the release visible in another index; log prints every change in order."""
    config, data_dir = _config(tmp_path), make_proxy.data_dir
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"bob": "pw", "dora": "pw"})
    created = await shadowpi(config, data_dir, "token", "create", "--user", "bob", "--index", "ml", "--project",
                             "ml-tool", "--expires", "30")
    assert created.returncode == 0, created.stderr
    publish = ("__token__", created.stdout.strip().splitlines()[-1])
    read_only = await shadowpi(config, data_dir, "token", "create", "--user", "bob", "--read-only")
    reader = ("__token__", read_only.stdout.strip().splitlines()[-1])
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd)}, **_sections())
    assert (await twine_upload(proxy, TOOL, auth=reader, path="/index/ml/")).status == 403
    assert (await twine_upload(proxy, TOOL, auth=publish, path="/index/ml/")).status == 200
    assert (await twine_upload(proxy, TOOL, auth=publish, path="/")).status == 403  # scoped to index ml
    assert (await twine_upload(proxy, TOOL_2, auth=("dora", "pw"), path="/index/ml/")).status == 403
    added = await shadowpi(config, data_dir, "owner", "add", "ml-tool", "dora", "--index", "ml")
    assert added.returncode == 0, added.stderr
    owners = await shadowpi(config, data_dir, "owner", "list", "ml-tool", "--index", "ml")
    assert owners.stdout.split() == ["bob", "owner", "dora", "maintainer"]
    assert (await twine_upload(proxy, TOOL_2, auth=("dora", "pw"), path="/index/ml/")).status == 200
    refused = await shadowpi(config, data_dir, "push", "ml-tool", "2.0", "--from", "ml", "--to", "release",
                             "--as", "dora")
    assert refused.returncode == 1 and "isn't allowed to upload to project 'ml-tool' in index 'release'" in (
        refused.stdout + refused.stderr)
    pushed = await shadowpi(config, data_dir, "push", "ml-tool", "2.0", "--from", "ml", "--to", "release",
                            "--as", "bob")
    assert pushed.returncode == 0, pushed.stderr
    got = await proxy.get(f"/index/release/files/ml-tool/{TOOL_2.sha256}/{TOOL_2.filename}")
    assert (got.status, await got.read()) == (200, TOOL_2.data)
    log = await shadowpi(config, data_dir, "log", "--project", "ml-tool")
    actions = [line.split()[3] for line in log.stdout.splitlines()]
    assert actions == ["upload", "owner-add", "upload", "push"]
    everything = await shadowpi(config, data_dir, "log")
    assert [line.split()[3] for line in everything.stdout.splitlines()][:2] == ["token-create", "token-create"]


async def test_audit_lists_names_that_shadow_a_base(tmp_path: Path, make_proxy: ProxyFactory, upstream: Upstream):
    """A project of ml whose name root holds too: audit says ml's shadows root's (upstream is only asked about
    root's names, as before)."""
    config, data_dir = _config(tmp_path), make_proxy.data_dir
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"bob": "pw"})
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd)}, **_sections())
    assert (await twine_upload(proxy, TOOL, auth=("bob", "pw"), path="/")).status == 200
    assert (await twine_upload(proxy, TOOL_2, auth=("bob", "pw"), path="/index/ml/")).status == 200
    audit = await run(sys.executable, "-m", "proxy", "audit", "--config", str(config), "--data-dir", str(data_dir),
                      "--upstream", upstream.url, timeout=60)
    assert audit.returncode == 0, audit.stderr
    assert "ml-tool                                  in index ml SHADOWS its base(s) root" in audit.stdout
