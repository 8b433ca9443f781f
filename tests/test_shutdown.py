"""Graceful shutdown of a real `foothills-rpc serve` process: SIGTERM lets in-flight calls finish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.reasons import recorders
from tests.support import free_port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def _serving(env: dict[str, str],
                   folder: Path) -> AsyncIterator[tuple[subprocess.Popen[bytes], grpc.aio.Channel]]:
    """`foothills-rpc serve` on a free port (its output in folder/server.log) and a ready channel to it;
    the process is killed and waited for if the test left it running."""
    port = free_port()
    with (folder / "server.log").open("w") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 (starting it is instant; we never block on it)
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=recorders()) as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            yield process, channel
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_sigterm_drains_an_in_flight_login(tmp_path: Path) -> None:
    env = {**os.environ, "FOOTHILLS_DATABASE_URL": f"sqlite:///{tmp_path}/drain.db",
           # A deliberately slow hash (~1 s) keeps the Login in flight while SIGTERM arrives.
           "FOOTHILLS_ARGON2_MEMORY_KIB": str(256 * 1024), "FOOTHILLS_ARGON2_TIME_COST": "4",
           "FOOTHILLS_SHUTDOWN_GRACE_SECONDS": "30", "FOOTHILLS_OUTBOX_DIR": str(tmp_path / "outbox")}
    async with _serving(env, tmp_path) as (process, channel):
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        await auth.Register(auth_pb2.RegisterRequest(email="slow@example.com", password="a slow passphrase",
                                                     display_name="Slow"), timeout=60)
        before = _cpu_seconds(process.pid)
        login = asyncio.ensure_future(auth.Login(auth_pb2.LoginRequest(
            email="slow@example.com", password="a slow passphrase"), timeout=60))
        async with asyncio.timeout(30):  # wait until the server is hashing, i.e. the call is in flight
            while _cpu_seconds(process.pid) - before < 0.2:
                await asyncio.sleep(0.01)
        assert not login.done()
        process.send_signal(signal.SIGTERM)
        response = await login
        assert response.credentials.access_token
        assert await asyncio.to_thread(process.wait, 30) == 0
    text = (tmp_path / "server.log").read_text()
    assert "shutting down" in text and "stopped" in text
    assert "a slow passphrase" not in text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_serving_postgresql_without_a_jwt_secret_is_refused(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FOOTHILLS_JWT_SECRET"}
    env["FOOTHILLS_DATABASE_URL"] = database_url
    serve = [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{free_port()}"]
    result = subprocess.run(serve, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "FOOTHILLS_JWT_SECRET must be set" in result.stderr


async def test_sigterm_with_nothing_in_flight_stops_at_once(database_url: str, tmp_path: Path) -> None:
    """An idle server (a client connected, no call running) does not sit out its grace period, nor wait
    for its change listener's next poll: it exits well inside the 30 s it would allow a call."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")},
           "FOOTHILLS_DATABASE_URL": database_url, "FOOTHILLS_JWT_SECRET": "s" * 40,
           "FOOTHILLS_SHUTDOWN_GRACE_SECONDS": "30", "FOOTHILLS_OUTBOX_DIR": str(tmp_path / "outbox")}
    if database_url.startswith("postgresql"):
        migrate = [sys.executable, "-m", "foothills_rpc.cli", "migrate"]
        await asyncio.to_thread(subprocess.run, migrate, env=env, cwd=tmp_path, check=True, capture_output=True)
    async with _serving(env, tmp_path) as (process, channel):
        await auth_pb2_grpc.AuthServiceStub(channel).Register(auth_pb2.RegisterRequest(
            email="idle@example.com", password="an idle passphrase", display_name="Idle"), timeout=30)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
        took = time.monotonic() - started
    assert took < 5, f"an idle server took {took:.1f} s to stop"  # 0.3-0.5 s here; 1 s of listener poll before
    assert "stopped" in (tmp_path / "server.log").read_text()
