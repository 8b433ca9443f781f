"""scripts/export_bookings.py and scripts/chart_bookings.py as people run them: subprocesses against a real server.

The server runs in-process on a free port (SQLite is enough: the RPCs behind the scripts are tested on both
databases in test_reports.py) with the fixed data set of test_reports.py.
"""

from __future__ import annotations

import asyncio
import csv
import os
import struct
import sys
from pathlib import Path

import pytest

from foothills.booking.v1 import booking_pb2
from foothills_rpc.domain.users import Role
from tests.conftest import PASSWORD, Running
from tests.report_support import Data, display_names

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _script(name: str, running: Running, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / name), "--target", f"127.0.0.1:{running.port}", *args, cwd=ROOT,
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return int(process.returncode or 0), out.decode(), err.decode()


RANGE = ("--from", "2030-01-08T10:00", "--to", "2030-02-01T16:00Z")


def _expected_row(booking: booking_pb2.Booking, service_name: str, category: str,
                  names: dict[str, str]) -> dict[str, str]:
    """The CSV row of `booking`; `names`: display names (and the customer's email, under `email:`) by
    resource name."""
    return {"booking": booking.name, "service": booking.service, "service_display_name": service_name,
            "category": category, "category_display_name": names[category], "customer": booking.customer,
            "customer_email": names[f"email:{booking.customer}"], "customer_display_name": names[booking.customer],
            "provider": booking.provider, "provider_display_name": names[booking.provider],
            "start_time": booking.start_time.ToJsonString(), "end_time": booking.end_time.ToJsonString(),
            "seats": str(booking.seats),
            "status": booking_pb2.BookingStatus.Name(booking.status).removeprefix("BOOKING_STATUS_").lower(),
            "currency": booking.price.total_price.currency_code,
            "total_price_minor": str(booking.price.total_price.amount_minor),
            "cancellation_fee_minor": str(booking.cancellation_fee.amount_minor),
            "create_time": booking.create_time.ToJsonString()}


async def test_export_script_writes_one_csv_row_per_booking_soonest_first(running: Running, tmp_path: Path) -> None:
    """Signed in with --email and FOOTHILLS_PASSWORD; [from, to) with `from` naive (UTC) and `to` with a Z."""
    data = await Data.build(running)
    folder = tmp_path / "export"  # tmp_path also holds the test's database
    folder.mkdir()
    out = folder / "bookings.csv"
    code, _, err = await _script("export_bookings.py", running, *RANGE, "--email", data.admin.email,
                                 "--out", str(out), env={"FOOTHILLS_PASSWORD": PASSWORD})
    assert (code, err.strip()) == (0, "exported 6 bookings")
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    services = {1: data.a, 2: data.b, 3: data.a, 4: data.b, 6: data.b, 8: data.c}
    names = await display_names(running, data.admin, [data.bookings[n] for n in services],
                         {s.category for s in services.values()})
    assert rows == [_expected_row(data.bookings[n], services[n].display_name, services[n].category, names)
                    for n in (1, 3, 4, 6, 8, 2)]
    assert all(row["customer_email"].endswith("@example.com") and row["category_display_name"] for row in rows)
    assert (rows[0]["start_time"], rows[0]["total_price_minor"], rows[0]["currency"]) == (
        "2030-01-08T10:00:00Z", "10000", "EUR")
    assert (rows[1]["status"], rows[1]["cancellation_fee_minor"]) == ("cancelled", "2500")
    assert os.listdir(folder) == [out.name]  # no partial file left


async def test_export_script_to_stdout_with_a_token_and_its_errors(running: Running, tmp_path: Path) -> None:
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    code, out, _ = await _script("export_bookings.py", running, *RANGE,
                                 env={"FOOTHILLS_TOKEN": admin.credentials.access_token})
    assert (code, out) == (0, ",".join([
        "booking", "service", "service_display_name", "category", "category_display_name", "customer",
        "customer_email", "customer_display_name", "provider", "provider_display_name", "start_time", "end_time",
        "seats", "status", "currency", "total_price_minor", "cancellation_fee_minor", "create_time"]) + "\n")

    customer = await running.signed_in("customer@example.com")
    folder = tmp_path / "export"  # tmp_path also holds the test's database
    folder.mkdir()
    target = folder / "refused.csv"
    code, _, err = await _script("export_bookings.py", running, *RANGE, "--out", str(target),
                                 env={"FOOTHILLS_TOKEN": customer.credentials.access_token})
    assert (code, err.strip()) == (1, "error: PERMISSION_DENIED: your role may not call this method (ROLE_NOT_ALLOWED)")
    assert os.listdir(folder) == []  # neither the file nor its partial

    code, _, err = await _script("export_bookings.py", running, "--from", "2030-01-08", "--to", "2030-01-01",
                                 env={"FOOTHILLS_TOKEN": admin.credentials.access_token})
    # The server's reason, not only its status code.
    assert code == 1 and err.strip() == "error: INVALID_ARGUMENT: end_time must be after start_time"
    code, _, err = await _script("export_bookings.py", running, *RANGE, env={"FOOTHILLS_TOKEN": ""})
    assert code == 1 and "FOOTHILLS_TOKEN" in err


async def test_chart_script_renders_a_png(running: Running, tmp_path: Path) -> None:
    data = await Data.build(running)
    out = tmp_path / "chart.png"
    code, _, err = await _script("chart_bookings.py", running, "--from", "2030-01-08", "--to", "2030-02-02",
                                 "--out", str(out), env={"FOOTHILLS_TOKEN": data.admin.credentials.access_token})
    assert code == 0, err
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (12 * 110, (4 + 2 * 2) * 110)  # 12 x 8 inches at 110 dpi: a panel per EUR and GBP
    assert len(png) > 20_000  # bars, lines, labels: not a blank canvas
