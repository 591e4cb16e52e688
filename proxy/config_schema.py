"""The configuration's schema: every accepted section and key with the parser that validates its value, and the
errors that name the key. Unknown keys are errors, so a typo never silently does nothing.

Separate from the dataclasses (proxy.config), which say what a setting means, and from the loading
(proxy.config_load), which applies this schema to the file, the SHADOWPI_* variables and the flags.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from yarl import URL

from proxy.access.graph import name_patterns, project_names
from proxy.backends.urls import parse_database_url, parse_storage_url
from proxy.config import mask_url
from proxy.errors import ConfigError


def _as_bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, not {value!r}")
    return value


def _as_number(key: str, value: object, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: must be a number, not {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum:g}, not {value!r}")
    return float(value)


def _as_int(key: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: must be a whole number, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{key}: must be {bound}, not {value}")
    return value


def _as_str(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a non-empty string, not {value!r}")
    return value


def _as_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _as_path(key: str, value: object) -> Path:
    return Path(_as_str(key, value)).expanduser()


def _as_upstream_url(key: str, value: object) -> str:
    text = _as_str(key, value)
    try:
        url = URL(text)
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a URL") from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigError(f"{key}: must be an http(s) URL of a simple index, not {mask_url(text)!r}")
    return text if text.endswith("/") else text + "/"


def _as_database_url(key: str, value: object) -> str:
    text = _as_str(key, value)
    parse_database_url(key, text)
    return text


def _as_storage_url(key: str, value: object) -> str:
    text = _as_str(key, value)
    parse_storage_url(key, text)
    return text


def _server_url(text: str) -> tuple[URL | None, bool]:
    """(the URL, whether it is a plain http(s) server URL: a host, no query or fragment); (None, False) when
    `text` is not a URL at all. Credentials are the caller's to judge."""
    try:
        url = URL(text)
    except ValueError:
        return None, False
    plain = url.scheme in {"http", "https"} and bool(url.host) and not url.query_string and not url.fragment
    return url, plain


def _as_endpoint_url(key: str, value: object) -> str:
    """An S3 endpoint (http or https, host, optional port); credentials in it are refused without echoing it."""
    text = _as_str(key, value)
    url, plain = _server_url(text)
    if url is not None and (url.user or url.password):
        raise ConfigError(f"{key}: credentials do not belong in the URL (use AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or a profile)")
    if not plain:
        raise ConfigError(f"{key}: must be the http(s) URL of an S3 endpoint such as https://s3.example.com:9000, "
                          f"not {text!r}")
    return text


def _as_advertise_url(key: str, value: object) -> str:
    """The URL other replicas reach this one at: http(s), a host, no credentials, query or fragment."""
    text = _as_str(key, value)
    url, plain = _server_url(text)
    if url is None or not plain or url.user or url.password:
        raise ConfigError(f"{key}: must be the http(s) URL other replicas reach this one at, such as "
                          f"http://10.0.0.5:8080, not {text!r}")
    return text


def _as_region(key: str, value: object) -> str:
    text = _as_str(key, value)
    if not text.replace("-", "").isalnum() or not text.isascii():
        raise ConfigError(f"{key}: {text!r} is not a region name such as us-east-1")
    return text


def _as_hosts(key: str, value: object) -> tuple[str, ...]:
    """Host names, or host:port, lower-cased; never a scheme, path or credentials."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of host names such as \"files.pythonhosted.org\"")
    hosts = []
    for entry in value:
        try:
            url = URL(f"//{entry}")
        except ValueError:
            url = None
        if url is None or not url.host or url.path not in {"", "/"} or url.user or url.query_string or url.fragment:
            raise ConfigError(f"{key}: {entry!r} is not a host name or host:port")
        hosts.append(entry.lower())
    return tuple(hosts)


def _as_users(key: str, value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: must be a list of user names such as [\"alice\"]")
    return frozenset(value)


def _as_networks(key: str, value: object) -> tuple[str, ...]:
    """IP addresses or networks (CIDR), validated now so a typo cannot silently trust nobody (or everybody)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of addresses or networks such as [\"127.0.0.1\", \"10.0.0.0/8\"]")
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"{key}: {entry!r} is not an IP address or network") from None
    return tuple(value)


