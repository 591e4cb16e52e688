"""Typed, frozen configuration: TOML file + command-line overrides + defaults, validated with key-naming errors."""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from yarl import URL

from proxy.access.graph import build_access, name_patterns, project_names, root_index
from proxy.access.model import Access
from proxy.backends.urls import mask_password, parse_database_url, parse_storage_url
from proxy.config_env import LEGACY_DATA_DIR, Warn, default_data_dir, env_name, env_settings
from proxy.errors import ConfigError
from proxy.simple.names import NormalizedName
from proxy.simple.policy import ShadowPolicy

DEFAULT_UPSTREAM = "https://pypi.org/simple/"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # load_config() replaces this placeholder with default_data_dir(): absolute, the same from any directory.
    data_dir: Path = Path(LEGACY_DATA_DIR)
    workers: int = 1
    header_timeout: float = 15.0  # seconds a new connection gets to send its first request's complete headers
    max_connections: int = 1000  # open client connections per process; more are answered 503 and closed
    max_connections_per_client: int = 100  # per client address; more are answered 429 and closed
    advertise_url: str | None = None  # where other replicas reach this one (peer_url() derives a default)

    def peer_url(self) -> str | None:
        """Where other replicas reach this one: advertise_url, else http://host:port when the host is one address
        (not a wildcard such as 0.0.0.0, which names no address another machine could use); None without one."""
        if self.advertise_url is not None:
            return self.advertise_url.rstrip("/")
        if self.host in {"", "0.0.0.0", "::", "*"} or self.port == 0:  # noqa: S104 recognising it, not binding
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    url: str = DEFAULT_UPSTREAM
    page_ttl: float = 600.0  # seconds a cached project page is used before revalidation
    negative_ttl: float = 60.0  # seconds a 404 from upstream is remembered
    offline: bool = False
    connect_timeout: float = 10.0
    page_timeout: float = 15.0  # whole-request bound for a project page; then stale is served
    read_timeout: float = 60.0  # longest silence tolerated while streaming a file
    # Hosts (or host:port) besides the upstream's own origin that file links and redirects may point at.
    file_hosts: tuple[str, ...] = ("files.pythonhosted.org",)
    max_file_size: int = 4 * 2**30  # largest file fetched, declared or not (PyPI caps files at 1 GiB)
    download_timeout: float = 3600.0  # whole-download deadline, seconds (0 = none)
    min_download_speed: int = 1024  # bytes/s averaged over 30 s windows, below which a download fails (0 = none)
    max_page_size: int = 64 * 2**20  # bytes of one project page (PyPI's biggest, ddtrace: 21 MB of JSON)
    max_page_files: int = 200_000  # files on one project page (ddtrace: 46,724)

    def __repr__(self) -> str:  # keep upstream credentials out of logs and tracebacks
        return f"UpstreamConfig(url={mask_url(self.url)!r}, offline={self.offline})"


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:"  # the metadata backend; "sqlite:" is <data_dir>/shadowpi.sqlite3 (proxy/backends/urls.py)
    pool_size: int = 10  # PostgreSQL: connections per process at most (plus one for change notifications)

    def __repr__(self) -> str:  # the URL may hold a password
        return f"DatabaseConfig(url={mask_password(self.url)!r}, pool_size={self.pool_size})"


@dataclass(frozen=True, slots=True)
class StorageConfig:
    url: str = "file:"  # the blob backend; "file:" is the data dir (blobs/, with spools in tmp/)
    # The rest is for s3:// storage only (proxy/backends/s3/).
    endpoint_url: str | None = None  # else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / ~/.aws/config, else AWS itself
    region: str | None = None  # else AWS_REGION / the profile's region
    redirect: bool = False  # cached files: 302 to a presigned URL of the object instead of streaming it
    redirect_ttl: float = 300.0  # seconds a presigned URL stays valid
    local_cache: int = 0  # bytes of recently read objects each host keeps on local disk (data dir); 0 = off


