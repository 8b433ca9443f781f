"""`foothills-rpc serve --workers N`: several server processes on one port, under a supervisor.

The supervisor is a real `foothills-rpc serve --workers 2` subprocess on a fresh PostgreSQL database.
Which worker answered a call is read from the server log: under a supervisor every log line carries
`pid=...`, and each call sends its own `x-request-id`, which the call's log line repeats. Each call
that must be spread over the workers goes through a channel of its own with a local subchannel pool,
i.e. a TCP connection of its own: SO_REUSEPORT balances connections, not calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.database import Database
from foothills_rpc.mail import outbox
from tests.support import free_port, scrape, value

SECRET = "workers-test-jwt-secret-2b7d9f1c3e5a7b9d1f3e5a"
PASSWORD = "worker passphrase 8c1f"
START_TIMEOUT = 90.0  # two fresh interpreters on a busy 2-core machine
STOP_TIMEOUT = 60.0
CALL_TIMEOUT = 30.0
SPREAD_ATTEMPTS = 8  # batches of fresh connections before giving up on seeing a worker answer

SERVING = re.compile(r"pid=(\d+) logger=foothills_rpc\.server serving on ")
STARTED = re.compile(r"logger=foothills_rpc\.supervisor worker pid=(\d+) started")
ANSWERED = re.compile(r"pid=(\d+) logger=foothills_rpc\.rpc rpc method=\S+ code=(\w+) .*request_id=(\S+)")


def _env(database_url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")}
    env.update(FOOTHILLS_DATABASE_URL=database_url, FOOTHILLS_JWT_SECRET=SECRET, FOOTHILLS_ARGON2_MEMORY_KIB="64",
               FOOTHILLS_ARGON2_TIME_COST="1", FOOTHILLS_OUTBOX_DIR=str(folder / "outbox"),
               FOOTHILLS_DB_POOL_SIZE="4", FOOTHILLS_SHUTDOWN_GRACE_SECONDS="5", FOOTHILLS_LOG_LEVEL="INFO")
    return env


def _children(pid: int) -> set[int]:
    """The live child processes of `pid` (zombies excluded), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@dataclass
class Cluster:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    metrics_port: int  # worker slot i serves its metrics on metrics_port + i

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def serving(self) -> set[int]:
        return {int(pid) for pid in SERVING.findall(self.text())}

    async def wait_for(self, what: str, predicate: Callable[[], bool], within: float = START_TIMEOUT) -> None:
        """Polls until `predicate()` holds (the supervisor must stay up meanwhile)."""
        deadline = time.monotonic() + within
        while not predicate():
            if self.popen.poll() is not None:
                pytest.fail(f"the supervisor exited with {self.popen.returncode} waiting for {what}:\n{self.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {within}s:\n{self.text()}")
            await asyncio.sleep(0.1)

    def answered_by(self, request_ids: list[str]) -> dict[str, int]:
        """request id -> pid of the worker that logged the call."""
        return {rid: int(pid) for pid, _, rid in ANSWERED.findall(self.text()) if rid in request_ids}


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    port = free_port()
    metrics_port = next(p for p in iter(free_port, None) if _port_free(p + 1))
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=tmp_path, env={**_env(database_url, tmp_path), "FOOTHILLS_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield Cluster(popen=popen, port=port, log=log, metrics_port=metrics_port)
    finally:
        if popen.poll() is None:  # the test failed before its own SIGTERM: stop the whole group
            workers = _children(popen.pid)
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
                for pid in workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _fresh_channel(port: int) -> grpc.aio.Channel:
    """A channel with a connection of its own (no subchannel shared with other channels)."""
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])


async def _login_on_fresh_connection(port: int, email: str, request_id: str) -> auth_pb2.LoginResponse:
    async with _fresh_channel(port) as channel:
        return await auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(email=email, password=PASSWORD), metadata=(("x-request-id", request_id),),
            timeout=CALL_TIMEOUT, wait_for_ready=True)


