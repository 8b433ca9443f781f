"""scripts/loadtest.py, run briefly as a person runs it, against a real server on a small seeded SQLite.

These prove the tool works and that its report is consistent (counts add up, ratios match, every
scenario runs without errors); they assert nothing about speed: benchmarks live in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from foothills_rpc.seed import seed_demo
from foothills_rpc.server import FoothillsServer, build_components
from tests.support import make_settings

SCRIPT = Path(__file__).parents[1] / "scripts" / "loadtest.py"
READS = ("health", "get-service", "search", "list-slots", "list-bookings", "login")
BOOKING_REFUSALS = {"PROVIDER_UNAVAILABLE", "SLOT_UNAVAILABLE", "OVERLAPPING_BOOKING"}
RUN_TIMEOUT = 120.0


@pytest.fixture
async def target(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[str]:
    """A server on a small demo world (with bookings), serving on a free port."""
    path = tmp_path / "loadtest.db"
    shutil.copy(sqlite_template, path)
    server = FoothillsServer(build_components(make_settings(f"sqlite:///{path}", outbox_dir=tmp_path / "outbox")))
    await seed_demo(server.components, services=10, users=24, bookings=60)
    port = await server.start("127.0.0.1:0")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def _loadtest(*args: str) -> str:
    """Runs the tool as a subprocess (without blocking the server's event loop); returns its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=SCRIPT.parents[1])
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    assert process.returncode == 0, err.decode()
    return out.decode()


def _check_consistent(run: dict[str, Any], health: dict[str, Any]) -> None:
    """The figures of one run agree with each other and with the health baseline."""
    assert run["count"] > 0, run
    assert run["count"] == sum(run["statuses"].values()) == sum(m["count"] for m in run["methods"].values())
    assert run["ok"] == run["statuses"].get("OK", 0)
    assert run["errors"] == run["count"] - run["ok"]
    for method in run["methods"].values():
        assert method["count"] == sum(method["statuses"].values())
    assert run["rps"] == pytest.approx(run["count"] / run["duration_s"], rel=0.01)
    latency = run["latency_ms"]
    assert 0 < latency["fastest"] <= latency["p50"] <= latency["p90"] <= latency["p95"] <= latency["p99"]
    assert latency["p99"] <= latency["slowest"]
    assert latency["fastest"] <= latency["average"] <= latency["slowest"]
    ratios = run["ratio_to_health"]
    assert ratios["rps"] == pytest.approx(run["rps"] / health["rps"], abs=0.001)
    assert ratios["p50"] == pytest.approx(latency["p50"] / health["latency_ms"]["p50"], abs=0.01)


async def test_every_scenario_runs_closed_loop_with_ratios_to_health(target: str) -> None:
    """One run of every scenario: the health baseline first, the rest as ratios to it; no errors."""
    report = json.loads(await _loadtest(
        "--target", target, "--scenario",
        "health,get-service,search,list-slots,list-bookings,book-cancel,hot-service,login,journey",
        "-c", "3", "-z", "1s", "--warmup", "200ms", "--json"))
    health = report["health"]
    assert health["scenario"] == "health" and health["mode"] == "closed" and health["concurrency"] == 3
    assert health["ratio_to_health"]["rps"] == 1.0
    runs = {run["scenario"]: run for run in report["runs"]}
    assert list(runs) == ["get-service", "search", "list-slots", "list-bookings", "book-cancel", "hot-service",
                          "login", "journey"]
    for run in [health, *runs.values()]:
        _check_consistent(run, health)
    for name in READS:
        run = health if name == "health" else runs[name]
        assert run["statuses"] == {"OK": run["count"]}, (name, run["statuses"], run["reasons"])

    expected_methods = {"get-service": {"GetService"}, "search": {"ListServices"}, "list-slots": {"ListSlots"},
                        "list-bookings": {"ListBookings"},
                        "login": {"Login"}, "book-cancel": {"CreateBooking", "CancelBooking"},
                        "hot-service": {"CreateBooking", "CancelBooking"},
                        "journey": {"ListServices", "GetService", "ListSlots", "CreateBooking", "ListBookings"}}
    for name, methods in expected_methods.items():
        assert methods <= set(runs[name]["methods"]), (name, runs[name]["methods"])
    # Booking can be refused only for a business reason (a seeded booking keeps the provider busy).
    for name in ("book-cancel", "hot-service", "journey"):
        run = runs[name]
        assert set(run["statuses"]) <= {"OK", "FailedPrecondition"}, run["statuses"]
        assert set(run["reasons"]) <= BOOKING_REFUSALS, run["reasons"]
        assert run["methods"]["CreateBooking"]["statuses"].get("OK", 0) > 0
    book_cancel = runs["book-cancel"]["methods"]
    assert book_cancel["CancelBooking"]["statuses"] == {"OK": book_cancel["CancelBooking"]["count"]}
    # Each cancel follows its worker's booking (one begun in the warm-up may be cancelled in the window).
    assert book_cancel["CancelBooking"]["count"] <= book_cancel["CreateBooking"]["statuses"]["OK"] + 3


async def test_virtual_user_sweep_in_two_processes_draws_the_chart(target: str, tmp_path: Path) -> None:
    """Virtual users with think time, split over two generator processes, one run per level, and the PNG."""
    chart = tmp_path / "latency.png"
    report = json.loads(await _loadtest(
        "--target", target, "--scenario", "journey", "--users", "2,4", "--think", "20ms", "-c", "2",
        "-z", "1s", "--warmup", "200ms", "--processes", "2", "--chart", str(chart), "--json"))
    assert [(run["scenario"], run["mode"], run["users"], run["processes"]) for run in report["runs"]] == [
        ("journey", "users", 2, 2), ("journey", "users", 4, 2)]
    for run in report["runs"]:
        _check_consistent(run, report["health"])
        assert run["think_s"] == pytest.approx(0.02)
        assert set(run["reasons"]) <= BOOKING_REFUSALS
        assert run["statuses"].get("OK", 0) >= run["count"] // 2
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_open_loop_stops_at_the_total_and_prints_like_ghz(target: str) -> None:
    """A fixed rate with a call budget: exactly that many calls are measured; the text layout is ghz's."""
    text = await _loadtest("--target", target, "--scenario", "get-service", "--rate", "40", "-c", "4",
                           "-n", "20", "--warmup", "100ms")
    for heading in ("Scenario: health", "Scenario: get-service", "open loop at 40 calls/s", "Summary:",
                    "  Count:        20", "Requests/sec:", "Latency distribution (OK calls):", "  99 % in ",
                    "Status code distribution:", "  [OK]   20 responses", "CPU in the measured window:",
                    "  generator ", "Ratios to health (same run):"):
        assert heading in text, f"{heading!r} not in:\n{text}"


async def test_cpu_of_the_processes_named_is_reported_per_call_and_in_cores(target: str) -> None:
    """--cpu NAME=REGEX: the server (this test's own process, found by its command line) and the
    generator spend CPU in each measured window, a pattern that matches nothing reports none, and the
    per-call and per-core figures agree with the seconds spent."""
    command = " ".join(sys.orig_argv)  # as /proc/<pid>/cmdline reads, its NULs as spaces
    report = json.loads(await _loadtest(
        "--target", target, "--scenario", "get-service", "-c", "3", "-z", "1s", "--warmup", "200ms",
        "--cpu", f"server=^{re.escape(command)}", "--cpu", "nobody=^no such process$", "--json"))
    for run in [report["health"], *report["runs"]]:
        cpu = run["cpu"]
        assert list(cpu) == ["generator", "server", "nobody"], cpu
        assert cpu["generator"]["processes"] == 1 and cpu["generator"]["seconds"] > 0
        assert cpu["server"]["processes"] >= 1 and cpu["server"]["seconds"] > 0
        assert cpu["nobody"] == {"processes": 0, "seconds": 0, "cores": 0, "ms_per_call": 0}
        # Each figure is rounded to 3 decimals from unrounded times, so the seconds and the window shown
        # may each be off by half a millisecond: that much, spread over the calls or the window, plus the
        # figure's own rounding (a group uses at most the machine's 2 cores, scaling the window's error).
        per_call_slack = 0.5 / run["count"] + 0.0005
        per_core_slack = (0.0005 + 2 * 0.0005) / run["duration_s"] + 0.0005
        for group in cpu.values():
            assert group["ms_per_call"] == pytest.approx(
                group["seconds"] * 1000 / run["count"], abs=per_call_slack + 1e-9)
            assert group["cores"] == pytest.approx(group["seconds"] / run["duration_s"], abs=per_core_slack + 1e-6)


@pytest.mark.parametrize("spec", ["generator=python", "server=(", "=postgres", "server="])
async def test_a_bad_cpu_group_is_refused_before_any_call(spec: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--target", "127.0.0.1:1", "--cpu", spec, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=SCRIPT.parents[1])
    _, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    assert process.returncode == 2 and f"--cpu {spec}" in err.decode(), err.decode()
