"""End to end: a `foothills-rpc serve` subprocess driven by the real grpcurl binary, as scripts do.

One server per module, on an embedded SQLite file in a temporary folder, with no FOOTHILLS_JWT_SECRET
(so it generates its own). Every call is a grpcurl process; its JSON output is parsed as a script
would. grpcurl prints the proto field names (`access_token`), not lowerCamelCase, and exits with
64 + the gRPC status code when an RPC fails.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e_support import CALL_TIMEOUT, GRPCURL, START_TIMEOUT, STOP_TIMEOUT, server_env
from tests.support import Mailbox, free_port, stop_process, text_of

pytestmark = pytest.mark.e2e

SERVICES = (
    "foothills.admin.v1.AdminService",
    "foothills.auth.v1.AuthService",
    "foothills.booking.v1.BookingService",
    "foothills.catalog.v1.CatalogService",
)
AUTH = "foothills.auth.v1.AuthService"
ADMIN = "foothills.admin.v1.AdminService"
CATALOG = "foothills.catalog.v1.CatalogService"
BOOKING = "foothills.booking.v1.BookingService"
PASSWORD = "e2e passphrase 9c1f7b"  # distinctive, so the log check cannot match by accident
# grpcurl's exit status for a failed RPC is 64 + the status code.
UNAUTHENTICATED = 64 + 16
PERMISSION_DENIED = 64 + 7
INVALID_ARGUMENT = 64 + 3
NOT_FOUND = 64 + 5
FAILED_PRECONDITION = 64 + 9


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def grpcurl(server: Server, *args: str, data: dict[str, Any] | None = None, headers: Sequence[str] = (),
            flags: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext [flags] [-H header]... [-d json] ADDRESS args...`; never raises on failure."""
    assert GRPCURL is not None
    command = [GRPCURL, "-plaintext", *flags]
    for header in headers:
        command += ["-H", header]
    if data is not None:
        command += ["-d", json.dumps(data)]
    command += [server.address, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"grpcurl exited {result.returncode}: {result.stderr}"
    return result.stdout


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode} before serving:\n{server.log_text()}")
        try:
            result = grpcurl(server, "grpc.health.v1.Health/Check", flags=("-connect-timeout", "1"))
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0 and "SERVING" in result.stdout and "NOT_SERVING" not in result.stdout:
            return
        last = result.stdout + result.stderr
        time.sleep(0.05)  # between polls only; readiness is the health answer
    pytest.fail(f"server not SERVING within {START_TIMEOUT}s (last grpcurl: {last.strip()}):\n{server.log_text()}")



def _spawn(folder: Path, **env: str) -> Server:
    """`foothills-rpc serve` on a free port, its output in `folder`."""
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as stderr, (folder / "server.out").open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=folder, env={**server_env(folder), **env}, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    return Server(process=process, port=port, folder=folder, log=log)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if GRPCURL is None:
        pytest.fail("no grpcurl binary beside the interpreter or on PATH: install the dev group (uv sync)")
    running = _spawn(tmp_path_factory.mktemp("e2e"))
    process = running.process
    try:
        _wait_until_serving(running)
        yield running
    finally:
        code = stop_process(process, timeout=STOP_TIMEOUT)
    assert code is not None, f"server ignored SIGTERM for {STOP_TIMEOUT}s and was killed:\n{running.log_text()}"
    assert code == 0, f"server exited with {code} after SIGTERM:\n{running.log_text()}"
    assert "logger=foothills_rpc.server stopped" in running.log_text()


def _unique_email(label: str) -> str:
    return f"{label}.{uuid.uuid4().hex[:8]}@example.com"


def _register(server: Server, email: str, password: str = PASSWORD, name: str = "E2E User") -> Any:
    return ok_json(grpcurl(server, f"{AUTH}/Register",
                           data={"email": email, "password": password, "display_name": name}))


def _login(server: Server, email: str, password: str = PASSWORD, headers: Sequence[str] = ()) -> Any:
    return ok_json(grpcurl(server, f"{AUTH}/Login", data={"email": email, "password": password}, headers=headers))


def _details(stderr: str) -> list[dict[str, Any]]:
    """The status details of a `-format-error` failure (grpcurl writes the status JSON to stderr)."""
    status = json.loads(stderr)
    return list(status["details"])


