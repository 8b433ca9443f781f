"""AdminService reports: GetBookingStats and ExportBookings (a mixin of AdminServicer; admins only, per the
policy table)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from foothills.admin.v1 import admin_pb2, reports_pb2
from foothills.booking.v1 import booking_pb2
from foothills_rpc.db.reports import ExportRow, Figures, Grouping
from foothills_rpc.domain.errors import Collector
from foothills_rpc.services import catalog_convert as convert
from foothills_rpc.services.booking import STATUS_TO_PROTO
from foothills_rpc.services.converters import timestamp, user_name
from foothills_rpc.usecases.reports import Reports

GROUPINGS = {reports_pb2.STATS_GROUPING_DAY: Grouping.DAY, reports_pb2.STATS_GROUPING_WEEK: Grouping.WEEK,
             reports_pb2.STATS_GROUPING_MONTH: Grouping.MONTH, reports_pb2.STATS_GROUPING_SERVICE: Grouping.SERVICE,
             reports_pb2.STATS_GROUPING_CATEGORY: Grouping.CATEGORY,
             reports_pb2.STATS_GROUPING_PROVIDER: Grouping.PROVIDER,
             reports_pb2.STATS_GROUPING_STATUS: Grouping.STATUS}
_COLLECTIONS = {Grouping.SERVICE: "services", Grouping.CATEGORY: "categories", Grouping.PROVIDER: "users"}


def group_key(grouping: Grouping, key: str) -> str:
    """The API's key of a group: the bucket, a resource name, or the status enum's name."""
    if not key:
        return ""
    if grouping is Grouping.STATUS:
        return booking_pb2.BookingStatus.Name(STATUS_TO_PROTO[key])
    if (collection := _COLLECTIONS.get(grouping)) is not None:
        return f"{collection}/{key}"
    return key


def figures_to_proto(grouping: Grouping, figures: Figures) -> reports_pb2.BookingStats:
    key = group_key(grouping, figures.key)
    return reports_pb2.BookingStats(
        key=key, label=figures.label or key, bookings=figures.bookings, pending=figures.pending,
        confirmed=figures.confirmed, cancelled=figures.cancelled, completed=figures.completed,
        revenue=[convert.money(amount, currency) for currency, amount in sorted(figures.revenue.items())],
        cancellation_rate=figures.cancellation_rate, booked_seats=figures.booked_seats,
        offered_seats=figures.offered_seats, utilisation=figures.utilisation)


def row_to_proto(row: ExportRow) -> reports_pb2.BookingRow:
    return reports_pb2.BookingRow(
        booking=f"bookings/{row.booking_id.hex}", service=f"services/{row.service_id.hex}",
        service_display_name=row.service_display_name, category=f"categories/{row.category_id.hex}",
        category_display_name=row.category_display_name, customer=user_name(row.customer_id),
        customer_email=row.customer_email, customer_display_name=row.customer_display_name,
        provider=user_name(row.provider_id), provider_display_name=row.provider_display_name,
        start_time=timestamp(row.start_at), end_time=timestamp(row.end_at), seats=row.seats,
        status=STATUS_TO_PROTO[row.status], total_price=convert.money(row.total_price_minor, row.currency),
        cancellation_fee=convert.money(row.cancellation_fee_minor, row.currency),
        create_time=timestamp(row.created_at))


class ReportRpcs:
    """The report RPCs; the servicer that mixes this in sets `_reports`."""

    _reports: Reports

    async def GetBookingStats(self, request: admin_pb2.GetBookingStatsRequest,
                              context: Any) -> admin_pb2.GetBookingStatsResponse:
        errors = Collector()
        start = convert.instant(request.start_time, "start_time", errors)
        end = convert.instant(request.end_time, "end_time", errors)
        grouping = GROUPINGS.get(request.group_by)
        if grouping is None:
            errors.add("group_by", "is required: one of the STATS_GROUPING_* values")
        errors.check()
        assert grouping is not None
        stats = await self._reports.stats(start=start, end=end, grouping=grouping, top_services=request.top_services)
        return admin_pb2.GetBookingStatsResponse(
            total=figures_to_proto(grouping, stats.total),
            groups=[figures_to_proto(grouping, figures) for figures in stats.groups],
            top_services=[reports_pb2.TopService(service=f"services/{top.service_id.hex}",
                                                 display_name=top.display_name, bookings=top.bookings)
                          for top in stats.top_services])

    async def ExportBookings(self, request: admin_pb2.ExportBookingsRequest,
                             context: Any) -> AsyncIterator[admin_pb2.ExportBookingsResponse]:
        errors = Collector()
        start = convert.instant(request.start_time, "start_time", errors)
        end = convert.instant(request.end_time, "end_time", errors)
        errors.check()
        async for batch in self._reports.export(start=start, end=end):
            yield admin_pb2.ExportBookingsResponse(rows=[row_to_proto(row) for row in batch])