async def _spread_logins(cluster: Cluster, email: str, user: str, must_see: set[int], label: str) -> dict[str, int]:
    """Logs in on batches of fresh connections until every pid in `must_see` has answered one; every
    login must succeed as `user`. Returns request id -> answering pid."""
    answered: dict[str, int] = {}
    for batch in range(SPREAD_ATTEMPTS):
        ids = [f"{label}-{batch}-{i}" for i in range(8)]
        logins = await asyncio.gather(*(_login_on_fresh_connection(cluster.port, email, rid) for rid in ids))
        assert all(login.credentials.access_token and login.user.name == user for login in logins)

        def all_logged(ids: list[str] = ids) -> bool:
            return len(cluster.answered_by(ids)) == len(ids)

        await cluster.wait_for("log lines of the logins", all_logged, 30)
        answered.update(cluster.answered_by(ids))
        if must_see <= set(answered.values()):
            return answered
    pytest.fail(f"{len(answered)} logins on fresh connections never reached {must_see - set(answered.values())}: "
                f"{sorted(set(answered.values()))}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_workers_share_one_port_are_replaced_when_killed_and_drain_on_sigterm(cluster: Cluster) -> None:
    """Both workers serve calls on the one port; a change made through one connection is seen
    through every other; a worker killed with SIGKILL is replaced by a new process while calls keep
    succeeding; SIGTERM to the supervisor drains every worker and it exits 0."""
    await cluster.wait_for("two serving workers", lambda: len(cluster.serving()) == 2)
    workers = cluster.serving()
    assert workers == _children(cluster.popen.pid), "the serving processes are the supervisor's children"
    assert cluster.popen.pid not in workers

    # A change through one connection (a new account) is visible through connections to both workers.
    email = f"worker.{uuid.uuid4().hex[:8]}@example.com"
    async with _fresh_channel(cluster.port) as channel:
        registered = await auth_pb2_grpc.AuthServiceStub(channel).Register(auth_pb2.RegisterRequest(
            email=email, password=PASSWORD, display_name="Worker Test"), timeout=CALL_TIMEOUT, wait_for_ready=True)
    user = str(registered.user.name)
    answered = await _spread_logins(cluster, email, user, workers, "before")
    assert set(answered.values()) == workers
    # Each worker is scraped on its own port, and counts the logins it answered.
    logins = [value(await asyncio.to_thread(scrape, cluster.metrics_port + slot), "grpc_server_handled_total",
                    grpc_method="Login", grpc_code="OK") for slot in (0, 1)]
    assert sorted(logins) == sorted(Counter(answered.values()).values()), (logins, answered)

    # SIGKILL one worker: once the supervisor has seen it die, new connections all reach the survivor,
    # and the supervisor starts a replacement, a new process, that serves too.
    victim, survivor = sorted(workers)
    os.kill(victim, signal.SIGKILL)
    noticed = re.compile(rf"worker pid={victim} \(slot \d\) was killed by SIGKILL after .*: restarting in")
    await cluster.wait_for("the supervisor noticing the kill", lambda: bool(noticed.search(cluster.text())), 30)
    during = await _spread_logins(cluster, email, user, {survivor}, "after-kill")
    assert victim not in during.values()
    await cluster.wait_for("a replacement worker", lambda: len(cluster.serving() - workers) == 1)
    (replacement,) = cluster.serving() - workers
    assert [int(pid) for pid in STARTED.findall(cluster.text())][-1] == replacement
    assert _children(cluster.popen.pid) == {survivor, replacement}
    after = await _spread_logins(cluster, email, user, {survivor, replacement}, "replaced")
    assert set(after.values()) == {survivor, replacement}

    # SIGTERM: the supervisor passes it on, each worker drains, the supervisor exits 0.
    cluster.popen.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(cluster.popen.wait, STOP_TIMEOUT) == 0, cluster.text()
    text = cluster.text()
    for pid in (survivor, replacement):
        assert f"pid={pid} logger=foothills_rpc.server shutting down" in text
        assert f"pid={pid} logger=foothills_rpc.server stopped" in text
    assert "all workers stopped" in text and "not all cleanly" not in text
    assert not _children(cluster.popen.pid)
    assert "Traceback" not in text and "level=ERROR" not in text
    assert PASSWORD not in text


def test_more_than_one_worker_on_sqlite_is_refused(tmp_path: Path) -> None:
    """SQLite serves one process: `--workers 2` stops at once with exit 2, before any migration."""
    result = subprocess.run(
        [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{free_port()}", "--workers", "2"],
        cwd=tmp_path, env=_env(f"sqlite:///{tmp_path}/fresh.db", tmp_path), capture_output=True, text=True,
        timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "--workers 2 needs PostgreSQL" in result.stderr
    assert not (tmp_path / "fresh.db").exists()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("listen", "message"), [
    pytest.param("127.0.0.1:0", "--workers needs a fixed port", id="port-0"),
    pytest.param("127.0.0.1", "is not HOST:PORT", id="no-port"),
    pytest.param("busy", "is already in use", id="port-in-use"),
    pytest.param("metrics-port-0", "FOOTHILLS_METRICS_LISTEN needs a fixed port", id="metrics-port-0"),
])
def test_workers_refuse_a_port_they_cannot_share(database_url: str, tmp_path: Path, listen: str,
                                                 message: str) -> None:
    """Port 0 would give each worker its own port; a port another process listens on would be shared
    with it through SO_REUSEPORT (if it is ours) or fail in every worker: both are refused up front."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        env = _env(database_url, tmp_path)
        if listen == "busy":
            listen = f"127.0.0.1:{other.getsockname()[1]}"
        if listen == "metrics-port-0":  # each worker's metrics on a random port: no scrape config finds them
            listen, env["FOOTHILLS_METRICS_LISTEN"] = f"127.0.0.1:{free_port()}", "127.0.0.1:0"
        result = subprocess.run(
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", listen, "--workers", "2"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_configuration_error_in_the_workers_stops_the_supervisor(database_url: str, tmp_path: Path) -> None:
    """Workers that cannot start for a configuration error are not restarted in a loop: exit 2."""
    env = {k: v for k, v in _env(database_url, tmp_path).items() if k != "FOOTHILLS_JWT_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{free_port()}", "--workers", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "FOOTHILLS_JWT_SECRET must be set" in result.stderr
    assert "exited with a configuration error: stopping every worker" in result.stderr
    assert "restarting in" not in result.stderr


_CRASHING = """
import logging, sys
from foothills_rpc.supervisor import Supervisor
logging.basicConfig(level=logging.INFO, format="%(created).3f %(message)s")
worker = ["/bin/sh", "-c", "exit 3"]
sys.exit(Supervisor(worker, 1, grace_seconds=1.0).run())
"""


def test_a_crashing_worker_is_restarted_with_a_growing_delay(tmp_path: Path) -> None:
    """A worker that dies at once is restarted after 0.5 s, 1 s, 2 s, 4 s...: a crash loop does not
    spin. (The supervisor runs in a process of its own: it takes over that process's signal handlers.)"""
    log = tmp_path / "supervisor.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-c", _CRASHING], cwd=tmp_path, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while "restarting in 4.0s" not in log.read_text():  # the fourth death: nothing runs for 4 s now
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT)
    text = log.read_text()
    delays = [float(d) for d in re.findall(r"exited with 3 after [\d.]+s: restarting in ([\d.]+)s", text)]
    starts = [float(t) for t in re.findall(r"^([\d.]+) worker pid=\d+ started", text, re.MULTILINE)]
    assert delays == [0.5, 1.0, 2.0, 4.0], text
    assert len(starts) == 4, text
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= delay for gap, delay in zip(gaps, delays[:3], strict=True)), (gaps, text)
    assert process.returncode == 0, text


