"""`serve --workers N`: fork N workers sharing the port (SO_REUSEPORT), and supervise them.

The master logs "serving" once every worker has bound the port, replaces a worker that dies (logging its pid
and exit status or signal, with a back-off so a crash loop does not spin), reaps every child, forwards
SIGTERM/SIGINT to the workers and exits 0 once they have finished. It never runs an event loop itself:
it waits on a self-pipe (signal.set_wakeup_fd) and a report pipe the workers write one line to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType

from proxy.config import Config
from proxy.connections import Limits
from proxy.server import STOP_SIGNALS, ListenError, StopFlag, log_serving, run_server

log = logging.getLogger("shadowpi")
STABLE_AFTER = 30.0  # seconds a worker must live before its death no longer counts towards the back-off
MAX_BACKOFF = 30.0  # seconds between restarts in a crash loop, at most


@dataclass(slots=True)
class Worker:
    pid: int
    started: float
    listening: bool = False


def describe_exit(status: int) -> str:
    """A waitpid() status as words: 'exited with status 1', 'killed by SIGKILL (signal 9)'."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(number).name} (signal {number})"
        return f"killed by signal {number}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def restart_delay(short_lived: int) -> float:
    """Seconds before the next replacement after `short_lived` consecutive workers died young."""
    return 0.0 if short_lived <= 0 else min(MAX_BACKOFF, 0.5 * 2 ** (short_lived - 1))


class Supervisor:
    def __init__(self, config: Config, limits: Limits, stop: StopFlag) -> None:
        self._config, self._limits, self._stop = config, limits, stop
        self._workers: dict[int, Worker] = {}
        self._short_lived = 0
        self._restart_at: float | None = None
        self._missing = 0  # workers to start (initially N, then one per death)
        self._announced = False
        self._failed: str | None = None
        self._buffer = b""

    def run(self) -> int:
        """Start the workers and supervise them until a stop signal; the exit status (0: clean stop)."""
        self._migrate()
        self._reports, self._report_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)  # any signal with a Python handler (below) wakes select()
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        self._missing = self._config.server.workers
        self._restart_at = time.monotonic()
        try:
            while True:
                self._reap()
                if self._stopping and not self._workers:
                    break
                self._start_due()
                self._wait(wake_r)
        finally:
            signal.set_wakeup_fd(-1)
        self._drain_reports()  # a worker's reason for failing may still be in the pipe
        if self._failed is not None:
            print(f"shadowpi: {self._failed}", file=sys.stderr)
            return 1
        return 0

    @property
    def _stopping(self) -> bool:
        return self._stop.requested is not None or self._failed is not None

    def _migrate(self) -> None:
        from proxy.backends import open_backends

        async def migrate() -> None:  # once, before forking, so workers never race on the schema
            async with open_backends(self._config, migrate=True):
                pass

        asyncio.run(migrate())

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        first = self._stop.requested is None
        self._stop.requested = signum
        if first:
            log.info("stopping %d worker(s)", len(self._workers))
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        """SIGHUP: every worker reloads its indexes, groups and users (proxy/reload.py)."""
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    def _stop_all(self, reason: str) -> None:
        self._failed = self._failed or reason
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # --- children ---

    def _start_due(self) -> None:
        if self._stopping or not self._missing or self._restart_at is None or time.monotonic() < self._restart_at:
            return
        while self._missing:
            self._fork()
            self._missing -= 1
        self._restart_at = None

    def _fork(self) -> None:
        # Signals stay blocked from before the fork until the child is registered (so a stop forwarded right
        # away reaches it) and, in the child, until it has its own handler: an inherited master handler, or the
        # default action of dying by the signal, used to kill young workers (the master then exited 241).
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {*STOP_SIGNALS, signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child (covered by the multi-worker tests)
                self._child(previous)
            self._workers[pid] = Worker(pid, time.monotonic())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _child(self, mask: set[int | signal.Signals]) -> None:  # pragma: no cover - runs in the child
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's loop reloads on it (server.py)
            stop = StopFlag().install()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(self._reports)
            report = self._report_w

            def listening(_port: int) -> None:
                os.write(report, f"R {os.getpid()}\n".encode())

            code = run_server(self._config, self._limits, stop, listening, reuse_port=True)
        except ListenError as exc:
            os.write(self._report_w, f"E {os.getpid()} {exc}\n".encode())
        except BaseException:
            log.exception("worker %d failed", os.getpid())
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _reap(self) -> None:
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._workers.pop(pid, None)
            if worker is not None:
                self._lost(worker, status)

    def _lost(self, worker: Worker, status: int) -> None:
        how = describe_exit(status)
        if self._stopping:
            log.info("worker %d %s", worker.pid, how)
            return
        if not worker.listening and not self._announced:
            self._stop_all(f"worker {worker.pid} {how} before it was listening; see the log above")
            return
        lived = time.monotonic() - worker.started
        self._short_lived = self._short_lived + 1 if lived < STABLE_AFTER else 0
        delay = restart_delay(self._short_lived)
        log.warning("worker %d %s after %.0f s; starting a replacement in %g s", worker.pid, how, lived, delay)
        self._missing += 1
        self._restart_at = time.monotonic() + delay

    # --- waiting and reports ---

    def _wait(self, wake_r: int) -> None:
        timeout = None if self._restart_at is None else max(0.0, self._restart_at - time.monotonic())
        if self._stopping and self._workers:
            timeout = 1.0  # reap promptly even if a SIGCHLD was coalesced
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([wake_r, self._reports], [], [], timeout)
            if wake_r in ready:
                os.read(wake_r, 4096)
            if self._reports in ready:
                self._read_reports()

    def _drain_reports(self) -> None:
        while select.select([self._reports], [], [], 0)[0] and self._read_reports():
            pass

    def _read_reports(self) -> bool:
        data = os.read(self._reports, 65536)
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            kind, _, rest = line.decode(errors="replace").partition(" ")
            pid_text, _, message = rest.partition(" ")
            worker = self._workers.get(int(pid_text)) if pid_text.isdigit() else None
            if kind == "E":
                self._failed = message  # the worker's own words beat what its exit status says
                self._stop_all(message)
            elif kind == "R" and worker is not None:
                worker.listening = True
                self._listening(worker)
        return bool(data)

    def _listening(self, worker: Worker) -> None:
        if self._announced:
            log.info("worker %d listening", worker.pid)
        elif len(self._workers) == self._config.server.workers and all(w.listening for w in self._workers.values()):
            self._announced = True
            log_serving(self._config, self._config.server.port)
            log.info("worker pids: %s", " ".join(str(pid) for pid in sorted(self._workers)))
