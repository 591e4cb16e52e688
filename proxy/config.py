"""Typed, frozen configuration: one dataclass per section, with the defaults, and `Config` over them all.

What a setting is and defaults to lives here; which TOML keys are accepted and how each value is validated is
proxy.config_schema, and reading them (file, SHADOWPI_* variables, flags) is proxy.config_load. Nearly every module
imports these dataclasses, so they stay apart from the parsing that only start-up and reload need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yarl import URL

from proxy.access.graph import build_access, root_index
from proxy.access.model import Access
from proxy.backends.urls import mask_password
from proxy.config_env import LEGACY_DATA_DIR
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