_ORPHAN = """
import os, signal, sys, time
from foothills_rpc.supervisor import become_worker
signal.signal(signal.SIGTERM, lambda *_: (print("drained", flush=True), sys.exit(0)))
become_worker(int(sys.argv[1]))
print("ready", flush=True)
time.sleep(30)
"""


def test_a_worker_whose_supervisor_is_gone_stops(tmp_path: Path) -> None:
    """A worker must not keep serving the port alone when its supervisor dies (say, SIGKILL)."""
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    output = tmp_path / "orphan.out"
    # The shell is the stand-in supervisor: it starts the worker, waits until it is serving (however
    # long a busy machine takes to import), then exits, orphaning it.
    shell = (f'"{sys.executable}" "{script}" $$ > "{output}" 2>&1 &\n'
             f'until grep -q ready "{output}"; do sleep 0.1; done')
    subprocess.run(["/bin/sh", "-c", shell], cwd=tmp_path, timeout=60, check=True)
    orphaned = time.monotonic()
    deadline = orphaned + 60
    while "drained" not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = output.read_text()
    assert "ready" in text and "drained" in text, text
    assert "supervisor pid=" in text and "is gone: stopping" in text, text
    assert time.monotonic() - orphaned < 20


class _Recorder:
    """A mail transport that keeps the Message-ID of every mail it is given."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    async def send(self, messages: Sequence[Message]) -> list[Exception | None]:
        await asyncio.sleep(0)  # let the other dispatchers run between claims and sends
        self.sent += [str(message["Message-ID"]) for message in messages]
        return [None] * len(messages)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_outbox_dispatchers_of_several_processes_send_each_mail_once(database_url: str) -> None:
    """Every server process runs an outbox dispatcher; on one PostgreSQL their claims (FOR UPDATE SKIP
    LOCKED, then a conditional update that leases the row) hand each due mail to exactly one of them."""
    clock = ManualClock(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    databases = [Database(database_url, pool_size=4) for _ in range(3)]  # a pool each, as in 3 processes
    sent: list[str] = []
    try:
        async def enqueue_all(session: AsyncSession) -> None:
            await outbox.enqueue(session, [outbox.Mail(recipient=f"r{i}@example.com", subject="s", body="b")
                                           for i in range(90)], clock.now())

        await databases[0].run(enqueue_all)
        dispatchers = [outbox.Dispatcher(db, _Recorder(sent), clock, sender="foothills@example.com")
                       for db in databases]

        async def drain(dispatcher: outbox.Dispatcher) -> int:
            claimed = 0
            while count := await dispatcher.deliver_due():
                claimed += count
            return claimed

        claimed = await asyncio.gather(*(drain(d) for d in dispatchers for _ in range(2)))
    finally:
        for db in databases:
            await db.dispose()
    assert sum(claimed) == 90
    assert len(sent) == 90 and len(set(sent)) == 90
    assert sum(1 for count in claimed if count) >= 2, claimed  # the work was really shared
