"""Loading the configuration: defaults, then the TOML file, then SHADOWPI_* variables, then command-line flags, each
layer validated against proxy.config_schema into the frozen Config of proxy.config.

Separate from the schema (what is accepted) and the dataclasses (what it means): only start-up (cli_common) and
SIGHUP (reload) read configuration; everything else receives a Config.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from proxy.config import Config
from proxy.config_env import Warn, default_data_dir, env_name, env_settings
from proxy.config_schema import _SCHEMA, ACCESS_SECTIONS
from proxy.errors import ConfigError


def build_config(raw: Mapping[str, Any], *, base: Config | None = None) -> Config:
    """Validate a TOML-shaped mapping into a Config layered over `base` (defaults when None)."""
    config = base or Config()
    access = {s: v for s, v in raw.items() if s in ACCESS_SECTIONS}
    for section, values in raw.items():
        if section in ACCESS_SECTIONS:
            continue
        schema = _SCHEMA.get(section)
        if schema is None:
            raise ConfigError(f"{section}: unknown section (known: {', '.join((*_SCHEMA, *ACCESS_SECTIONS))})")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: must be a table")
        updates: dict[str, object] = {}
        for key, value in values.items():
            parse = schema.get(key)
            if parse is None:
                raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(schema)})")
            updates[key] = parse(f"{section}.{key}", value)
        config = replace(config, **{section: replace(getattr(config, section), **updates)})
    if access:
        for section, values in access.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: must be a table")
        config = replace(config, access_tables={**config.access_tables, **access})
        config.access()  # raises ConfigError naming the key: an unknown base, a cycle, an unknown group, ...
    return config


def env_config(environ: Mapping[str, str], base: Config, warn: Warn | None = None) -> Config:
    """`base` with the SHADOWPI_<SECTION>_<KEY> settings applied. A bad value raises ConfigError naming the
    variable; variables that are no setting only ever warn (see proxy.config_env)."""
    config = base
    for section, key, value in env_settings(environ, _SCHEMA, warn):
        try:
            config = build_config({section: {key: value}}, base=config)
        except ConfigError as exc:
            message = str(exc).removeprefix(f"{section}.{key}: ")
            raise ConfigError(f"{env_name(section, key)}: {message}") from None
    return config


def load_config(
    path: Path | None,
    overrides: Mapping[str, Mapping[str, object]] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    warn: Warn | None = None,
    cwd: Path | None = None,
) -> Config:
    """Defaults, then the TOML file (if any), then SHADOWPI_* variables, then `overrides` (command-line flags).

    The data dir is made absolute; `config.data_dir_source` says where it came from. `warn` receives one line per
    SHADOWPI_* variable that looks like a misspelt setting.
    """
    environ = environ or {}
    cwd = cwd or Path.cwd()
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as f:
                raw = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    flags = {k: dict(v) for k, v in (overrides or {}).items() if v}
    config = build_config(raw)
    config = env_config(environ, config, warn)
    config = build_config(flags, base=config)
    data_dir, source = config.data_dir, _data_dir_source(raw, environ, flags, path)
    if source == "default":
        data_dir, source = default_data_dir(environ, cwd)
    absolute = data_dir if data_dir.is_absolute() else cwd / data_dir
    return replace(config, server=replace(config.server, data_dir=absolute), data_dir_source=source, source=path)


def _data_dir_source(
    raw: Mapping[str, Any], environ: Mapping[str, str], flags: Mapping[str, Mapping[str, object]], path: Path | None
) -> str:
    if "data_dir" in flags.get("server", {}):
        return "--data-dir"
    if env_name("server", "data_dir") in environ:
        return env_name("server", "data_dir")
    if isinstance(raw.get("server"), dict) and "data_dir" in raw["server"]:
        return f"server.data_dir in {path}"
    return "default"

