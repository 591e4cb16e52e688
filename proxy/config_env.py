"""Where configuration comes from besides the file: SHADOWPI_* variables and the default data dir.

A leaf like proxy.config (proxy.config and proxy.config_load use it): it knows the schema only as the
{section: keys} map it is given.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.errors import ConfigError

if TYPE_CHECKING:
    from proxy.config import Config

ENV_PREFIX = "SHADOWPI_"
LEGACY_DATA_DIR = "shadowpi-data"  # the old default, relative to the working directory: still honoured if it exists
# SHADOWPI_* variables that are not settings: the config file's path, and the token the README has users export
# for twine and uv publish. Any other variable outside the known sections is none of our business either.
_NOT_SETTINGS = frozenset({"SHADOWPI_CONFIG", "SHADOWPI_TOKEN"})

Warn = Callable[[str], None]
Schema = Mapping[str, Collection[str]]


def env_settings(environ: Mapping[str, str], schema: Schema, warn: Warn | None = None) -> list[tuple[str, str, object]]:
    """(section, key, value) for every SHADOWPI_<SECTION>_<KEY> variable naming a known key; values read like
    TOML (numbers, booleans, lists), anything else is a plain string.

    Other SHADOWPI_* variables are not configuration and never stop a command: a near-miss (a known section with
    an unknown key, or a close misspelling of a setting) is reported through `warn`, anything else is ignored.
    """
    found = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        setting = _setting(name, schema)
        if setting is not None:
            found.append((*setting, _value(raw)))
        elif warn is not None and (hint := _near_miss(name, schema)) is not None:
            warn(hint)
    return found


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def _setting(name: str, schema: Schema) -> tuple[str, str] | None:
    rest = name.removeprefix(ENV_PREFIX).lower()
    for section, keys in schema.items():
        key = rest.removeprefix(section + "_")
        if key != rest and key in keys:
            return section, key
    return None


def _near_miss(name: str, schema: Schema) -> str | None:
    """A warning for a variable that looks meant as a setting but names none; None when it looks unrelated."""
    rest = name.removeprefix(ENV_PREFIX).lower()
    ignored = f"{name} is not a setting and is ignored"
    section = next((s for s in schema if rest == s or rest.startswith(s + "_")), None)
    if section is not None:  # a known section: suggest a close key, else list them all
        key = rest.removeprefix(section).removeprefix("_")
        close = difflib.get_close_matches(key, list(schema[section]), n=1, cutoff=0.75)
        if close:
            return f"{ignored}; did you mean {env_name(section, close[0])}?"
        return f"{ignored} (known in [{section}]: {', '.join(env_name(section, k) for k in schema[section])})"
    candidates = [f"{s}_{k}" for s, keys in schema.items() for k in keys]
    close = difflib.get_close_matches(rest, candidates, n=1, cutoff=0.8)
    if close:  # a misspelt section
        return f"{ignored}; did you mean {ENV_PREFIX}{close[0].upper()}?"
    return None


def _value(raw: str) -> object:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def default_data_dir(environ: Mapping[str, str], cwd: Path) -> tuple[Path, str]:
    """(the data dir to use when none is configured, where that choice came from); always absolute.

    An existing ./shadowpi-data (the old, relative default) is honoured, so existing setups keep their data.
    Otherwise the per-user XDG data dir: the same place for every command a user runs, whatever the working
    directory. (A relative default made `shadowpi token create`, run elsewhere, create a second, empty data dir
    and print a token the server then rejected.) Raises ConfigError when there is no home directory.
    """
    legacy = cwd / LEGACY_DATA_DIR
    if legacy.is_dir():
        return legacy, f"default: ./{LEGACY_DATA_DIR} exists in the working directory"
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "shadowpi", "default: $XDG_DATA_HOME/shadowpi"
    try:
        home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    except (KeyError, RuntimeError):
        raise ConfigError("server.data_dir: no home directory for the default data dir; set --data-dir") from None
    return home / ".local" / "share" / "shadowpi", "default: ~/.local/share/shadowpi"


def prepare_data_dir(config: Config) -> None:
    """Create the data dir and prove it is writable, so a bad path fails at start-up, not on first use."""
    path = config.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"server.data_dir: {path} is not a writable directory ({exc.strerror})") from None
