"""Configuration: defaults, TOML file, flag overrides, and errors that name the key at fault."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.config import Config, mask_url
from proxy.config_load import build_config, load_config
from proxy.config_schema import section_keys
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
    config = load_config(EXAMPLE, environ={"HOME": "/home/u"}, cwd=Path("/nowhere"))
    assert config == replace(Config(), server=replace(Config().server, data_dir=Path("/home/u/.local/share/shadowpi")))


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


# --- SHADOWPI_* variables ---


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path):
    """SHADOWPI_<SECTION>_<KEY> sits between the file and the flags."""
    path = tmp_path / "c.toml"
    path.write_text("[upstream]\npage_ttl = 5\noffline = false\n")
    env = {"SHADOWPI_UPSTREAM_PAGE_TTL": "50", "SHADOWPI_UPSTREAM_OFFLINE": "true", "SHADOWPI_SERVER_HOST": "0.0.0.0"}
    config = load_config(path, {"server": {"host": "127.0.0.2"}}, env)
    assert (config.upstream.page_ttl, config.upstream.offline, config.server.host) == (50.0, True, "127.0.0.2")


@pytest.mark.parametrize(
    ("variable", "warning"),
    [
        ("SHADOWPI_TOKEN", None),  # the README has users export it for twine and uv publish
        ("SHADOWPI_CONFIG", None),
        ("SHADOWPI_SOMETHING_ELSE", None),  # not ours to judge
        ("SHADOWPI_UPSTREAM_TTL", "SHADOWPI_UPSTREAM_TTL is not a setting and is ignored (known in [upstream]: "
                                  "SHADOWPI_UPSTREAM_URL, SHADOWPI_UPSTREAM_PAGE_TTL, "),
        ("SHADOWPI_UPSTRAEM_URL", "SHADOWPI_UPSTRAEM_URL is not a setting and is ignored; "
                                  "did you mean SHADOWPI_UPSTREAM_URL?"),
        ("SHADOWPI_SERVER_PROT", "SHADOWPI_SERVER_PROT is not a setting and is ignored; "
                                 "did you mean SHADOWPI_SERVER_PORT?"),
    ],
)
def test_other_shadowpi_variables_never_stop_start_up(variable: str, warning: str | None):
    """Only SHADOWPI_<SECTION>_<KEY> of a known key is configuration: anything else is ignored, and a near-miss
    (a known section, or a close misspelling) is warned about, never refused."""
    warnings: list[str] = []
    config = load_config(None, None, {variable: "1", "HOME": "/home/u"}, warn=warnings.append)
    assert config.server == replace(Config().server, data_dir=Path("/home/u/.local/share/shadowpi"))
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(warning)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SHADOWPI_SERVER_PORT", "http", "SHADOWPI_SERVER_PORT: must be a whole number, not 'http'"),
        ("SHADOWPI_UPSTREAM_URL", "ftp://x/", "SHADOWPI_UPSTREAM_URL: must be an http(s) URL of a simple index"),
        ("SHADOWPI_AUTH_READ", "maybe", "SHADOWPI_AUTH_READ: must be true or false, not 'maybe'"),
    ],
)
def test_a_known_variable_with_a_bad_value_names_the_variable(variable: str, value: str, message: str):
    """A known setting with a bad value still stops start-up, with one line naming the variable."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, None, {variable: value, "HOME": "/home/u"})
    assert str(caught.value).startswith(message)


# --- the data dir ---


@pytest.mark.parametrize(
    ("environ", "flags", "expected", "source"),
    [
        ({"HOME": "/home/u"}, {}, "/home/u/.local/share/shadowpi", "default: ~/.local/share/shadowpi"),
        ({"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"}, {}, "/xdg/shadowpi", "default: $XDG_DATA_HOME/shadowpi"),
        ({"HOME": "/home/u", "XDG_DATA_HOME": "rel"}, {}, "/home/u/.local/share/shadowpi",
         "default: ~/.local/share/shadowpi"),  # the XDG spec: a relative XDG_DATA_HOME is invalid, ignore it
        ({"HOME": "/h", "SHADOWPI_SERVER_DATA_DIR": "/srv/spi"}, {}, "/srv/spi", "SHADOWPI_SERVER_DATA_DIR"),
        ({"HOME": "/h"}, {"server": {"data_dir": "rel/dir"}}, "{cwd}/rel/dir", "--data-dir"),
    ],
)
def test_the_data_dir_is_absolute_and_its_source_is_known(
    tmp_path: Path, environ: dict[str, str], flags: dict[str, dict[str, object]], expected: str, source: str
):
    """Whatever the working directory, the default data dir is the same absolute path (XDG), and a relative
    --data-dir is made absolute once; the config says where the data dir came from."""
    config = load_config(None, flags, environ, cwd=tmp_path)
    assert config.data_dir == Path(expected.format(cwd=tmp_path))
    assert config.data_dir_source == source


def test_an_existing_shadowpi_data_in_the_working_directory_is_honoured(tmp_path: Path):
    """Installations made with the old relative default keep their data: ./shadowpi-data wins when it exists."""
    (tmp_path / "shadowpi-data").mkdir()
    config = load_config(None, None, {"HOME": "/home/u"}, cwd=tmp_path)
    assert config.data_dir == tmp_path / "shadowpi-data"
    assert config.data_dir_source == "default: ./shadowpi-data exists in the working directory"


def test_data_dir_in_the_config_file_is_named_as_the_source(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('[server]\ndata_dir = "/srv/x"\n')
    config = load_config(path, None, {"HOME": "/h"})
    assert (config.data_dir, config.data_dir_source) == (Path("/srv/x"), f"server.data_dir in {path}")


# --- the docs keep up (issue 10, item 29) ---


def test_readme_configuration_table_is_one_table_listing_every_key():
    """README's configuration table is one unbroken Markdown table (a blank line used to split it in two, and
    the second half rendered as text) and names every accepted key."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| key |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    rows = lines[start + 2:end]
    assert not any(line.startswith("| `") for line in lines[end:]), "a table row after the table ended"
    documented = {row.split("`")[1] for row in rows}
    assert documented == {f"{s}.{k}" for s, keys in section_keys().items() for k in keys}


def test_the_old_default_data_dir_is_ignored_by_git():
    """A ./shadowpi-data made by running shadowpi in a checkout is never committed by accident."""
    assert "shadowpi-data/" in (Path(__file__).parent.parent / ".gitignore").read_text().splitlines()


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
