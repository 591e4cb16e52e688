"""Configuration: defaults, TOML file, flag overrides, and errors that name the key at fault."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from proxy.config import Config, build_config, load_config, mask_url, section_keys
from proxy.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


def test_example_config_documents_every_key_and_loads_to_defaults():
    """config.example.toml names every accepted key (can't rot) and its values are the defaults."""
    with EXAMPLE.open("rb") as f:
        raw = tomllib.load(f)
    text = EXAMPLE.read_text()
    for section, keys in section_keys().items():
        for key in keys:
            assert key in raw.get(section, {}) or f"# {key} = " in text, f"{section}.{key} undocumented"
    config = load_config(EXAMPLE)
    assert config == Config()


def test_file_then_flags_override_defaults(tmp_path: Path):
    """Flags override the file, which overrides defaults."""
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[upstream]\npage_ttl = 5\n')
    config = load_config(path, {"server": {"port": 9100}})
    assert (config.server.port, config.server.host, config.upstream.page_ttl) == (9100, "0.0.0.0", 5.0)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ("[sever]\nport = 1\n", "sever: unknown section"),
        ('[server]\nport = "80"\n', "server.port: must be a whole number"),
        ("[server]\nport = 70000\n", "server.port: must be between 0 and 65535"),
        ('[upstream]\nurl = "ftp://x/simple/"\n', "upstream.url: must be an http(s) URL"),
        ('[upstream]\nurl = "not a url"\n', "upstream.url"),
        ("[upstream]\noffline = 1\n", "upstream.offline: must be true or false"),
        ("[upstream]\npage_ttl = -1\n", "upstream.page_ttl: must be at least 0"),
        ("[upload]\nmax_size = 0\n", "upload.max_size: must be at least 1"),
        ('[policy]\nmerge_upstream = ["ok", "bad name!"]\n', "policy.merge_upstream"),
        ("[policy]\nprivate_patterns = 3\n", "policy.private_patterns"),
        ("[server]\nworkers = 0\n", "server.workers"),
        ("server = 3\n", "server: must be a table"),
        ("[server\n", "invalid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, message: str):
    """Each invalid value is refused with an error naming the key (or the file for syntax errors)."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_missing_config_file_is_a_config_error(tmp_path: Path):
    """A config path that does not exist is reported, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_upstream_url_gets_trailing_slash_and_names_normalize():
    """The upstream URL always ends in '/', and policy names are normalized."""
    config = build_config({"upstream": {"url": "http://127.0.0.1:1/simple"},
                           "policy": {"merge_upstream": ["Acme_Utils"]}})
    assert config.upstream.url == "http://127.0.0.1:1/simple/"
    assert config.policy.merge_upstream == frozenset({"acme-utils"})


def test_credentials_never_appear_in_repr():
    """An upstream password is masked in repr (and so in logs and tracebacks)."""
    config = build_config({"upstream": {"url": "https://user:s3cret@127.0.0.1/simple/"}})
    assert "s3cret" not in repr(config)
    assert "s3cret" not in mask_url(config.upstream.url)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["files.pythonhosted.org"], ("files.pythonhosted.org",)),
        (["CDN.Example.com:8443", "127.0.0.1:9"], ("cdn.example.com:8443", "127.0.0.1:9")),
        ([], ()),
        (["https://files.example/"], None),
        (["files.example/path"], None),
        (["user:pw@files.example"], None),
        (["files.example:notaport"], None),
        ("files.example", None),
    ],
)
def test_file_hosts_are_plain_host_names(value: object, expected: tuple[str, ...] | None):
    """[upstream] file_hosts takes host names or host:port (lower-cased); anything else names the key."""
    if expected is None:
        with pytest.raises(ConfigError, match=r"upstream\.file_hosts"):
            build_config({"upstream": {"file_hosts": value}})
    else:
        assert build_config({"upstream": {"file_hosts": value}}).upstream.file_hosts == expected
