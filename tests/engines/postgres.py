"""A throwaway PostgreSQL cluster built from the server binaries (`initdb` + `pg_ctl`), for tests and bench/.

`PostgresServer.start()` initialises a cluster in a private temp dir, starts it on a free 127.0.0.1 port with
its unix socket in that dir and durability switched off (the data is thrown away), and waits until it accepts
connections (`pg_ctl start -w`). `create_database()` gives each test its own empty database; `stop()` stops the
server and deletes everything. `initdb` refuses to run as root, so as root the cluster runs as the `postgres`
system user (`runuser -u postgres --`), which the Debian package creates; otherwise as the current user.

Admin statements go through `psql` on the unix socket (trust auth there), so this module needs no Python
driver. Clients get `postgresql://shadowpi:PASSWORD@127.0.0.1:PORT/DB`, where password auth (scram) applies.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.engines.common import EngineUnavailable, log_tail, make_server_dir, pick_ports, reap_orphans

SUPERUSER = "shadowpi"
SYSTEM_USER = "postgres"  # who runs the server when we are root
INSTALL_HINT = (
    "install the server: `apt-get install -y postgresql` (Debian/Ubuntu; .ci/run does this), "
    "or put a directory with initdb, pg_ctl and postgres on PATH"
)
# Durability off: a test cluster lives for one session and is deleted afterwards.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "300",  # several replicas with a pool each, plus the tests' own connections
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",  # tests provoke errors on purpose; keep the log readable
}
_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")


def _has_tools(directory: Path) -> bool:
    return all(os.access(directory / tool, os.X_OK) for tool in _TOOLS)


def find_bindir() -> Path | None:
    """The directory with initdb, pg_ctl, postgres and psql: `pg_config --bindir`, Debian's layout, then PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))

    def major(path: str) -> int:
        version = Path(path).parent.name
        return int(version) if version.isdigit() else 0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return next((c for c in candidates if _has_tools(c)), None)


def _run_as() -> list[str]:
    """argv prefix that runs a command as the cluster's owner."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise EngineUnavailable(f"running as root, but there is no `{SYSTEM_USER}` user to run PostgreSQL as "
                                f"(initdb refuses root): {INSTALL_HINT}") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise EngineUnavailable("running as root, but `runuser` (util-linux) is missing to switch to postgres")
    return [runuser, "-u", SYSTEM_USER, "--"]


@dataclass(frozen=True)
class Database:
    """One database on the test cluster, and the URL a client (or a shadowpi replica) connects with."""

    name: str
    url: str


@dataclass
class PostgresServer:
    """A running throwaway cluster. Use `start()`; `stop()` removes every trace."""

    base: Path
    bindir: Path
    port: int
    password: str
    as_owner: list[str]

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, bindir: Path | None = None, attempts: int = 3) -> PostgresServer:
        """Initialise and start a cluster; raises EngineUnavailable with the reason (and log) when it cannot."""
        bindir = bindir or find_bindir()
        if bindir is None or not _has_tools(bindir):
            raise EngineUnavailable(f"PostgreSQL server binaries ({', '.join(_TOOLS)}) not found"
                                    f"{f' in {bindir}' if bindir else ''}: {INSTALL_HINT}")
        reap_orphans("pg", _stop_dir)
        as_owner = _run_as()
        server = cls(make_server_dir("pg"), bindir, 0, secrets.token_hex(16), as_owner)
        try:
            server._initdb()
            server._start_on_free_port(attempts)
        except BaseException:
            server.stop()
            raise
        return server

    def _initdb(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_owner:
            pw = pwd.getpwnam(SYSTEM_USER)
            for path in (self.base, pwfile):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        result = self._run(self.bindir / "initdb", "-D", self.data, "-U", SUPERUSER, f"--pwfile={pwfile}",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                           "--no-sync", "--no-instructions")
        pwfile.unlink()
        if result.returncode != 0:
            raise EngineUnavailable(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        settings = "".join(f"{key} = {value}\n" for key, value in SETTINGS.items())
        settings += f"unix_socket_directories = '{self.base}'\n"
        with (self.data / "postgresql.conf").open("a") as conf:  # owned by postgres; root may append
            conf.write("\n# shadowpi test cluster\n" + settings)

    def _start_on_free_port(self, attempts: int) -> None:
        """`pg_ctl start -w` (it waits until connections are accepted); a new port when another process won it."""
        for _ in range(attempts):
            self.port = pick_ports(1)[0]
            result = self._run(self.bindir / "pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                               "-o", f"-p {self.port}")
            if result.returncode == 0:
                return
            if "could not bind" not in log_tail(self.log):
                break
        raise EngineUnavailable(f"PostgreSQL did not start:\n{log_tail(self.log)}")

    def _run(self, *argv: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [*self.as_owner, *map(str, argv)]
        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        return subprocess.run(command, cwd=self.base, env=env, capture_output=True, text=True, check=False,
                              timeout=timeout)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement as the superuser over the unix socket; returns unaligned output."""
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.base),
                "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self) -> Database:
        """A new, empty database (from template0, so nothing a test put in template1 leaks in)."""
        name = f"test_{secrets.token_hex(6)}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")  # faster without fsync
        return Database(name, self.url(name))

    def drop_database(self, name: str) -> None:
        """Drop it even while a leaked pool is still connected (WITH FORCE ends those sessions)."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server immediately (nothing is kept) and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            self._run(self.bindir / "pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w", timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def _stop_dir(base: Path) -> None:
    """Stop an orphaned cluster left by a killed test run (see common.reap_orphans)."""
    bindir = find_bindir()
    data = base / "data"
    if bindir is not None and (data / "postmaster.pid").exists():
        subprocess.run([*_run_as(), str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"],
                       cwd="/", capture_output=True, check=False, timeout=60)
