#!/usr/bin/env python3
"""Benchmark: AdminService.GetBookingStats for every grouping over a year, on a database with many bookings.

    uv run python scripts/bench_stats.py [--database-url URL] [--bookings 100000] [--calls 30] [--export]

Rerunnable. On the first run it migrates the database and fills it with
`foothills-rpc seed-demo --bookings N` (later runs reuse it; it tops up when it holds fewer bookings); then
it starts `foothills-rpc serve` on a free port, signs in a new admin, and times, through a real channel:

- the health check (the ceiling of this machine and this run: the guide asks for ratios to it),
- GetBookingStats for each grouping over the 366 days ending with the last booked day (`--calls` timed
  calls each after `--warmup` untimed ones): median and p95 in milliseconds, and the median's ratio to the
  health check's,
- with `--export`, one ExportBookings of the same range (rows per second).

The target (issue 6) is well under 200 ms per GetBookingStats call with 100,000 bookings. Default database:
an SQLite file under var/ (git-ignored); pass a PostgreSQL URL to measure there (create the database first;
FOOTHILLS_JWT_SECRET is generated for the run when unset).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, func, select

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc, reports_pb2
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.db.database import sync_url
from foothills_rpc.db.models import Booking

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"sqlite:///{ROOT / 'var' / 'bench' / 'stats.db'}"
GROUPINGS = [value for value in reports_pb2.StatsGrouping.values() if value != reports_pb2.STATS_GROUPING_UNSPECIFIED]


def cli(env: dict[str, str], *args: str) -> str:
    """Runs `foothills-rpc ARGS` (this environment's), failing loudly; returns its standard output."""
    command = [sys.executable, "-m", "foothills_rpc.cli", *args]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603 (our own CLI)
    if done.returncode != 0:
        sys.exit(f"`foothills-rpc {' '.join(args)}` failed:\n{done.stderr}")
    return done.stdout


def booking_span(url: str) -> tuple[int, datetime | None]:
    """How many bookings the database holds, and the latest start."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            count, latest = connection.execute(select(func.count(), func.max(Booking.start_at))).one()
    finally:
        engine.dispose()
    if isinstance(latest, str):  # SQLite hands back its text for an aggregate
        latest = datetime.fromisoformat(latest)
    return int(count), None if latest is None else latest.replace(tzinfo=UTC) if latest.tzinfo is None else latest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    """`foothills-rpc serve` on a free port until the block ends; yields its address once it is SERVING."""
    target = f"127.0.0.1:{free_port()}"
    # Its log goes to a file, not a pipe: a pipe nobody reads fills up and stalls the server.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(  # noqa: S603 (our own CLI)
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", target], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            with grpc.insecure_channel(target) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                            break
                    except grpc.RpcError:
                        pass
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        sys.exit(f"the server did not start:\n{log.read()}")
                    time.sleep(0.2)
            wait_until_idle(process.pid)
            yield target
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_until_idle(pid: int, *, limit: float = 300.0) -> None:
    """Waits for the server's start-up work (it extends every service's slots to the horizon: with 1,000
    services that takes a while) to finish: until it uses under 5 % of a core for two seconds running."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():  # not Linux: a fixed pause instead
        time.sleep(10)
        return
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    deadline, quiet, last = time.monotonic() + limit, 0, cpu_seconds()
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(1)
        now = cpu_seconds()
        quiet = quiet + 1 if now - last < 0.05 else 0
        last = now


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def timed(call: Callable[[], object], *, calls: int, warmup: int) -> list[float]:
    """Milliseconds per call, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def load() -> str:
    """The 1-minute load average and the core count: context for the absolute figures."""
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("FOOTHILLS_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--bookings", type=int, default=100_000, help="bookings the database should hold")
    parser.add_argument("--services", type=int, default=40, help="services when seeding (seed-demo's default)")
    parser.add_argument("--users", type=int, default=50, help="customers when seeding (seed-demo's default)")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per grouping")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per grouping first")
    parser.add_argument("--export", action="store_true", help="also time one ExportBookings of the year")
    args = parser.parse_args()

    env = {**os.environ, "FOOTHILLS_DATABASE_URL": args.database_url, "FOOTHILLS_LOG_LEVEL": "WARNING"}
    env.setdefault("FOOTHILLS_JWT_SECRET", secrets.token_urlsafe(48))
    if args.database_url.startswith("sqlite:///"):
        Path(args.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    cli(env, "migrate")
    count, latest = booking_span(args.database_url)
    if count < args.bookings:
        print(f"seeding {args.bookings - count} bookings (the database holds {count}) ...", flush=True)
        started = time.perf_counter()
        cli(env, "seed-demo", "--bookings", str(args.bookings - count), "--services", str(args.services),
            "--users", str(args.users))
        print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
        count, latest = booking_span(args.database_url)
    if latest is None:
        sys.exit("no bookings to report on")
    end = datetime(latest.year, latest.month, latest.day, tzinfo=UTC) + timedelta(days=1)
    start = end - timedelta(days=366)

    email, password = f"bench-{secrets.token_hex(6)}@bench.foothills.invalid", secrets.token_urlsafe(18)
    cli({**env, "FOOTHILLS_ADMIN_PASSWORD": password}, "create-admin", email, "--display-name", "Benchmark")
    with server(env) as target, grpc.insecure_channel(target) as channel:
        login = auth_pb2_grpc.AuthServiceStub(channel).Login(auth_pb2.LoginRequest(email=email, password=password))
        metadata = (("authorization", f"Bearer {login.credentials.access_token}"),)
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        ceiling = statistics.median(timed(lambda: health.Check(health_pb2.HealthCheckRequest()),
                                          calls=200, warmup=20))
        database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        print(f"\n{database}: {count} bookings; range {start:%Y-%m-%d} to {end:%Y-%m-%d} (366 days)")
        print(f"health check median {ceiling:.2f} ms (the ceiling); load average {load()}\n")
        print(f"{'grouping':<10} {'groups':>6} {'bookings':>9} {'median ms':>10} {'p95 ms':>8} {'x health':>9}")
        for grouping in GROUPINGS:
            request = admin_pb2.GetBookingStatsRequest(start_time=timestamp(start), end_time=timestamp(end),
                                                       group_by=grouping)  # type: ignore[arg-type]
            answer = admin.GetBookingStats(request, metadata=metadata)
            samples = timed(lambda request=request: admin.GetBookingStats(request, metadata=metadata),  # type: ignore[misc]
                            calls=args.calls, warmup=args.warmup)
            name = reports_pb2.StatsGrouping.Name(grouping).removeprefix("STATS_GROUPING_").lower()
            median = statistics.median(samples)
            print(f"{name:<10} {len(answer.groups):>6} {answer.total.bookings:>9} {median:>10.1f} "
                  f"{p95(samples):>8.1f} {median / ceiling:>9.0f}", flush=True)
        if args.export:
            started = time.perf_counter()
            rows = sum(len(message.rows) for message in admin.ExportBookings(admin_pb2.ExportBookingsRequest(
                start_time=timestamp(start), end_time=timestamp(end)), metadata=metadata))
            elapsed = time.perf_counter() - started
            print(f"\nexport: {rows} rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s)")
        print(f"\nload average {load()} (this machine's other work skews absolute figures: compare ratios)")


if __name__ == "__main__":
    main()
