"""SIGHUP: reload the config file's [groups] and [indexes.*] tables and the htpasswd file without dropping a
connection. The new index graph is built and validated first, then swapped in whole; a bad file logs one line and
the old graph (and users) stay."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from proxy.auth import Htpasswd
from proxy.config_load import build_config
from proxy.config_schema import ACCESS_SECTIONS
from proxy.errors import ConfigError
from proxy.keys import ACCESS, AUTH, CONFIG

log = logging.getLogger(__name__)


def reload_access(app: web.Application) -> bool:
    """Re-read the indexes, groups and users; True when the new ones are in use."""
    config = app[CONFIG]
    try:
        tables: Mapping[str, Mapping[str, Any]] = {}
        if config.source is not None:
            with config.source.open("rb") as f:
                raw = tomllib.load(f)
            tables = build_config({k: raw[k] for k in ACCESS_SECTIONS if k in raw}).access_tables
        access = replace(config, access_tables=tables).access()
        htpasswd = Htpasswd.load(config.auth.htpasswd) if config.auth.htpasswd else None
    except (OSError, tomllib.TOMLDecodeError, ConfigError) as exc:
        log.error("reload refused, keeping the indexes and users in use: %s", exc)
        return False
    app[ACCESS].current = access
    if htpasswd is not None:
        app[AUTH].set_htpasswd(htpasswd)
    log.info("reloaded: %d index(es), %d group(s)%s", len(access.indexes), len(access.groups),
             ", htpasswd" if htpasswd is not None else "")
    return True
