"""End to end with real clients on a named index (issue 14): twine and uv publish to /index/ml/; pip and uv install
from /index/ml/simple/ with a read-only token, getting ml's package, root's private package and a public one from
upstream; poetry with the index as a source."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.artifacts import build_sdist, build_wheel
from tests.clients import RunResult, run, run_pip, run_uv
from tests.conftest import Upstream
from tests.proxy_fixtures import ProxyFactory
from tests.publishing import write_htpasswd
from tests.test_e2e_publish import client_env, create_token, never_asked, twine, write_dist

pytestmark = pytest.mark.e2e

ROOT_LIB = build_wheel("acme-root-lib", "1.0")
ML_APP = build_wheel("acme-ml-app", "1.0", requires_dist=["acme-root-lib>=1", "tinylib>=1"])
ML_APP_SDIST = build_sdist("acme-ml-app", "1.0", requires_dist=["acme-root-lib>=1", "tinylib>=1"])
ML_TOOL = build_wheel("acme-ml-tool", "2.0")
SECTIONS: dict[str, Any] = {
    "groups": {"ml": ["bob"]},
    "indexes": {"ml": {"bases": ["root"], "upstream": True, "read": ["group:ml", "ci-reader"],
                       "upload": ["group:ml"], "private_patterns": ["acme-ml-*"]}},
}


async def _setup(make_proxy: ProxyFactory, tmp_path: Path) -> tuple[TestClient, str, str]:
    """A proxy with index ml, root-lib published to root by alice; bob's publish token and ci-reader's read-only
    token."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "pw", "bob": "pw", "ci-reader": "pw"})
    config = tmp_path / "shadowpi.toml"
    config.write_text('[groups]\nml = ["bob"]\n[indexes.ml]\nbases = ["root"]\n')
    publish = await create_token(make_proxy.data_dir, "bob")
    made = await run(sys.executable, "-m", "proxy", "token", "create", "--user", "ci-reader", "--read-only",
                     "--index", "ml", "--config", str(config), "--data-dir", str(make_proxy.data_dir))
    assert made.returncode == 0, made.stderr
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd)}, **SECTIONS)
    env = client_env(tmp_path / "home")
    root = await twine("--repository-url", str(proxy.make_url("/")), "-u", "alice", "-p", "pw",
                       *write_dist(tmp_path / "root", ROOT_LIB), env=env)
    assert root.returncode == 0, root.stdout + root.stderr
    return proxy, publish, made.stdout.strip().splitlines()[-1]


def _index_with(proxy: TestClient, token: str) -> str:
    url = proxy.make_url("/index/ml/simple/")
    return str(url.with_user("__token__").with_password(token))


async def test_twine_and_uv_publish_then_pip_and_uv_install_with_a_read_only_token(
    make_proxy: ProxyFactory, populated_upstream: Upstream, tmp_path: Path
):
    """twine and uv publish to /index/ml/; pip and uv install ml's app with its dependencies from root (private)
    and upstream (tinylib); the read-only token cannot publish; upstream never hears of acme-*."""
    proxy, publish, reader = await _setup(make_proxy, tmp_path)
    env = client_env(tmp_path / "home")
    url = str(proxy.make_url("/index/ml/"))
    uploaded = await twine("--repository-url", url, "-u", "__token__", "-p", publish,
                           *write_dist(tmp_path / "dist", ML_APP, ML_APP_SDIST), env=env)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    published = await run_uv("publish", "--publish-url", url + "legacy/", "--username", "__token__", "--password",
                             publish, "--trusted-publishing", "never", *write_dist(tmp_path / "uv", ML_TOOL), env=env)
    assert published.returncode == 0, published.stderr
    refused = await twine("--repository-url", url, "-u", "__token__", "-p", reader,
                          *write_dist(tmp_path / "again", build_wheel("acme-ml-app", "1.1")), env=env)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr

    index = _index_with(proxy, reader)
    pip = await run_pip("install", "--target", str(tmp_path / "pip"), "--index-url", index, "acme-ml-app",
                        "acme-ml-tool", env=env)
    assert pip.returncode == 0, pip.stderr
    for installed in ("acme_ml_app-1.0", "acme_ml_tool-2.0", "acme_root_lib-1.0", "tinylib-2.0"):
        assert (tmp_path / "pip" / f"{installed}.dist-info").is_dir(), installed
    assert (await run_uv("venv", "--python", sys.executable, str(tmp_path / "venv"), env=env)).returncode == 0
    uv = await run_uv("pip", "install", "--python", str(tmp_path / "venv"), "--index-url", index, "acme-ml-app",
                      env=env)
    assert uv.returncode == 0, uv.stderr
    assert "acme-root-lib==1.0" in uv.stderr and "tinylib==2.0" in uv.stderr
    assert never_asked(populated_upstream)


async def _poetry(*args: str, cwd: Path, env: dict[str, str]) -> RunResult:
    exe = Path(sys.executable).parent / "poetry"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "poetry"]
    return await run(*argv, "--no-interaction", *args, cwd=cwd, env=env, timeout=300)


async def test_poetry_installs_from_the_index(make_proxy: ProxyFactory, populated_upstream: Upstream,
                                              tmp_path: Path):
    """A poetry project with /index/ml/simple/ as its primary source (read-only token as http-basic) locks and
    installs ml's app with root's and upstream's dependencies."""
    proxy, publish, reader = await _setup(make_proxy, tmp_path)
    env = client_env(tmp_path / "home")
    uploaded = await twine("--repository-url", str(proxy.make_url("/index/ml/")), "-u", "__token__", "-p", publish,
                           *write_dist(tmp_path / "dist", ML_APP), env=env)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    poetry_env = {k: v for k, v in env.items() if not k.startswith("POETRY_")}
    poetry_env.update(
        POETRY_CONFIG_DIR=str(tmp_path / "poetry-config"), POETRY_CACHE_DIR=str(tmp_path / "poetry-cache"),
        POETRY_VIRTUALENVS_PATH=str(tmp_path / "poetry-venvs"), POETRY_VIRTUALENVS_IN_PROJECT="false",
        POETRY_HTTP_BASIC_ML_USERNAME="__token__", POETRY_HTTP_BASIC_ML_PASSWORD=reader,
        POETRY_REQUESTS_TIMEOUT="60",
    )
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1.0"\nrequires-python = ">=3.11"\ndependencies = []\n'
        '[tool.poetry]\npackage-mode = false\n'
    )
    source = await _poetry("source", "add", "--priority=primary", "ml", str(proxy.make_url("/index/ml/simple/")),
                           cwd=project, env=poetry_env)
    assert source.returncode == 0, source.stdout + source.stderr
    added = await _poetry("add", "acme-ml-app", cwd=project, env=poetry_env)
    assert added.returncode == 0, added.stdout + added.stderr
    lock = (project / "poetry.lock").read_text()
    for name in ('name = "acme-ml-app"', 'name = "acme-root-lib"', 'name = "tinylib"'):
        assert name in lock, name
    venvs = list((tmp_path / "poetry-venvs").glob("*/lib/python*/site-packages"))
    assert len(venvs) == 1, os.listdir(tmp_path / "poetry-venvs")
    assert (venvs[0] / "acme_ml_app-1.0.dist-info").is_dir()
    assert never_asked(populated_upstream)