def _as_presign_ttl(key: str, value: object) -> float:
    seconds = _as_number(key, value, minimum=1)
    if seconds > 604800:
        raise ConfigError(f"{key}: must be at most 604800 (7 days: the longest a presigned URL may live)")
    return seconds


Parser = Callable[[str, object], object]
ACCESS_SECTIONS = ("groups", "indexes")  # parsed by proxy.access.graph (index names and groups are the keys)

# Every accepted key, with its parser. Unknown keys are errors: a typo must not silently do nothing.
_SCHEMA: dict[str, dict[str, Parser]] = {
    "server": {
        "host": _as_str,
        "port": lambda k, v: _as_int(k, v, minimum=0, maximum=65535),
        "data_dir": _as_path,
        "workers": lambda k, v: _as_int(k, v, minimum=1, maximum=64),
        "header_timeout": lambda k, v: _as_number(k, v, minimum=0.1),
        "max_connections": lambda k, v: _as_int(k, v, minimum=1),
        "max_connections_per_client": lambda k, v: _as_int(k, v, minimum=1),
        "advertise_url": _as_advertise_url,
    },
    "upstream": {
        "url": _as_upstream_url,
        "page_ttl": _as_number,
        "negative_ttl": _as_number,
        "offline": _as_bool,
        "connect_timeout": lambda k, v: _as_number(k, v, minimum=0.1),
        "page_timeout": lambda k, v: _as_number(k, v, minimum=0.1),
        "read_timeout": lambda k, v: _as_number(k, v, minimum=0.1),
        "file_hosts": _as_hosts,
        "max_file_size": lambda k, v: _as_int(k, v, minimum=1),
        "download_timeout": _as_number,
        "min_download_speed": lambda k, v: _as_int(k, v, minimum=0),
        "max_page_size": lambda k, v: _as_int(k, v, minimum=1024),
        "max_page_files": lambda k, v: _as_int(k, v, minimum=1),
    },
    "database": {"url": _as_database_url, "pool_size": lambda k, v: _as_int(k, v, minimum=1, maximum=1000)},
    "storage": {
        "url": _as_storage_url,
        "endpoint_url": _as_endpoint_url,
        "region": _as_region,
        "redirect": _as_bool,
        "redirect_ttl": _as_presign_ttl,
        "local_cache": lambda k, v: _as_int(k, v, minimum=0),
    },
    "auth": {
        "htpasswd": _as_path,
        "read": _as_bool,
        "bcrypt_threads": lambda k, v: _as_int(k, v, minimum=1, maximum=64),
        "max_failures": lambda k, v: _as_int(k, v, minimum=1),
        "failure_window": lambda k, v: _as_number(k, v, minimum=1),
    },
    "upload": {
        "max_size": lambda k, v: _as_int(k, v, minimum=1),
        "allow_overwrite": _as_bool,
        "max_fields_size": lambda k, v: _as_int(k, v, minimum=1024),
        "max_parts": lambda k, v: _as_int(k, v, minimum=16),
        "spool_sweep_interval": _as_number,
    },
    "policy": {"merge_upstream": project_names, "private_patterns": name_patterns},
    "cache": {
        "max_size": lambda k, v: _as_int(k, v, minimum=0),
        "max_negative_pages": lambda k, v: _as_int(k, v, minimum=0),
        "page_memory": lambda k, v: _as_int(k, v, minimum=0),
        "open_files": lambda k, v: _as_int(k, v, minimum=0),
    },
    "metrics": {"enabled": _as_bool, "token": _as_str},
    "logging": {
        "level": lambda k, v: _as_choice(k, v, ("DEBUG", "INFO", "WARNING", "ERROR")),
        "format": lambda k, v: _as_choice(k, v, ("text", "json")),
    },
    "ui": {
        "enabled": _as_bool,
        "admins": _as_users,
        "trusted_proxies": _as_networks,
        "session_lifetime": lambda k, v: _as_number(k, v, minimum=60),
    },
}



def section_keys() -> dict[str, list[str]]:
    """Every section and key the config accepts (used to check config.example.toml stays complete)."""
    return {section: list(keys) for section, keys in _SCHEMA.items()}

