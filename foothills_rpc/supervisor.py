"""`serve --workers N`: a small supervisor that keeps N server processes serving one port.

Each worker is a fresh interpreter (`python -m foothills_rpc.cli serve --supervisor-pid PID`), never a
fork of a process that holds gRPC objects: one event loop, its own bounded database pool
(`FOOTHILLS_DB_POOL_SIZE` connections per worker), and the listening port shared through SO_REUSEPORT,
so the kernel spreads new *connections* (not calls) over the workers. The supervisor holds no gRPC or
database objects itself. It restarts a worker that dies (with a growing delay, so a crash loop does not
spin), passes SIGTERM and SIGINT on to every worker for a graceful drain, and exits 0 when they all
stopped cleanly. A worker that exits with 2 (a configuration error) stops the whole group with 2:
restarting cannot fix it. A worker whose supervisor disappears drains and exits on its own.

Only on PostgreSQL: SQLite allows one writing process at a time, and the embedded default is meant for
one process, so more than one worker on SQLite is refused before anything starts.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

from foothills_rpc.config import Settings
from foothills_rpc.observability import logs

log = logging.getLogger(__name__)

FIRST_RESTART_DELAY = 0.5  # seconds; doubles on each quick death of the same worker...
MAX_RESTART_DELAY = 30.0  # ...up to this
STABLE_AFTER = 10.0  # a worker that served this long before dying is restarted after the first delay again
STOP_MARGIN = 15.0  # seconds past the drain grace period before a hung worker is killed
CONFIGURATION_ERROR = 2  # the exit code of `foothills-rpc` for a configuration error


class SupervisorError(Exception):
    """A reason not to start: the message is for the operator."""


def include_pid_in_logs(log_format: str) -> None:
    """Several processes share one stderr: each log line names its process."""
    logs.configure(logging.getLevelName(logging.getLogger().level), log_format, with_pid=True)


def metrics_listen_of(listen: str | None, slot: int) -> str | None:
    """Worker `slot`'s Prometheus endpoint: the configured port plus the slot, so each worker is
    scraped on its own (per-process figures, the process collector included; no shared files)."""
    if listen is None:
        return None
    host, _, port = listen.rpartition(":")
    return f"{host}:{int(port) + slot}"


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise SupervisorError(f"--listen {listen!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_port_free(host: str, port: int) -> None:
    """Refuses a port that something already listens on. SO_REUSEPORT would otherwise let the workers
    quietly share it with another process of the same user (an old deployment, a second supervisor)."""
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore connections in TIME_WAIT
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise SupervisorError(f"{host}:{port} is already in use") from None
                # e.g. no IPv6 on this host for `localhost`: gRPC skips that address too


@dataclass
class Worker:
    slot: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = FIRST_RESTART_DELAY
    restart_at: float = 0.0  # monotonic time of the next start while `process` is None


class Supervisor:
    """Runs `workers` copies of `command` (a list of argv strings) until SIGTERM or SIGINT."""

    def __init__(self, command: list[str], workers: int, *, grace_seconds: float,
                 metrics_listen: str | None = None) -> None:
        self.command = command
        self.metrics_listen = metrics_listen
        self.workers = [Worker(slot) for slot in range(workers)]
        self.grace_seconds = grace_seconds
        self._stop_signal: int | None = None
        self._failed: str | None = None

    def run(self) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            self._supervise(wake_read)
            return self._drain()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            os.close(wake_read)
            os.close(wake_write)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD and self._stop_signal is None:
            self._stop_signal = signum

    def _supervise(self, wake: int) -> None:
        while self._stop_signal is None and self._failed is None:
            now = time.monotonic()
            for worker in self.workers:
                if worker.process is None and now >= worker.restart_at:
                    self._start(worker)
                elif worker.process is not None and worker.process.poll() is not None:
                    self._died(worker)
            if self._stop_signal is not None or self._failed is not None:
                break
            pending = [w.restart_at - now for w in self.workers if w.process is None]
            timeout = max(0.0, min(pending, default=1.0))
            if select.select([wake], [], [], timeout)[0]:  # a signal (a worker's death, a stop) or the timeout
                os.read(wake, 512)

    def _start(self, worker: Worker) -> None:
        # S603: our own interpreter and argv (sys.executable -m foothills_rpc.cli), no shell
        env = dict(os.environ)
        if listen := metrics_listen_of(self.metrics_listen, worker.slot):
            env["FOOTHILLS_METRICS_LISTEN"] = listen
        worker.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, env=env)  # noqa: S603
        worker.started = time.monotonic()
        log.info("worker pid=%d started (slot %d)", worker.process.pid, worker.slot)

    def _died(self, worker: Worker) -> None:
        assert worker.process is not None
        code, pid = worker.process.returncode, worker.process.pid
        ran = time.monotonic() - worker.started
        worker.process = None
        if code == CONFIGURATION_ERROR:
            self._failed = f"worker pid={pid} exited with a configuration error"
            log.error("%s: stopping every worker", self._failed)
            return
        if ran >= STABLE_AFTER:
            worker.delay = FIRST_RESTART_DELAY
        worker.restart_at = time.monotonic() + worker.delay
        log.warning("worker pid=%d (slot %d) %s after %.1fs: restarting in %.1fs", pid, worker.slot,
                    _describe(code), ran, worker.delay)
        worker.delay = min(worker.delay * 2, MAX_RESTART_DELAY)

    def _drain(self) -> int:
        """Passes the stop signal on (SIGTERM after a failure), waits for every worker; the exit code."""
        sig = self._stop_signal or signal.SIGTERM
        running = [w.process for w in self.workers if w.process is not None]
        log.info("%s: draining %d worker(s) for up to %.0fs", signal.Signals(sig).name, len(running),
                 self.grace_seconds)
        for process in running:
            if process.poll() is None:
                process.send_signal(sig)
        deadline = time.monotonic() + self.grace_seconds + STOP_MARGIN
        clean = True
        for process in running:
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid=%d did not stop in time: killed", process.pid)
                process.kill()
                code = process.wait()
            if code != 0:
                log.error("worker pid=%d %s while stopping", process.pid, _describe(code))
                clean = False
        if self._failed is not None:
            return CONFIGURATION_ERROR
        log.info("all workers stopped%s", "" if clean else ", not all cleanly")
        return 0 if clean else 1


def _describe(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


def run(settings: Settings, listen: str, workers: int) -> int:
    """`serve --workers N` for N > 1: checks, then supervises until stopped. The exit code."""
    try:
        if settings.is_sqlite:
            raise SupervisorError(
                f"--workers {workers} needs PostgreSQL: SQLite lets one process write at a time, so the "
                "embedded database is served by one worker; use --workers 1 (the default) or set "
                "FOOTHILLS_DATABASE_URL to a PostgreSQL database")
        host, port = split_listen(listen)
        if port == 0:
            raise SupervisorError("--workers needs a fixed port: with port 0 each worker would get its own")
        check_port_free(host, port)
        if settings.metrics_listen and split_listen(settings.metrics_listen)[1] == 0:
            raise SupervisorError("FOOTHILLS_METRICS_LISTEN needs a fixed port with --workers: worker i serves "
                                  "on PORT + i, where the scrape config finds it")
    except SupervisorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    include_pid_in_logs(settings.log_format)
    command = [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", listen,
               "--supervisor-pid", str(os.getpid())]
    log.info("supervisor: %d workers on %s (SO_REUSEPORT; up to %d database connections each)",
             workers, listen, settings.db_pool_size)
    return Supervisor(command, workers, grace_seconds=settings.shutdown_grace_seconds,
                      metrics_listen=settings.metrics_listen).run()


def become_worker(supervisor_pid: int, log_format: str = "text") -> None:
    """In a worker: name the process in every log line, and drain (SIGTERM to itself) if the supervisor
    goes away, so an orphan never keeps serving the port alone."""
    include_pid_in_logs(log_format)

    def watch() -> None:
        while os.getppid() == supervisor_pid:
            time.sleep(1.0)
        log.warning("supervisor pid=%d is gone: stopping", supervisor_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-supervisor", daemon=True).start()


__all__ = ["Supervisor", "SupervisorError", "become_worker", "check_port_free", "run", "split_listen"]
