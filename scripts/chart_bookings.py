#!/usr/bin/env python3
"""Renders bookings and revenue per day to a PNG, from AdminService.GetBookingStats grouped by day (admins only).

    uv run python scripts/chart_bookings.py --target localhost:50051 --from 2030-01-01 --to 2030-02-01 \
        [--out bookings.png] [--email admin@example.com] [--ca-cert ca.crt]

Signing in and times as in scripts/export_bookings.py (FOOTHILLS_TOKEN, or --email with FOOTHILLS_PASSWORD;
ISO 8601, UTC without an offset; [from, to), at most 366 days). Days are UTC days.

Top: bookings per day, stacked by status. Below: revenue per day (charged prices and cancellation fees),
one panel per currency, in major units (euros, pounds, yen).
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from pathlib import Path

import grpc
from export_bookings import Metadata, add_connection_arguments, connect, run, timestamp  # scripts/ is on the path
from matplotlib.figure import Figure

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc, reports_pb2

# ISO 4217 currencies whose minor unit is not a hundredth (the rest have two decimals).
MINOR_DIGITS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                                 "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
                **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}
STATUSES = (("completed", "#4c72b0"), ("confirmed", "#55a868"), ("pending", "#dd8452"), ("cancelled", "#c44e52"))


def major(amount_minor: int, currency: str) -> float:
    return amount_minor / 10 ** MINOR_DIGITS.get(currency, 2)


def days(start: datetime, end: datetime) -> list[date]:
    """Every UTC day that [start, end) touches."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily_stats(channel: grpc.Channel, metadata: Metadata, start: datetime,
                end: datetime) -> dict[date, reports_pb2.BookingStats]:
    response = admin_pb2_grpc.AdminServiceStub(channel).GetBookingStats(admin_pb2.GetBookingStatsRequest(
        start_time=timestamp(start), end_time=timestamp(end), group_by=reports_pb2.STATS_GROUPING_DAY),
        metadata=metadata, timeout=60)
    return {date.fromisoformat(group.key): group for group in response.groups}


def render(stats: dict[date, reports_pb2.BookingStats], start: datetime, end: datetime, out: Path) -> None:
    axis = days(start, end)
    empty = reports_pb2.BookingStats()
    rows = [stats.get(day, empty) for day in axis]
    currencies = sorted({money.currency_code for row in rows for money in row.revenue})
    panels = max(1, len(currencies))  # one revenue panel per currency: yen and euros differ in scale
    figure = Figure(figsize=(12, 4 + 2 * panels), dpi=110, layout="constrained")
    bookings, *revenue = figure.subplots(1 + panels, 1, sharex=True, height_ratios=[2] + [1] * panels)
    bottom = [0] * len(axis)
    for status, colour in STATUSES:
        counts = [getattr(row, status) for row in rows]
        bookings.bar(axis, counts, bottom=bottom, color=colour, label=status, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    bookings.set_ylabel("bookings")
    bookings.legend(loc="upper left", ncols=len(STATUSES), fontsize="small")
    bookings.set_title(f"Bookings and revenue per day (UTC), {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")
    for axes, currency in zip(revenue, currencies, strict=False):
        amounts = [major(next((m.amount_minor for m in row.revenue if m.currency_code == currency), 0), currency)
                   for row in rows]
        axes.bar(axis, amounts, color="#8172b3", width=0.8)
        axes.set_ylabel(f"revenue {currency}")
    if not currencies:
        revenue[0].set_ylabel("revenue")
        revenue[0].text(0.5, 0.5, "no revenue in this range", ha="center", va="center",
                        transform=revenue[0].transAxes)
    for axes in (bookings, *revenue):
        axes.grid(axis="y", alpha=0.3)
    figure.autofmt_xdate()
    figure.savefig(out, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_connection_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bookings.png"), help="PNG file (default bookings.png)")
    args = parser.parse_args()
    with connect(args) as (channel, metadata):
        stats = daily_stats(channel, metadata, args.start, args.end)
    render(stats, args.start, args.end, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run(main)
