"""Instructions per hot call, counted by callgrind: deterministic, where seconds on this machine are not.

    scripts/bench_instructions.py [--check] [--calls booking-pair,booking-mail,get-service,health,list-slots,search]
    (as root: it sets up its own PostgreSQL database; about 4 minutes per run, two runs per call)

For each hot call, valgrind's callgrind runs this file (`--run CALL N`) twice: a server in process,
on PostgreSQL, with a client in the same process making N calls after a warm-up. The count for 70
calls minus the count for 20, divided by 50, is one call without start-up. Client and server are both
counted (they share the process); PostgreSQL is not (another process). Mail is sent only by
booking-mail: a booking pair, then one pass of the mail dispatcher, which composes, renders and
writes its two events' notices as `send-mail` does (to .eml files; the kernel's part is not counted):
booking-mail minus booking-pair is the mail's cost. No timed background work runs. What gRPC's own
threads do by the clock is still counted, so a run on a busy host reads higher: compare commits run
side by side.

Prints one line per call with its budget; `--check` exits 1 if any call costs more than its budget
(BUDGETS, kept in docs/benchmarks.md parts ten to twenty-three) plus TOLERANCE.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import uvloop
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from foothills_rpc.config import Settings
from foothills_rpc.db.models import User
from foothills_rpc.seed import DEMO_PASSWORD
from foothills_rpc.server import FoothillsServer, build_components

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "foothills_bench_budget"
DATABASE_URL = f"postgresql://foothills:foothills@127.0.0.1:5432/{DATABASE}"
ENV = {**os.environ, "FOOTHILLS_DATABASE_URL": DATABASE_URL, "FOOTHILLS_JWT_SECRET": "budget-secret-" * 3,
       "FOOTHILLS_SEND_MAIL": "false", "FOOTHILLS_LOG_LEVEL": "WARNING", "PYTHONHASHSEED": "0"}
SMALL, LARGE = 20, 70
# Millions of instructions per call, client and server together (docs/benchmarks.md, parts ten to twenty-three).
BUDGETS = {"booking-pair": 7.0, "booking-mail": 42.0, "get-service": 0.9, "health": 1.22, "list-slots": 2.2,
           "search": 3.2}
TOLERANCE = 0.03  # callgrind is exact; this absorbs allocator and hash-seed drift between runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a call costs more than its budget")
    parser.add_argument("--calls", default="booking-pair", help="comma-separated, of: " + ", ".join(BUDGETS))
    parser.add_argument("--run", nargs=2, metavar=("CALL", "N"), help=argparse.SUPPRESS)  # under callgrind
    args = parser.parse_args()
    if args.run:
        uvloop.run(_calls(args.run[0], int(args.run[1])))  # the loop `foothills-rpc serve` runs on
        return
    _prepare_database()
    over = []
    for call in args.calls.split(","):
        budget = BUDGETS[call]
        cost = (_instructions(call, LARGE) - _instructions(call, SMALL)) / (LARGE - SMALL) / 1e6
        verdict = "within" if cost <= budget * (1 + TOLERANCE) else "OVER"
        print(f"{call:<14}{cost:8.2f} M instructions per call   budget {budget:6.2f} M   {verdict}", flush=True)
        if verdict == "OVER":
            over.append(call)
    if args.check and over:
        sys.exit(f"bench_instructions: over budget: {', '.join(over)}")


def _prepare_database() -> None:
    """A fresh database with a small demo catalog: every run counts the same work."""
    subprocess.run(["bash", "scripts/setup-postgresql"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    psql = ["runuser", "-u", "postgres", "--", "psql", "-qAt", "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"], check=True)
    subprocess.run([*psql, f"CREATE DATABASE {DATABASE} OWNER foothills"], check=True)
    env = ENV
    cli = [sys.executable, "-m", "foothills_rpc.cli"]
    subprocess.run([*cli, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*cli, "seed-demo", "--services", "20", "--users", "10", "--bookings", "0"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)


def _instructions(call: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/callgrind.out", sys.executable,
             __file__, "--run", call, str(count)], cwd=ROOT, capture_output=True, text=True, check=False,
            env={**ENV, "FOOTHILLS_OUTBOX_DIR": f"{scratch}/outbox"})
    collected = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or collected is None:
        sys.exit(f"bench_instructions: the {call} run failed:\n{result.stderr[-3000:]}")
    return int(collected.group(1))


async def _calls(call: str, count: int) -> None:
    # No timed background work (the health probe, the sweeps): under callgrind a run lasts minutes, and
    # what runs per second of it, not per call, would be counted into every call, by the host's speed.
    settings = dataclasses.replace(Settings.from_env(), health_probe_seconds=3600.0, sweep_seconds=3600.0)
    server = FoothillsServer(build_components(settings))
    port = await server.start("127.0.0.1:0")
    try:
        # The catalog cache is on once the LISTEN connection is up; when that happens under callgrind
        # varies from run to run, so every run starts with it on.
        async with asyncio.timeout(60):
            while not server.components.listener.listening:  # noqa: ASYNC110 (a flag, no event to await)
                await asyncio.sleep(0.05)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
            booking = booking_pb2_grpc.BookingServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            email = await server.components.db.read(_first_customer)
            login = await auth_pb2_grpc.AuthServiceStub(channel).Login(
                auth_pb2.LoginRequest(email=email, password=DEMO_PASSWORD))
            signed_in = (("authorization", f"Bearer {login.credentials.access_token}"),)
            service = (await catalog.ListServices(catalog_pb2.ListServicesRequest(page_size=1))).services[0]
            # A slot six to seven days out: past any minimum notice, inside any free-cancellation window.
            week = Timestamp(seconds=int(time.time()) + 6 * 86400), Timestamp(seconds=int(time.time()) + 7 * 86400)
            slots = await catalog.ListSlots(catalog_pb2.ListSlotsRequest(
                service=service.name, start_time=week[0], end_time=week[1]), metadata=signed_in)
            start = next(s.start_time for s in slots.slots if s.remaining_seats > 0)

            async def booking_pair() -> None:
                made = await booking.CreateBooking(booking_pb2.CreateBookingRequest(
                    service=service.name, start_time=start, seats=1, request_id=uuid.uuid4().hex), metadata=signed_in)
                await booking.CancelBooking(booking_pb2.CancelBookingRequest(name=made.booking.name, reason="budget"),
                                            metadata=signed_in)

            async def booking_mail() -> None:  # the pair, then one pass of send-mail's for its two events
                await booking_pair()
                if not await server.components.dispatcher.deliver_due():
                    raise SystemExit("bench_instructions: a booking pair's notices were not sent")

            async def get_service() -> None:
                await catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))

            async def check_health() -> None:
                await health.Check(health_pb2.HealthCheckRequest())

            async def list_slots() -> None:  # a week, as the journey's ListSlots
                await catalog.ListSlots(catalog_pb2.ListSlotsRequest(
                    service=service.name, start_time=week[0], end_time=week[1]), metadata=signed_in)

            price = service.base_price.amount_minor

            async def search() -> None:  # every filter the journey's search sets
                await catalog.ListServices(catalog_pb2.ListServicesRequest(
                    page_size=20, query=service.display_name.split()[0].lower(), category=service.category,
                    min_price_minor=max(0, price - 2500), max_price_minor=price + 2500,
                    currency_code=service.base_price.currency_code))

            one = {"booking-pair": booking_pair, "booking-mail": booking_mail, "get-service": get_service,
                   "health": check_health, "list-slots": list_slots, "search": search}[call]
            for _ in range(5 + count):  # five to warm every cache and pool
                await one()
    finally:
        await server.stop(0)


async def _first_customer(session: AsyncSession) -> str:
    query = select(User.email).where(User.role == "customer").order_by(User.email).limit(1)
    return str((await session.execute(query)).scalar_one())


if __name__ == "__main__":
    main()
