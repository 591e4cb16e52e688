"""End to end: publish with real twine and uv, install with real pip and uv, and the dependency-confusion defence."""

from __future__ import annotations

import base64
import os
import shutil
import sys
from pathlib import Path

import bcrypt
import pytest
from aiohttp.test_utils import TestClient

from tests.artifacts import Artifact, build_sdist, build_wheel
from tests.clients import RunResult, clean_env, run, run_pip, run_uv
from tests.conftest import Upstream
from tests.proxy_fixtures import ProxyFactory

pytestmark = pytest.mark.e2e

PRIVATE_WHEEL = build_wheel("acme-internal", "1.0.0", requires_dist=["tinylib>=1"])
PRIVATE_SDIST = build_sdist("acme-internal", "1.0.0", requires_dist=["tinylib>=1"])
EVIL_WHEEL = build_wheel("acme-internal", "99.0.0", module_source="raise SystemExit('pwned')\n")


def write_dist(directory: Path, *artifacts: Artifact) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for artifact in artifacts:
        (directory / artifact.filename).write_bytes(artifact.data)
    return [str(directory / a.filename) for a in artifacts]


def client_env(home: Path) -> dict[str, str]:
    """clean_env() plus a private HOME, so ~/.pypirc, ~/.netrc and keyrings are the test's own."""
    home.mkdir(parents=True, exist_ok=True)
    return {**clean_env(), "HOME": str(home), "TWINE_NON_INTERACTIVE": "1",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


async def twine(*args: str, env: dict[str, str]) -> RunResult:
    exe = shutil.which("twine", path=os.path.dirname(sys.executable))
    argv = [exe] if exe else [sys.executable, "-m", "twine"]
    return await run(*argv, "upload", "--disable-progress-bar", *args, env=env)


async def create_token(data_dir: Path, user: str) -> str:
    result = await run(sys.executable, "-m", "proxy", "token", "create", "--user", user, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # the contract: the token is the last line


def root_url(proxy: TestClient) -> str:
    return str(proxy.make_url("/"))


def never_asked(upstream: Upstream, fragment: str = "acme") -> bool:
    return not any(fragment in path.lower() for path in upstream.fake.requests)


async def test_twine_pypirc_token_then_pip_and_uv_install(
    make_proxy: ProxyFactory, populated_upstream: Upstream, tmp_path: Path
):
    """~/.pypirc + `twine upload --repository shadowpi` with a token; pip and uv install the private package."""
    token = await create_token(make_proxy.data_dir, "ci")
    proxy = await make_proxy()
    env = client_env(tmp_path / "home")
    (tmp_path / "home" / ".pypirc").write_text(
        f"[distutils]\nindex-servers = shadowpi\n\n[shadowpi]\nrepository = {root_url(proxy)}\n"
        f"username = __token__\npassword = {token}\n"
    )
    uploaded = await twine("--repository", "shadowpi", *write_dist(tmp_path / "dist", PRIVATE_WHEEL, PRIVATE_SDIST),
                           env=env)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr

    index = str(proxy.make_url("/simple/"))
    pip = await run_pip("install", "--target", str(tmp_path / "pip"), "--index-url", index, "acme-internal", env=env)
    assert pip.returncode == 0, pip.stderr
    assert (tmp_path / "pip" / "acme_internal-1.0.0.dist-info").is_dir()
    assert (tmp_path / "pip" / "tinylib-2.0.dist-info").is_dir()  # the dependency came through the cache

    assert (await run_uv("venv", "--python", sys.executable, str(tmp_path / "venv"), env=env)).returncode == 0
    uv = await run_uv("pip", "install", "--python", str(tmp_path / "venv"), "--index-url", index, "acme-internal",
                      env=env)
    assert uv.returncode == 0, uv.stderr
    assert never_asked(populated_upstream)


async def test_twine_rejections_and_skip_existing(make_proxy: ProxyFactory, upstream: Upstream, tmp_path: Path):
    """Bad credentials fail with PyPI's message; a reused filename fails, and --skip-existing skips it."""
    token = await create_token(make_proxy.data_dir, "ci")
    proxy = await make_proxy()
    env = client_env(tmp_path / "home")
    wheel = write_dist(tmp_path / "dist", PRIVATE_WHEEL)
    url = root_url(proxy) + "legacy/"
    bad = await twine("--repository-url", url, "-u", "__token__", "-p", "spi_wrong", *wheel, env=env)
    assert bad.returncode != 0
    assert "403" in bad.stdout + bad.stderr
    assert "Invalid or non-existent authentication information" in bad.stdout + bad.stderr

    good = await twine("--repository-url", url, "-u", "__token__", "-p", token, *wheel, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    again = await twine("--repository-url", url, "-u", "__token__", "-p", token, *wheel, env=env)
    assert again.returncode == 0  # identical re-upload: idempotent

    other = build_wheel("acme-internal", "1.0.0", module_source="OTHER = True\n")
    assert other.filename == PRIVATE_WHEEL.filename
    clash = write_dist(tmp_path / "other", other)
    refused = await twine("--repository-url", url, "-u", "__token__", "-p", token, *clash, env=env)
    assert refused.returncode != 0
    assert "File already exists" in refused.stdout + refused.stderr
    # twine >= 7 allows --skip-existing only for PyPI URLs; its skip rule must still accept our answer.
    assert await twine_would_skip(proxy, token, other)
    served = await proxy.get(f"/files/acme-internal/{PRIVATE_WHEEL.sha256}/{PRIVATE_WHEEL.filename}")
    assert await served.read() == PRIVATE_WHEEL.data


async def twine_would_skip(proxy: TestClient, token: str, artifact: Artifact) -> bool:
    """Feed shadowpi's real answer to a clashing upload into twine's own --skip-existing rule."""
    import aiohttp
    import requests
    from twine.commands.upload import skip_upload
    from twine.package import PackageFile

    form = aiohttp.FormData()
    for key, value in {":action": "file_upload", "protocol_version": "1", "name": "acme-internal",
                       "version": "1.0.0", "filetype": "bdist_wheel", "pyversion": "py3",
                       "sha256_digest": artifact.sha256}.items():
        form.add_field(key, value)
    form.add_field("content", artifact.data, filename=artifact.filename, content_type="application/octet-stream")
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    resp = await proxy.post("/", data=form, headers={"Authorization": f"Basic {credentials}"})
    answer = requests.models.Response()
    answer.status_code, answer.reason, answer._content = resp.status, resp.reason or "", await resp.read()
    assert resp.status == 400
    package = PackageFile.__new__(PackageFile)  # skip_upload only reads the response
    return skip_upload(answer, True, package)


async def test_uv_publish_with_htpasswd_user(make_proxy: ProxyFactory, upstream: Upstream, tmp_path: Path):
    """`uv publish` to /legacy/ with an htpasswd user uploads wheel and sdist; uv installs the wheel."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd)})
    env = client_env(tmp_path / "home")
    files = write_dist(tmp_path / "dist", PRIVATE_WHEEL, PRIVATE_SDIST)
    published = await run_uv("publish", "--publish-url", root_url(proxy) + "legacy/", "--username", "alice",
                             "--password", "s3cret", "--trusted-publishing", "never", *files, env=env)
    assert published.returncode == 0, published.stderr
    page = await (await proxy.get("/simple/acme-internal/")).text()
    assert PRIVATE_WHEEL.filename in page
    assert PRIVATE_SDIST.filename in page
    # --check-url (uv's --skip-existing) finds the files on shadowpi's index and skips them.
    again = await run_uv("publish", "--publish-url", root_url(proxy) + "legacy/", "--username", "alice",
                         "--password", "s3cret", "--trusted-publishing", "never",
                         "--check-url", str(proxy.make_url("/simple/")), *files, env=env)
    assert again.returncode == 0, again.stderr
    assert "already exists" in again.stderr.lower() or "skipping" in again.stderr.lower(), again.stderr


async def test_dependency_confusion_is_defeated(make_proxy: ProxyFactory, upstream: Upstream, tmp_path: Path):
    """Upstream publishes acme-internal 99.0.0; pip and uv still get private 1.0.0 under every spelling,
    and upstream is never even asked about the name."""
    upstream.fake.add(EVIL_WHEEL)
    upstream.fake.add(build_wheel("tinylib", "1.0"))
    token = await create_token(make_proxy.data_dir, "ci")
    proxy = await make_proxy()
    env = client_env(tmp_path / "home")
    uploaded = await twine("--repository-url", root_url(proxy), "-u", "__token__", "-p", token,
                           *write_dist(tmp_path / "dist", PRIVATE_WHEEL), env=env)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    upstream.fake.clear_log()

    index = str(proxy.make_url("/simple/"))
    for i, spelling in enumerate(["acme-internal", "Acme_Internal", "ACME.internal"]):
        target = tmp_path / f"pip{i}"
        pip = await run_pip("install", "--target", str(target), "--index-url", index, spelling, env=env)
        assert pip.returncode == 0, pip.stderr
        assert (target / "acme_internal-1.0.0.dist-info").is_dir()
    assert (await run_uv("venv", "--python", sys.executable, str(tmp_path / "venv"), env=env)).returncode == 0
    uv = await run_uv("pip", "install", "--python", str(tmp_path / "venv"), "--index-url", index, "Acme_Internal",
                      env=env)
    assert uv.returncode == 0, uv.stderr
    assert "acme-internal==1.0.0" in uv.stderr
    assert never_asked(upstream), upstream.fake.requests
    evil = await proxy.get(f"/files/acme-internal/{EVIL_WHEEL.sha256}/{EVIL_WHEEL.filename}")
    assert evil.status == 404  # guessing the upstream file URL does not get around the shadow either
    assert never_asked(upstream)


async def test_read_auth_with_url_credentials_and_netrc(make_proxy: ProxyFactory, populated_upstream: Upstream,
                                                        tmp_path: Path):
    """[auth] read = true: pip without credentials fails; with user:password in the URL or in ~/.netrc it works."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    proxy = await make_proxy(auth={"htpasswd": str(htpasswd), "read": True})
    env = client_env(tmp_path / "home")
    index = str(proxy.make_url("/simple/"))
    anonymous = await run_pip("install", "--target", str(tmp_path / "a"), "--index-url", index, "tinylib", env=env)
    assert anonymous.returncode != 0  # pip got 401 and, unable to prompt, found nothing
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())

    with_url = index.replace("http://", "http://alice:s3cret@")
    via_url = await run_pip("install", "--target", str(tmp_path / "b"), "--index-url", with_url, "tinylib", env=env)
    assert via_url.returncode == 0, via_url.stderr

    netrc = tmp_path / "home" / ".netrc"
    netrc.write_text("machine 127.0.0.1\nlogin alice\npassword s3cret\n")
    netrc.chmod(0o600)
    via_netrc = await run_pip("install", "--target", str(tmp_path / "c"), "--index-url", index, "tinylib", env=env)
    assert via_netrc.returncode == 0, via_netrc.stderr
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--index-url {with_url}\ntinylib==1.0\n")
    via_file = await run_pip("install", "--target", str(tmp_path / "d"), "-r", str(requirements), env=env)
    assert via_file.returncode == 0, via_file.stderr
    assert (tmp_path / "d" / "tinylib-1.0.dist-info").is_dir()
