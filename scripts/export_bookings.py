#!/usr/bin/env python3
"""Writes the bookings starting in a time range as CSV, from AdminService.ExportBookings (admins only).

    uv run python scripts/export_bookings.py --target localhost:50051 --from 2030-01-01 --to 2030-02-01 \
        [--out bookings.csv] [--email admin@example.com] [--ca-cert ca.crt]

Signing in: the access token in FOOTHILLS_TOKEN, or `--email` with the password in FOOTHILLS_PASSWORD.
Times: ISO 8601; without an offset they are UTC; the range is [from, to), at most 366 days.
CSV: a header row, then one row per booking, soonest first; instants in UTC (`2030-01-08T10:00:00Z`);
money as integer minor units (cents; yen have none) with the currency code in its own column.

The connection helpers here are shared with scripts/chart_bookings.py.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc, reports_pb2
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.booking.v1 import booking_pb2

Metadata = tuple[tuple[str, str], ...]

COLUMNS = ("booking", "service", "service_display_name", "category", "category_display_name", "customer",
           "customer_email", "customer_display_name", "provider", "provider_display_name", "start_time", "end_time",
           "seats", "status", "currency", "total_price_minor", "cancellation_fee_minor", "create_time")


class ScriptError(Exception):
    """A problem the person running the script can fix; printed without a traceback."""


# --- shared with chart_bookings.py -----------------------------------------------------------------


def instant(text: str) -> datetime:
    """An ISO 8601 date or instant; UTC when it carries no offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, help="the server, HOST:PORT")
    parser.add_argument("--from", dest="start", required=True, type=instant, help="range start (inclusive)")
    parser.add_argument("--to", dest="end", required=True, type=instant, help="range end (exclusive)")
    parser.add_argument("--email", help="sign in as this admin (password from FOOTHILLS_PASSWORD) "
                                        "instead of using FOOTHILLS_TOKEN")
    parser.add_argument("--ca-cert", type=Path, help="PEM CA certificate: speak TLS and trust this CA")


@contextlib.contextmanager
def connect(args: argparse.Namespace) -> Iterator[tuple[grpc.Channel, Metadata]]:
    """A channel to the server and the authorization metadata for it."""
    if args.ca_cert is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=args.ca_cert.read_bytes())
        channel = grpc.secure_channel(args.target, credentials)
    else:
        channel = grpc.insecure_channel(args.target)
    with channel:
        yield channel, (("authorization", f"Bearer {_token(args, channel)}"),)


def _token(args: argparse.Namespace, channel: grpc.Channel) -> str:
    if args.email:
        password = os.environ.get("FOOTHILLS_PASSWORD")
        if not password:
            raise ScriptError("--email needs the password in FOOTHILLS_PASSWORD")
        login = auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(email=args.email, password=password), timeout=30)
        return str(login.credentials.access_token)
    token = os.environ.get("FOOTHILLS_TOKEN")
    if not token:
        raise ScriptError("set FOOTHILLS_TOKEN to an admin's access token, or pass --email and FOOTHILLS_PASSWORD")
    return token


def run(main: Callable[[], None]) -> None:
    """Runs `main()`, turning failures the user can act on into one line on stderr and exit status 1."""
    try:
        main()
    except ScriptError as exc:
        sys.exit(f"error: {exc}")
    except grpc.RpcError as exc:
        sys.exit(f"error: {exc.code().name}: {refusal(exc)}")


def refusal(error: grpc.RpcError) -> str:
    """The server's words for a refused call: each bad field with its description (`end_time must be
    after start_time`), else its message, and its ErrorInfo reason; not just a status code."""
    code, message = error.code().name, str(error.details())  # type: ignore[attr-defined]
    fields, reason = [], ""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [f"{v.field} {v.description}" for v in bad.field_violations]
    text = "; ".join(fields) or message
    return f"{text} ({reason})" if reason and reason != code else text


# --- the export ----------------------------------------------------------------------------------


def utc(message: timestamp_pb2.Timestamp) -> str:
    return message.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_row(row: reports_pb2.BookingRow) -> list[object]:
    status = booking_pb2.BookingStatus.Name(row.status).removeprefix("BOOKING_STATUS_").lower()
    return [row.booking, row.service, row.service_display_name, row.category, row.category_display_name,
            row.customer, row.customer_email, row.customer_display_name, row.provider, row.provider_display_name,
            utc(row.start_time), utc(row.end_time), row.seats, status, row.total_price.currency_code,
            row.total_price.amount_minor, row.cancellation_fee.amount_minor, utc(row.create_time)]


def export(channel: grpc.Channel, metadata: Metadata, start: datetime, end: datetime, out: IO[str]) -> int:
    """Streams the export into `out` as CSV; returns the number of bookings written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    stream = admin_pb2_grpc.AdminServiceStub(channel).ExportBookings(
        admin_pb2.ExportBookingsRequest(start_time=timestamp(start), end_time=timestamp(end)), metadata=metadata)
    for message in stream:
        writer.writerows(csv_row(row) for row in message.rows)
        count += len(message.rows)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_connection_arguments(parser)
    parser.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    args = parser.parse_args()
    with connect(args) as (channel, metadata):
        if args.out is None:
            count = export(channel, metadata, args.start, args.end, sys.stdout)
        else:
            # Written beside it and renamed at the end: a failed export leaves no half-written file behind.
            partial = args.out.with_name(args.out.name + ".partial")
            try:
                with partial.open("w", newline="", encoding="utf-8") as out:
                    count = export(channel, metadata, args.start, args.end, out)
                partial.replace(args.out)
            finally:
                partial.unlink(missing_ok=True)
    print(f"exported {count} bookings", file=sys.stderr)


if __name__ == "__main__":
    run(main)