def _detail(details: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matching = [d for d in details if d["@type"] == f"type.googleapis.com/google.rpc.{kind}"]
    assert len(matching) == 1, details
    return matching[0]


def test_server_generates_its_jwt_secret_with_mode_0600(server: Server) -> None:
    secret_file = server.folder / "e2e.db.jwt-secret"
    assert secret_file.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    log = server.log_text()
    assert f"saved it to {secret_file}" in log
    assert secret not in log


def test_list_shows_exactly_the_services(server: Server) -> None:
    listed = ok(grpcurl(server, "list")).splitlines()
    assert listed == sorted([*SERVICES, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"])


def test_describe_shows_the_auth_rpcs_and_request_fields(server: Server) -> None:
    service = ok(grpcurl(server, "describe", AUTH))
    assert service.startswith(f"{AUTH} is a service:")
    rpcs = set(re.findall(r"^\s*rpc (\w+) \(", service, flags=re.MULTILINE))
    assert rpcs == {"Register", "Login", "RefreshToken", "Logout", "RequestPasswordReset", "ResetPassword",
                    "GetProfile", "UpdateProfile", "ChangePassword"}
    assert "rpc Login ( .foothills.auth.v1.LoginRequest ) returns ( .foothills.auth.v1.LoginResponse );" in service

    message = ok(grpcurl(server, "describe", "foothills.auth.v1.RegisterRequest"))
    assert message.startswith("foothills.auth.v1.RegisterRequest is a message:")
    fields = re.findall(r"^\s*(\w+) (\w+) = (\d+) \[\(\.?google\.api\.field_behavior\) = (\w+)\];", message,
                        flags=re.MULTILINE)
    assert fields == [("string", "email", "1", "REQUIRED"), ("string", "password", "2", "REQUIRED"),
                      ("string", "display_name", "3", "REQUIRED")]


def test_describe_shows_the_documentation_written_in_the_protos(server: Server) -> None:
    """Reflection serves the protos with their comments: what an RPC does, its errors, a field's rules."""
    service = ok(grpcurl(server, "describe", "foothills.booking.v1.BookingService"))
    assert "// With `hold`, the booking takes the held seats at the held price;" in service
    assert "rpc CreateBooking ( .foothills.booking.v1.CreateBookingRequest )" in service
    user = ok(grpcurl(server, "describe", "foothills.auth.v1.User"))
    assert "// Optional. BCP 47 language tag" in user
    method = ok(grpcurl(server, "describe", "foothills.auth.v1.AuthService.ChangePassword"))
    assert "FAILED_PRECONDITION reason WRONG_CURRENT_PASSWORD" in method
    money = ok(grpcurl(server, "describe", "foothills.type.v1.Money"))  # a file reached only as a dependency
    assert "// An amount of money: integer minor units" in money


@pytest.mark.parametrize("service", ["", *SERVICES])
def test_health_is_serving(server: Server, service: str) -> None:
    answer = ok_json(grpcurl(server, "grpc.health.v1.Health/Check", data={"service": service}))
    assert answer == {"status": "SERVING"}


def test_health_of_an_unknown_service_is_not_found(server: Server) -> None:
    result = grpcurl(server, "grpc.health.v1.Health/Check", data={"service": "foothills.nope.v1.NopeService"})
    assert result.returncode == NOT_FOUND, result.stderr
    assert "Code: NotFound" in result.stderr
    assert result.stdout == ""


def test_register_login_and_profile(server: Server) -> None:
    local = f"Dora.E2E.{uuid.uuid4().hex[:8]}"
    normalised = f"{local.lower()}@example.com"

    registered = _register(server, f"  {local}@Example.COM ", name=" Dora ")["user"]
    assert registered["email"] == normalised
    assert registered["display_name"] == "Dora"
    assert registered["role"] == "ROLE_CUSTOMER"
    assert re.fullmatch(r"users/[0-9a-f]{32}", registered["name"])

    login = _login(server, f"{local.upper()}@EXAMPLE.com")
    credentials = login["credentials"]
    assert set(credentials) == {"access_token", "access_token_expire_time", "refresh_token",
                                "refresh_token_expire_time"}
    assert credentials["access_token"].count(".") == 2  # a JWS
    assert credentials["refresh_token"]
    assert login["user"] == registered

    token = credentials["access_token"]
    profile = ok_json(grpcurl(server, f"{AUTH}/GetProfile", headers=[f"authorization: Bearer {token}"]))
    assert profile == {"user": registered}


def test_profile_without_a_token_is_unauthenticated(server: Server) -> None:
    plain = grpcurl(server, f"{AUTH}/GetProfile")
    assert plain.returncode == UNAUTHENTICATED
    assert plain.stdout == ""
    assert "Code: Unauthenticated" in plain.stderr
    assert '"reason":"TOKEN_MISSING"' in plain.stderr

    formatted = grpcurl(server, f"{AUTH}/GetProfile", flags=["-format-error"])
    assert formatted.returncode == UNAUTHENTICATED
    assert json.loads(formatted.stderr)["code"] == 16
    info = _detail(_details(formatted.stderr), "ErrorInfo")
    assert info == {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": "foothills",
                    "reason": "TOKEN_MISSING"}


def test_register_with_a_short_password_is_invalid_argument(server: Server) -> None:
    data = {"email": _unique_email("short"), "password": "too short", "display_name": "Short"}
    plain = grpcurl(server, f"{AUTH}/Register", data=data)
    assert plain.returncode == INVALID_ARGUMENT
    assert "Code: InvalidArgument" in plain.stderr
    assert "PASSWORD_TOO_SHORT" in plain.stderr

    formatted = grpcurl(server, f"{AUTH}/Register", data=data, flags=["-format-error"])
    assert formatted.returncode == INVALID_ARGUMENT
    assert json.loads(formatted.stderr)["code"] == 3
    bad = _detail(_details(formatted.stderr), "BadRequest")
    assert [(v["field"], v["reason"]) for v in bad["field_violations"]] == [("password", "PASSWORD_TOO_SHORT")]


def _rpc_lines(server: Server) -> list[str]:
    return [line for line in server.log_text().splitlines() if "logger=foothills_rpc.rpc rpc " in line]


def test_the_log_has_one_line_per_rpc_and_no_secrets(server: Server) -> None:
    before = len(_rpc_lines(server))
    email = _unique_email("logged")
    password = f"log check {uuid.uuid4().hex}"
    _register(server, email, password=password)
    login_id = f"e2e-login-{uuid.uuid4().hex[:12]}"
    credentials = _login(server, email, password=password, headers=[f"x-request-id: {login_id}"])["credentials"]
    token = credentials["access_token"]
    profile_id = f"e2e-profile-{uuid.uuid4().hex[:12]}"
    verbose = ok(grpcurl(server, f"{AUTH}/GetProfile", flags=["-v"],
                         headers=[f"authorization: Bearer {token}", f"x-request-id: {profile_id}"]))
    trailers = verbose.split("Response trailers received:", 1)[1]
    assert f"x-request-id: {profile_id}" in trailers

    deadline = time.monotonic() + 30.0  # another process writes the lines: wait for them
    while len(new := _rpc_lines(server)[before:]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(new) == 3, new
    assert f"method=/{AUTH}/Register code=OK " in new[0]
    assert f"method=/{AUTH}/Login code=OK " in new[1]
    assert f"request_id={login_id} " in new[1]
    assert f"method=/{AUTH}/GetProfile code=OK " in new[2]
    assert f"request_id={profile_id} " in new[2]
    assert "user_id=-" not in new[2]
    log = server.log_text()
    for secret in (password, token, credentials["refresh_token"]):
        assert secret not in log


def _readme_examples() -> str:
    """Every ```sh block of the README's "Try it" part, in order, as one script (variables carry over)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    part = readme.split("## Try it with grpcurl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", part, flags=re.DOTALL)
    assert len(blocks) >= 4, "the README's examples were not found"
    return "\n".join(blocks)


def _json_documents(text: str) -> list[Any]:
    """The JSON documents printed one after another (grpcurl prints one per response)."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def test_the_readme_examples_run_verbatim_in_order(tmp_path: Path) -> None:
    """The README's commands, exactly as a newcomer pastes them at the repository's root, against a fresh
    server: only the port differs (the README's 50051 may be taken here). A command that stops working,
    or an example that stops showing what the README says, fails this test."""
    script = _readme_examples()
    assert "localhost:50051" in script and "uuidgen" not in script
    started = datetime.now(UTC)
    server = _spawn(tmp_path)
    try:
        _wait_until_serving(server)
        env = {**server_env(tmp_path), "PATH": os.environ.get("PATH", "")}
        result = subprocess.run(["bash", "-c", "set -euo pipefail\n"
                                 + script.replace("localhost:50051", f"localhost:{server.port}")],
                                capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1],
                                timeout=10 * CALL_TIMEOUT, check=False)
    finally:
        assert stop_process(server.process) == 0, server.log_text()
    assert result.returncode == 0, f"a README example failed ({result.returncode}):\n{result.stderr}"
    listed, described, answers = re.split(r"^(?=foothills\.auth\.v1\.AuthService is a service:|\{)",
                                          result.stdout, maxsplit=2, flags=re.MULTILINE)
    assert set(listed.split()) == {*SERVICES, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    assert "rpc Register (" in described
    seeded = next(line for line in result.stdout.splitlines() if line.startswith("seeded "))
    assert seeded.startswith("seeded 50 users, 3 providers, 1 admin, 6 categories, 40 services, 300 bookings")
    documents = _json_documents(answers)
    assert documents[0] == {"status": "SERVING"}
    profile, updated = documents[2], documents[3]  # after health and the registration
    assert profile["user"]["email"] == "ann@example.com" and profile["user"]["display_name"] == "Ann"
    assert updated["user"]["time_zone"] == "Europe/Paris"
    categories, services, slots = documents[4:7]
    assert len(categories["categories"]) == 3 and categories["next_page_token"]
    assert 1 <= len(services["services"]) <= 3  # the demo's massages in euros
    assert all("massage" in (s["display_name"] + s["description"]).lower() for s in services["services"])
    prices = [int(s["base_price"]["amount_minor"]) for s in services["services"]]
    assert prices == sorted(prices) and {s["base_price"]["currency_code"] for s in services["services"]} == {"EUR"}
    assert slots["slots"] and slots["bookable_start_time"], "the README's ListSlots found no slots"
    preview, cancelled = documents[-2]["booking"], documents[-1]["booking"]
    assert preview["status"] == "BOOKING_STATUS_CANCELLED" and "amount_minor" in preview["cancellation_fee"]
    assert cancelled["status"] == "BOOKING_STATUS_CANCELLED" and cancelled["cancel_reason"] == "plans changed"
    for slot in slots["slots"]:
        assert started + timedelta(hours=1) <= _instant(slot["start_time"]) < started + timedelta(days=7, minutes=1)
        assert 0 <= slot.get("remaining_seats", 0) <= slot["capacity"]  # the demo's bookings fill some
        assert slot["price"]["seats"] == 1


def _bearer(credentials: dict[str, Any]) -> list[str]:
    return [f"authorization: Bearer {credentials['access_token']}"]


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _hourly_starts(zone: str, first_hour: int, last_hour: int, start: datetime, end: datetime) -> set[datetime]:
    """Every whole local hour first_hour..last_hour of every day, as UTC instants in [start, end)."""
    tz = ZoneInfo(zone)
    day = start.astimezone(tz).date() - timedelta(days=1)
    starts = set()
    while day <= end.astimezone(tz).date():
        for hour in range(first_hour, last_hour + 1):
            instant = datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)
            if start <= instant < end:
                starts.add(instant)
        day += timedelta(days=1)
    return starts


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    return str(_detail(_details(result.stderr), "ErrorInfo")["reason"])


def _create_admin(server: Server, email: str) -> subprocess.CompletedProcess[str]:
    cli = subprocess.run(
        [sys.executable, "-m", "foothills_rpc.cli", "create-admin", email, "--display-name", "E2E Admin"],
        cwd=server.folder, env={**server_env(server.folder), "FOOTHILLS_ADMIN_PASSWORD": PASSWORD},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
    assert cli.returncode == 0, cli.stderr
    return cli


EVERY_DAY = ["DAY_OF_WEEK_MONDAY", "DAY_OF_WEEK_TUESDAY", "DAY_OF_WEEK_WEDNESDAY", "DAY_OF_WEEK_THURSDAY",
             "DAY_OF_WEEK_FRIDAY", "DAY_OF_WEEK_SATURDAY", "DAY_OF_WEEK_SUNDAY"]


def test_catalog_journey_from_the_first_admin_to_an_anonymous_quote(server: Server) -> None:
    suffix = uuid.uuid4().hex[:8]

    # The first admin comes from the command line, on the server's own database.
    admin_email = _unique_email("admin")
    cli = _create_admin(server, admin_email)
    created = re.fullmatch(r"created admin (users/[0-9a-f]{32}) <(.+)>\n", cli.stdout)
    assert created is not None, cli.stdout
    assert created.group(2) == admin_email
    assert PASSWORD not in cli.stdout + cli.stderr
    admin_login = _login(server, admin_email)
    assert admin_login["user"]["name"] == created.group(1)
    assert admin_login["user"]["role"] == "ROLE_ADMIN"
    admin = _bearer(admin_login["credentials"])

    # A provider registers like anyone else; the admin promotes them.
    provider_email = _unique_email("provider")
    provider_name = _register(server, provider_email, name="E2E Provider")["user"]["name"]
    promoted = ok_json(grpcurl(server, f"{ADMIN}/SetUserRole", headers=admin,
                               data={"name": provider_name, "role": "ROLE_PROVIDER"}))
    assert promoted["user"]["name"] == provider_name
    assert promoted["user"]["role"] == "ROLE_PROVIDER"
    provider = _bearer(_login(server, provider_email)["credentials"])

    category = ok_json(grpcurl(server, f"{CATALOG}/CreateCategory", headers=admin,
                               data={"category": {"display_name": f"Tennis {suffix}"}}))["category"]
    assert re.fullmatch(r"categories/[0-9a-f]{32}", category["name"])
    assert category["display_name"] == f"Tennis {suffix}"

    base_price = {"amount_minor": "4500", "currency_code": "GBP"}  # int64 is a JSON string in proto3 JSON
    service = ok_json(grpcurl(server, f"{CATALOG}/CreateService", headers=admin, data={"service": {
        "display_name": f"Grass court coaching {suffix}", "description": "An hour on grass with a coach.",
        "category": category["name"], "provider": provider_name, "duration": "3600s", "capacity": 2,
        "base_price": {"amount_minor": 4500, "currency_code": "GBP"}, "time_zone": "Europe/London",
        "booking_settings": {"minimum_notice": "3600s"}}}))["service"]
    assert re.fullmatch(r"services/[0-9a-f]{32}", service["name"])
    assert (service["provider"], service["category"], service["state"]) == (
        provider_name, category["name"], "SERVICE_STATE_ACTIVE")
    assert (service["duration"], service["capacity"], service["base_price"]) == ("3600s", 2, base_price)
    assert service["booking_settings"]["minimum_notice"] == "3600s"

    windows = [{"day_of_week": day, "hours": {"start_time": {"hours": 9}, "end_time": {"hours": 17}}}
               for day in EVERY_DAY]
    availability = ok_json(grpcurl(server, f"{CATALOG}/SetAvailability", headers=provider, data={
        "availability": {"name": f"{service['name']}/availability", "weekly_windows": windows}}))["availability"]
    assert availability == {"name": f"{service['name']}/availability", "weekly_windows": windows}

    # From here on, an anonymous caller: reads are public.
    found = ok_json(grpcurl(server, f"{CATALOG}/ListServices",
                            data={"query": "GRASS COURT", "category": category["name"]}))
    assert [s["name"] for s in found["services"]] == [service["name"]]
    assert "next_page_token" not in found
    missed = ok_json(grpcurl(server, f"{CATALOG}/ListServices", data={"query": "squash", "category": category["name"]}))
    assert missed == {}

    before = datetime.now(UTC)
    start, end = before.replace(microsecond=0), before.replace(microsecond=0) + timedelta(days=7)
    slots = ok_json(grpcurl(server, f"{CATALOG}/ListSlots", data={
        "service": service["name"], "start_time": _rfc3339(start), "end_time": _rfc3339(end)}))["slots"]
    after = datetime.now(UTC)
    starts = [_instant(s["start_time"]) for s in slots]
    assert starts == sorted(set(starts))
    # 09:00..16:00 London every day, from an hour after the server's "now" (between before and after).
    assert set(starts) <= _hourly_starts("Europe/London", 9, 16, before + timedelta(hours=1), end)
    assert _hourly_starts("Europe/London", 9, 16, after + timedelta(hours=1), end) <= set(starts)
    assert len(slots) >= 6 * 8
    one_seat = {"base_unit_price": base_price, "unit_price": base_price, "seats": 1, "total_price": base_price}
    for slot in slots:
        assert _instant(slot["end_time"]) - _instant(slot["start_time"]) == timedelta(hours=1)
        assert (slot["capacity"], slot["remaining_seats"]) == (2, 2)
        assert slot["price"] == one_seat  # no pricing rules: no adjustments

    quote = ok_json(grpcurl(server, f"{CATALOG}/QuotePrice",
                            data={"service": service["name"], "start_time": slots[0]["start_time"]}))
    assert quote == {"quote": slots[0]["price"]}
    two = ok_json(grpcurl(server, f"{CATALOG}/QuotePrice",
                          data={"service": service["name"], "start_time": slots[0]["start_time"], "seats": 2}))
    assert two["quote"]["total_price"] == {"amount_minor": "9000", "currency_code": "GBP"}


def test_creating_a_category_needs_an_admin(server: Server) -> None:
    data = {"category": {"display_name": f"Forbidden {uuid.uuid4().hex[:8]}"}}
    anonymous = grpcurl(server, f"{CATALOG}/CreateCategory", data=data, flags=["-format-error"])
    assert anonymous.returncode == UNAUTHENTICATED, anonymous.stderr
    assert _reason(anonymous) == "TOKEN_MISSING"

    email = _unique_email("customer")
    _register(server, email)
    customer = _bearer(_login(server, email)["credentials"])
    forbidden = grpcurl(server, f"{CATALOG}/CreateCategory", data=data, headers=customer, flags=["-format-error"])
    assert forbidden.returncode == PERMISSION_DENIED, forbidden.stderr
    assert _reason(forbidden) == "ROLE_NOT_ALLOWED"

    listed = ok_json(grpcurl(server, f"{CATALOG}/ListCategories", data={"page_size": 200}))
    assert data["category"]["display_name"] not in {c["display_name"] for c in listed.get("categories", [])}


def test_booking_journey_book_list_reschedule_cancel(server: Server) -> None:
    suffix = uuid.uuid4().hex[:8]
    admin_email = _unique_email("admin")
    _create_admin(server, admin_email)
    admin = _bearer(_login(server, admin_email)["credentials"])
    provider_email = _unique_email("provider")
    provider_name = _register(server, provider_email, name="Booking Provider")["user"]["name"]
    ok(grpcurl(server, f"{ADMIN}/SetUserRole", headers=admin, data={"name": provider_name, "role": "ROLE_PROVIDER"}))
    provider = _bearer(_login(server, provider_email)["credentials"])
    category = ok_json(grpcurl(server, f"{CATALOG}/CreateCategory", headers=admin,
                               data={"category": {"display_name": f"Yoga {suffix}"}}))["category"]
    service = ok_json(grpcurl(server, f"{CATALOG}/CreateService", headers=provider, data={"service": {
        "display_name": f"Private yoga {suffix}", "category": category["name"], "duration": "3600s",
        "base_price": {"amount_minor": 3000, "currency_code": "EUR"}, "time_zone": "Europe/Paris",
        # Free cancellation until 2 h before; a slot is at least 3 h ahead, so the cancel below is free.
        "booking_settings": {"minimum_notice": "10800s"},
        "cancellation_policy": {"tiers": [{"before_start": "7200s", "refused": True}]}}}))["service"]
    windows = [{"day_of_week": day, "hours": {"start_time": {"hours": 8}, "end_time": {"hours": 20}}}
               for day in EVERY_DAY]
    ok(grpcurl(server, f"{CATALOG}/SetAvailability", headers=provider, data={
        "availability": {"name": f"{service['name']}/availability", "weekly_windows": windows}}))
    now = datetime.now(UTC).replace(microsecond=0)
    week = {"service": service["name"], "start_time": _rfc3339(now), "end_time": _rfc3339(now + timedelta(days=3))}
    slots = ok_json(grpcurl(server, f"{CATALOG}/ListSlots", data=week))["slots"]
    first, second = slots[0], slots[1]

    customer_email = _unique_email("customer")
    customer_name = _register(server, customer_email)["user"]["name"]
    customer = _bearer(_login(server, customer_email)["credentials"])
    create = {"service": service["name"], "start_time": first["start_time"], "request_id": f"e2e-{suffix}",
              "expected_total_price": first["price"]["total_price"]}
    booking = ok_json(grpcurl(server, f"{BOOKING}/CreateBooking", headers=customer, data=create))["booking"]
    assert re.fullmatch(r"bookings/[0-9a-f]{32}", booking["name"])
    assert (booking["service"], booking["customer"], booking["provider"]) == (
        service["name"], customer_name, provider_name)
    assert (booking["status"], booking["start_time"], booking["seats"]) == (
        "BOOKING_STATUS_CONFIRMED", first["start_time"], 1)
    assert booking["price"]["total_price"] == {"amount_minor": "3000", "currency_code": "EUR"}
    # A retry with the same request_id is the same booking, not a second one.
    again = ok_json(grpcurl(server, f"{BOOKING}/CreateBooking", headers=customer, data=create))["booking"]
    assert again["name"] == booking["name"]
    # The slot is now full (capacity 1): another customer is refused with a reason to branch on.
    other_email = _unique_email("other")
    _register(server, other_email)
    other = _bearer(_login(server, other_email)["credentials"])
    full = grpcurl(server, f"{BOOKING}/CreateBooking", headers=other, flags=["-format-error"],
                   data={**create, "request_id": f"e2e-other-{suffix}"})
    assert full.returncode == FAILED_PRECONDITION, full.stderr
    assert _reason(full) == "SLOT_UNAVAILABLE"

    listed = ok_json(grpcurl(server, f"{BOOKING}/ListBookings", headers=customer, data={}))["bookings"]
    assert [b["name"] for b in listed] == [booking["name"]]

    move = {"name": booking["name"], "new_start_time": second["start_time"], "request_id": f"e2e-move-{suffix}"}
    moved = ok_json(grpcurl(server, f"{BOOKING}/RescheduleBooking", headers=customer, data=move))["booking"]
    assert (moved["start_time"], moved["reschedule_count"]) == (second["start_time"], 1)
    both = {"service": service["name"], "start_time": first["start_time"], "end_time": second["end_time"]}
    seats = {s["start_time"]: s.get("remaining_seats", 0)  # proto3 JSON leaves out zeros
             for s in ok_json(grpcurl(server, f"{CATALOG}/ListSlots", data=both))["slots"]}
    assert seats == {first["start_time"]: 1, second["start_time"]: 0}  # the old slot is free again, the new one full

    cancelled = ok_json(grpcurl(server, f"{BOOKING}/CancelBooking", headers=customer,
                                data={"name": booking["name"], "reason": "plans changed"}))["booking"]
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("BOOKING_STATUS_CANCELLED", "plans changed")
    assert "cancellation_fee" not in cancelled or cancelled["cancellation_fee"].get("amount_minor", "0") == "0"
    fetched = ok_json(grpcurl(server, f"{BOOKING}/GetBooking", headers=customer, data={"name": booking["name"]}))
    assert fetched["booking"]["status"] == "BOOKING_STATUS_CANCELLED"
    twice = grpcurl(server, f"{BOOKING}/CancelBooking", headers=customer, flags=["-format-error"],
                    data={"name": booking["name"]})
    assert twice.returncode == FAILED_PRECONDITION, twice.stderr
    assert _reason(twice) == "BOOKING_ALREADY_CANCELLED"

    # The confirmations went to the default file outbox, one per change, addressed to the customer.
    deadline = time.monotonic() + 30.0  # the dispatcher is another task of the server: wait briefly
    while time.monotonic() < deadline:
        mails = [m.read_text() for m in (server.folder / "outbox").glob("*.eml")]
        mine = [m for m in mails if customer_email in m]
        if len(mine) >= 3:
            break
        time.sleep(0.05)
    assert len(mine) == 3, mine
    assert all(booking["name"].split("/")[1] in m for m in mine)

    # A checkout: hold the third slot (the BFF shows the expiry and the locked price), then book with the hold.
    third = slots[2]
    held = ok_json(grpcurl(server, f"{BOOKING}/HoldSlot", headers=other, data={
        "service": service["name"], "start_time": third["start_time"], "request_id": f"e2e-hold-{suffix}"}))["hold"]
    assert re.fullmatch(r"holds/[0-9a-f]{32}", held["name"])
    assert (held["state"], held["price"]["total_price"]) == ("HOLD_STATE_ACTIVE", third["price"]["total_price"])
    assert timedelta(minutes=4) < _instant(held["expire_time"]) - now < timedelta(minutes=6)
    window = {"service": service["name"], "start_time": third["start_time"], "end_time": third["end_time"]}
    assert ok_json(grpcurl(server, f"{CATALOG}/ListSlots", data=window))["slots"][0].get("remaining_seats", 0) == 0
    with_hold = ok_json(grpcurl(server, f"{BOOKING}/CreateBooking", headers=other, data={
        "hold": held["name"], "request_id": f"e2e-held-{suffix}"}))["booking"]
    assert (with_hold["start_time"], with_hold["price"]) == (third["start_time"], held["price"])
    used = ok_json(grpcurl(server, f"{BOOKING}/GetHold", headers=other, data={"name": held["name"]}))["hold"]
    assert (used["state"], used["booking"]) == ("HOLD_STATE_USED", with_hold["name"])


def test_a_test_clock_is_honoured_only_in_test_mode(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path, env={**server_env(tmp_path), "FOOTHILLS_TEST_CLOCK_START": "2030-01-07T09:00:00+00:00"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
    assert refused.returncode != 0
    assert "FOOTHILLS_TEST_CLOCK_START is only honoured with FOOTHILLS_TEST_MODE=1" in refused.stderr

    server = _spawn(tmp_path, FOOTHILLS_TEST_MODE="1", FOOTHILLS_TEST_CLOCK_START="2030-01-07T09:00:00+00:00")
    try:
        _wait_until_serving(server)
        email = _unique_email("timetraveller")
        _register(server, email)
        expires = _instant(_login(server, email)["credentials"]["access_token_expire_time"])
    finally:
        assert stop_process(server.process) == 0
    # 15 minutes after the server's "now", which started at 09:00 on 7 January 2030.
    assert datetime(2030, 1, 7, 9, 15, tzinfo=UTC) <= expires < datetime(2030, 1, 7, 9, 16, tzinfo=UTC)
    assert "TEST MODE: the clock starts at 2030-01-07T09:00:00+00:00" in server.log_text()


def test_a_token_from_a_server_whose_clock_runs_ahead_is_accepted_within_the_leeway(tmp_path: Path) -> None:
    """Two servers on one database, one clock 20 s ahead of the other (each test clock starts when its
    process does, so the real gap is 20 s plus the moments between the starts: the file is migrated
    first, so they start together). A token issued by the one ahead is good at once on the other: `nbf`
    and `iat` allow 30 s of skew by default. With no leeway to speak of (1 s) the same token is "not
    valid yet" there, as two real hosts used to see."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    common = {"FOOTHILLS_DATABASE_URL": database, "FOOTHILLS_JWT_SECRET": "x" * 40, "FOOTHILLS_TEST_MODE": "1"}
    subprocess.run([sys.executable, "-m", "foothills_rpc.cli", "migrate"], env={**server_env(tmp_path), **common},
                   cwd=tmp_path, check=True, capture_output=True, timeout=START_TIMEOUT)
    ahead_folder, behind_folder, strict_folder = (tmp_path / name for name in ("ahead", "behind", "strict"))
    for folder in (ahead_folder, behind_folder, strict_folder):
        folder.mkdir()
    ahead = _spawn(ahead_folder, **common, FOOTHILLS_TEST_CLOCK_START="2030-01-07T09:00:20+00:00")
    behind = _spawn(behind_folder, **common, FOOTHILLS_TEST_CLOCK_START="2030-01-07T09:00:00+00:00")
    strict = _spawn(strict_folder, **common, FOOTHILLS_TEST_CLOCK_START="2030-01-07T09:00:00+00:00",
                    FOOTHILLS_JWT_LEEWAY_SECONDS="1")
    try:
        _wait_until_serving(ahead)
        _wait_until_serving(behind)
        _wait_until_serving(strict)
        email = _unique_email("skew")
        _register(ahead, email)
        token = _bearer(_login(ahead, email)["credentials"])
        assert ok_json(grpcurl(behind, f"{AUTH}/GetProfile", headers=token))["user"]["email"] == email
        refused = grpcurl(strict, f"{AUTH}/GetProfile", headers=token, flags=("-format-error",))
        assert refused.returncode == UNAUTHENTICATED, refused.stderr
        assert _detail(_details(refused.stderr), "ErrorInfo")["reason"] == "TOKEN_INVALID"
        assert "not valid yet" in json.loads(refused.stderr)["message"]
    finally:
        for server in (ahead, behind, strict):
            assert stop_process(server.process) == 0, server.log_text()


def test_waitlist_journey_join_get_the_offer_by_smtp_and_book_it(tmp_path: Path, mailbox: Mailbox) -> None:
    """A full slot, a customer in line, a cancellation: the offer arrives by real SMTP and is booked."""
    server = _spawn(tmp_path, FOOTHILLS_SMTP_HOST="127.0.0.1", FOOTHILLS_SMTP_PORT=str(mailbox.port),
                    FOOTHILLS_SMTP_STARTTLS="false")
    try:
        _wait_until_serving(server)
        suffix = uuid.uuid4().hex[:8]
        admin_email = _unique_email("wl-admin")
        _create_admin(server, admin_email)
        admin = _bearer(_login(server, admin_email)["credentials"])
        category = ok_json(grpcurl(server, f"{CATALOG}/CreateCategory", headers=admin,
                                   data={"category": {"display_name": f"Climbing {suffix}"}}))["category"]
        provider = _register(server, _unique_email("wl-provider"))["user"]["name"]
        ok(grpcurl(server, f"{ADMIN}/SetUserRole", headers=admin, data={"name": provider, "role": "ROLE_PROVIDER"}))
        service = ok_json(grpcurl(server, f"{CATALOG}/CreateService", headers=admin, data={"service": {
            "display_name": f"Bouldering {suffix}", "category": category["name"], "duration": "3600s",
            "base_price": {"amount_minor": 1500, "currency_code": "EUR"}, "time_zone": "UTC",
            "provider": provider}}))["service"]
        windows = [{"day_of_week": day, "hours": {"start_time": {"hours": 0}, "end_time": {"hours": 24}}}
                   for day in EVERY_DAY]
        ok(grpcurl(server, f"{CATALOG}/SetAvailability", headers=admin, data={
            "availability": {"name": f"{service['name']}/availability", "weekly_windows": windows}}))
        now = datetime.now(UTC).replace(microsecond=0)
        slot = ok_json(grpcurl(server, f"{CATALOG}/ListSlots", data={
            "service": service["name"], "start_time": _rfc3339(now + timedelta(hours=3)),
            "end_time": _rfc3339(now + timedelta(days=1))}))["slots"][0]

        first_email, waiting_email = _unique_email("wl-first"), _unique_email("wl-waiting")
        for email in (first_email, waiting_email):
            _register(server, email)
        first = _bearer(_login(server, first_email)["credentials"])
        waiting = _bearer(_login(server, waiting_email)["credentials"])
        booking = ok_json(grpcurl(server, f"{BOOKING}/CreateBooking", headers=first, data={
            "service": service["name"], "start_time": slot["start_time"], "request_id": f"wl-{suffix}"}))["booking"]
        entry = ok_json(grpcurl(server, f"{BOOKING}/JoinWaitlist", headers=waiting, data={
            "service": service["name"], "start_time": slot["start_time"]}))["entry"]
        assert re.fullmatch(r"waitlistEntries/[0-9a-f]{32}", entry["name"])
        assert entry["state"] == "WAITLIST_ENTRY_STATE_WAITING"

        ok(grpcurl(server, f"{BOOKING}/CancelBooking", headers=first, data={"name": booking["name"]}))
        deadline = time.monotonic() + 30.0  # the dispatcher is another task of the server: wait briefly
        while not (offers := [m for m in mailbox.to(waiting_email) if "place is free" in m["Subject"]]):
            assert time.monotonic() < deadline, "no offer mail arrived"
            time.sleep(0.05)
        hold = re.search(r"holds/[0-9a-f]{32}", text_of(offers[0]))
        assert hold is not None, text_of(offers[0])
        listed = ok_json(grpcurl(server, f"{BOOKING}/ListWaitlistEntries", headers=waiting, data={}))
        assert [(e["state"], e["hold"]) for e in listed["waitlist_entries"]] == [
            ("WAITLIST_ENTRY_STATE_OFFERED", hold.group())]
        taken = ok_json(grpcurl(server, f"{BOOKING}/CreateBooking", headers=waiting, data={
            "hold": hold.group(), "request_id": f"wl-offer-{suffix}"}))["booking"]
        assert (taken["start_time"], taken["status"]) == (slot["start_time"], "BOOKING_STATUS_CONFIRMED")
        listed = ok_json(grpcurl(server, f"{BOOKING}/ListWaitlistEntries", headers=waiting, data={}))
        assert [e["state"] for e in listed["waitlist_entries"]] == ["WAITLIST_ENTRY_STATE_BOOKED"]
    finally:
        assert stop_process(server.process) == 0, server.log_text()


def test_bootstrap_finds_the_uv_it_installed_without_installing_it_again(tmp_path: Path) -> None:
    """`scripts/serve` runs `scripts/bootstrap` on every start. pip puts uv in ~/.local/bin, which a fresh
    shell often lacks on PATH: bootstrap must look there instead of installing uv again (5.6 s a start)."""
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    calls = tmp_path / "uv-calls"
    fake = home / ".local" / "bin" / "uv"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> '{calls}'\n")
    fake.chmod(0o755)
    root = Path(__file__).parents[1]
    result = subprocess.run(["bash", str(root / "scripts" / "bootstrap")],
                            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "installing uv" not in result.stderr
    assert calls.read_text() == "sync --frozen --quiet\n"
