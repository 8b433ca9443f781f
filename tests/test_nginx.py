"""deploy/nginx.conf, for real: nginx (Debian's package) in front of two `foothills-rpc serve` processes.

The template is rendered the way docs/scaling.md says (its two placeholders filled in, nothing else),
into a temporary prefix directory for the pid file, logs and temporary files, and nginx runs in the
foreground on free ports. Without nginx the test is skipped with a loud reason, except under
CI=true, where it fails: the scripts install it (`apt-get install nginx-light`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.support import free_port, reason, stop_process

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf"
SECRET = "nginx-test-jwt-secret-4e6a8c0b2d4f6a8c0e2b4d"
PASSWORD = "nginx passphrase 3a9e"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0
ACCESS_LINE = re.compile(r'"POST /\S+/(\w+) HTTP/2\.0" 200 grpc_status=(\S+) upstream="([^"]+)" request_id=(\S+) ')


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None)
    if found:
        return found
    message = "nginx is not installed (Debian: apt-get install -y nginx-light)"
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true requires nginx. " + message)
    pytest.skip("!!! SKIPPING THE NGINX TEST !!! " + message)


def render(template: str, *, listen: str, upstreams: list[str]) -> str:
    """What `envsubst '$FOOTHILLS_NGINX_LISTEN $FOOTHILLS_NGINX_UPSTREAMS'` makes of the template."""
    text = template.replace("${FOOTHILLS_NGINX_LISTEN}", listen).replace(
        "${FOOTHILLS_NGINX_UPSTREAMS}", " ".join(f"server {address};" for address in upstreams))
    assert "${FOOTHILLS_NGINX" not in text, "a placeholder was left unfilled"
    return text



@dataclass
class Proxied:
    """nginx on `port`, in front of the server processes in `servers` (by port)."""

    nginx: subprocess.Popen[bytes]
    port: int
    prefix: Path
    servers: dict[int, subprocess.Popen[bytes]]
    logs: Path

    def access_log(self) -> dict[str, tuple[str, str, str]]:
        """request id -> (method, grpc status, upstream addresses tried) of each logged call."""
        path = self.prefix / "access.log"
        lines = ACCESS_LINE.findall(path.read_text()) if path.exists() else []
        return {rid: (method, status, upstream) for method, status, upstream, rid in lines}

    def diagnostics(self) -> str:
        parts = [f"--- {path.name}\n{path.read_text(errors='replace')}"
                 for path in sorted([*self.logs.glob("*.log"), self.prefix / "error.log"]) if path.exists()]
        return "\n".join(parts)


@pytest.fixture
def proxied(database_url: str, tmp_path: Path) -> Iterator[Proxied]:
    nginx = _nginx()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")}
    env.update(FOOTHILLS_DATABASE_URL=database_url, FOOTHILLS_JWT_SECRET=SECRET, FOOTHILLS_ARGON2_MEMORY_KIB="64",
               FOOTHILLS_ARGON2_TIME_COST="1", FOOTHILLS_OUTBOX_DIR=str(tmp_path / "outbox"),
               FOOTHILLS_SHUTDOWN_GRACE_SECONDS="5", FOOTHILLS_DB_POOL_SIZE="4")
    logs = tmp_path / "logs"
    logs.mkdir()
    servers: dict[int, subprocess.Popen[bytes]] = {}
    proxy: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(2):
            port = free_port()
            with (logs / f"server-{port}.log").open("wb") as log:
                servers[port] = subprocess.Popen(
                    [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}"],
                    cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        listen = free_port()
        config = prefix / "nginx.conf"
        config.write_text(render(TEMPLATE.read_text(), listen=f"127.0.0.1:{listen}",
                                 upstreams=[f"127.0.0.1:{port}" for port in servers]))
        with (logs / "nginx.log").open("wb") as log:
            proxy = subprocess.Popen([nginx, "-p", f"{prefix}/", "-c", str(config), "-g", "daemon off;"],
                                     cwd=prefix, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        yield Proxied(nginx=proxy, port=listen, prefix=prefix, servers=servers, logs=logs)
    finally:
        if proxy is not None:
            stop_process(proxy, signal.SIGQUIT, timeout=STOP_TIMEOUT)
        for server in servers.values():
            stop_process(server, timeout=STOP_TIMEOUT)


async def _wait_until_serving(target: str, proxied: Proxied) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer yet"
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            for name, process in (("nginx", proxied.nginx), *((f"server {port}", server)
                                                               for port, server in proxied.servers.items())):
                if process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode}:\n{proxied.diagnostics()}")
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            except grpc.aio.AioRpcError as error:
                last = f"{error.code().name}: {error.details()}"
            await asyncio.sleep(0.1)  # between polls only; readiness is the health answer
    pytest.fail(f"{target} not SERVING within {START_TIMEOUT}s ({last}):\n{proxied.diagnostics()}")


async def _logged(proxied: Proxied, request_ids: list[str]) -> list[tuple[str, str, str]]:
    """The access log lines of these calls, in order, once all are written (nginx flushes every second)."""
    deadline = time.monotonic() + 60
    while not set(request_ids) <= (lines := proxied.access_log()).keys():
        if time.monotonic() > deadline:
            pytest.fail(f"calls missing from the access log: {sorted(set(request_ids) - lines.keys())}:\n"
                        f"{proxied.diagnostics()}")
        await asyncio.sleep(0.2)
    return [lines[rid] for rid in request_ids]


def _id(request_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-request-id", request_id),)


def _accepted_sockets(ports: set[int]) -> set[int]:
    """The inodes of the established TCP connections accepted on these local ports, from the kernel."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) in ports and fields[3] == "01":  # 01: ESTABLISHED
                sockets.add(int(fields[9]))
    return sockets


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_nginx_keeps_its_connections_to_the_servers(proxied: Proxied) -> None:
    """Bursts of calls with pauses between them reuse nginx's kept-alive connections to the servers.
    A server that sends anything on an idle connection (grpc's bandwidth probes did, after a call) makes
    nginx close it, and the next burst opens new ones: dozens here, where at most one per call in
    flight per server is needed."""
    for port in proxied.servers:
        await _wait_until_serving(f"127.0.0.1:{port}", proxied)
    target = f"127.0.0.1:{proxied.port}"
    await _wait_until_serving(target, proxied)
    in_flight, bursts = 8, 30
    seen: set[int] = set()
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(bursts):
            answers = await asyncio.gather(*(health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
                                             for _ in range(in_flight)))
            assert {answer.status for answer in answers} == {health_pb2.HealthCheckResponse.SERVING}
            seen |= _accepted_sockets(set(proxied.servers))
            await asyncio.sleep(0.1)
    # One client connection reaches one nginx worker, which needs at most `in_flight` per server.
    assert 0 < len(seen) <= in_flight * len(proxied.servers), f"{len(seen)} connections for {bursts} bursts"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_calls_through_nginx_reach_every_server_and_survive_one_stopping(proxied: Proxied) -> None:
    """Through deploy/nginx.conf: the health check, Register, Login and GetProfile work, rich error
    details and the x-request-id trailer come through, calls on one client connection are spread over
    both servers (nginx balances calls), and with one server stopped every call still succeeds."""
    for port in proxied.servers:
        await _wait_until_serving(f"127.0.0.1:{port}", proxied)
    target = f"127.0.0.1:{proxied.port}"
    await _wait_until_serving(target, proxied)

    async with grpc.aio.insecure_channel(target) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        registered = await auth.Register(auth_pb2.RegisterRequest(
            email="nginx@example.com", password=PASSWORD, display_name="Through Nginx"),
            metadata=_id("register"), timeout=CALL_TIMEOUT)
        logins = [await auth.Login(auth_pb2.LoginRequest(email="nginx@example.com", password=PASSWORD),
                                   metadata=_id(f"login-{i}"), timeout=CALL_TIMEOUT) for i in range(6)]
        assert {login.user.name for login in logins} == {registered.user.name}
        profile = await auth.GetProfile(auth_pb2.GetProfileRequest(), timeout=CALL_TIMEOUT, metadata=(
            *_id("profile"), ("authorization", f"Bearer {logins[-1].credentials.access_token}")))
        assert profile.user.display_name == "Through Nginx"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth.Login(auth_pb2.LoginRequest(email="nginx@example.com", password="not the passphrase"),
                             metadata=_id("wrong-password"), timeout=CALL_TIMEOUT)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert reason(refused.value) == "INVALID_CREDENTIALS"
        assert ("x-request-id", "wrong-password") in tuple(refused.value.trailing_metadata() or ())

    # One client connection, yet the calls were spread over both servers by nginx; each status logged.
    ids = ["register", *(f"login-{i}" for i in range(6)), "profile", "wrong-password"]
    lines = await _logged(proxied, ids)
    assert [(method, status) for method, status, _ in lines] == (
        [("Register", "0")] + [("Login", "0")] * 6 + [("GetProfile", "0"), ("Login", "16")])
    assert {upstream for _, _, upstream in lines} == {f"127.0.0.1:{port}" for port in proxied.servers}

    # One server stops (SIGTERM drains it): nginx sends every call to the other.
    stopped, running = list(proxied.servers)
    assert await asyncio.to_thread(stop_process, proxied.servers[stopped], timeout=STOP_TIMEOUT) == 0
    async with grpc.aio.insecure_channel(target) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        for i in range(6):
            login = await auth.Login(auth_pb2.LoginRequest(email="nginx@example.com", password=PASSWORD),
                                     metadata=_id(f"one-left-{i}"), timeout=CALL_TIMEOUT)
            assert login.user.name == registered.user.name
    after = await _logged(proxied, [f"one-left-{i}" for i in range(6)])
    # nginx may first try the stopped server (refused), then passes the call on: "A, B".
    assert all(upstream.endswith(f"127.0.0.1:{running}") for _, _, upstream in after), after

    code = await asyncio.to_thread(stop_process, proxied.nginx, signal.SIGQUIT, timeout=STOP_TIMEOUT)
    assert code == 0, proxied.diagnostics()
    error_log = (proxied.prefix / "error.log").read_text() if (proxied.prefix / "error.log").exists() else ""
    assert "[emerg]" not in error_log and "[alert]" not in error_log and "[crit]" not in error_log, error_log