@dataclass(frozen=True, slots=True)
class AuthConfig:
    htpasswd: Path | None = None
    read: bool = False  # true: every read needs credentials
    bcrypt_threads: int = 2  # password checks run in this many threads of their own (never the file I/O pool)
    max_failures: int = 10  # failed password logins per client address and failure_window; then 429
    failure_window: float = 60.0  # seconds


@dataclass(frozen=True, slots=True)
class UploadConfig:
    max_size: int = 100 * 2**20
    allow_overwrite: bool = False
    max_fields_size: int = 4 * 2**20  # bytes of all text fields and part headers of one upload together
    max_parts: int = 1000  # parts of one upload form (twine sends one per metadata value)
    spool_sweep_interval: float = 600.0  # seconds between sweeps for spools a crashed worker left; 0 = at start only


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    merge_upstream: frozenset[NormalizedName] = frozenset()
    private_patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CacheConfig:
    max_size: int = 0  # bytes of cached upstream files; 0 = unlimited. Private uploads never count or go.
    max_negative_pages: int = 100_000  # remembered upstream 404s kept (expired ones are forgotten anyway)
    page_memory: int = 256 * 2**20  # bytes of parsed and rendered pages kept in memory
    open_files: int = 256  # recently served blobs each process keeps open (a descriptor each): hits need no I/O


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = True
    token: str | None = None  # when set, /metrics needs "Authorization: Bearer <token>"

    def __repr__(self) -> str:
        return f"MetricsConfig(enabled={self.enabled}, token={'***' if self.token else None})"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "text"  # "text" or "json" (one JSON object per line)


@dataclass(frozen=True, slots=True)
class UiConfig:
    enabled: bool = True  # the web interface (GET /, /search, /project/...); false: API only
    admins: frozenset[str] = frozenset()  # users who see the operations page (issue 14: index admins)
    # Addresses (or networks) of reverse proxies whose X-Forwarded-Proto/-Host/-Prefix the pages trust.
    trusted_proxies: tuple[str, ...] = ()
    session_lifetime: float = 43200.0  # seconds a sign-in lasts (the session cookie's Max-Age)


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    # Where server.data_dir came from, for the one line every command prints ("--data-dir", "default", …).
    data_dir_source: str = field(default="default", compare=False)
    # The [groups] and [indexes.*] tables as written (validated): access() turns them into the index graph.
    access_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: Path | None = field(default=None, compare=False)  # the config file (SIGHUP reads it again)

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def access(self) -> Access:
        """Every index (root from [upstream], [policy], [auth]; the others from [indexes.*]) and the groups."""
        policy = ShadowPolicy(self.policy.merge_upstream, self.policy.private_patterns)
        root = root_index(read_requires_auth=self.auth.read, policy=policy)
        return build_access(self.access_tables.get("groups", {}), self.access_tables.get("indexes", {}), root)


def mask_url(url: str) -> str:
    """The URL with any password replaced, for logs."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


# --- parsing ---------------------------------------------------------------------------------------------


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


def _as_endpoint_url(key: str, value: object) -> str:
    """An S3 endpoint (http or https, host, optional port); credentials in it are refused without echoing it."""
    text = _as_str(key, value)
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is not None and (url.user or url.password):
        raise ConfigError(f"{key}: credentials do not belong in the URL (use AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or a profile)")
    if url is None or url.scheme not in {"http", "https"} or not url.host or url.query_string or url.fragment:
        raise ConfigError(f"{key}: must be the http(s) URL of an S3 endpoint such as https://s3.example.com:9000, "
                          f"not {text!r}")
    return text


def _as_advertise_url(key: str, value: object) -> str:
    """The URL other replicas reach this one at: http(s), a host, no credentials, query or fragment."""
    text = _as_str(key, value)
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or url.scheme not in {"http", "https"} or not url.host or url.user or url.password \
            or url.query_string or url.fragment:
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


def section_keys() -> dict[str, list[str]]:
    """Every section and key the config accepts (used to check config.example.toml stays complete)."""
    return {section: list(keys) for section, keys in _SCHEMA.items()}

