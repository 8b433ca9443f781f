"""Hostile and broken input: every RPC fed random and boundary values; garbage on the wire.

Part 1, property-based (hypothesis). For every RPC of every service the server registers (found in the
descriptors, so a new RPC is fuzzed without touching this file) requests are generated from the message
descriptors, recursively: empty, long and huge strings (up to and past the 1 MiB message limit), odd
unicode (NUL, BOM, bidi overrides, non-characters, astral planes; no lone surrogates, which protobuf
cannot carry), boundary and random integers, unknown enum values, far-past, far-future and
out-of-range timestamps and durations, repeated fields with thousands of items, page tokens that were
tampered with or replayed on another RPC, and resource names in odd shapes. RPCs with rich inputs also
have a valid template request (aimed at real resources seeded first), which is swept one field at a time
through that field's most hostile values (explicit examples) and mutated a few fields at a time
(generated examples), so hostile values also reach the code behind the first validation failure. Every
answer must be OK or a deliberate error code with a message (and, from our services, a
`google.rpc.Status` trailer); never INTERNAL, UNKNOWN, UNAVAILABLE or a crash; the server answers health
after each RPC's examples and logs no error. Calls are made as an admin and anonymously.

How hypothesis meets asyncio here: the server and its channel live on pytest-asyncio's session event
loop, which is busy running the test coroutine. The test hands the whole hypothesis run to a worker
thread (`asyncio.to_thread`); there each example is an ordinary synchronous call that submits the RPC to
the loop with `asyncio.run_coroutine_threadsafe` and waits for its outcome. Hypothesis thus runs
unmodified (generation, shrinking, the falsifying-example report), one server per test serves
every RPC's examples (a server per RPC would cost more than the fuzzing), and each RPC still gets its own
`@given` run, so a failure names the RPC and shows its shrunk request. Runs are derandomized: CI tries
the same examples every time and a failure reproduces with the same command (resource ids in the
printed example differ per run: they are the seeded resources of that run).

Part 2, raw bytes on the wire, through a socket and a minimal hand-written HTTP/2 client (no HTTP/2
library is a dependency): garbage instead of the connection preface, broken frames, a truncated gRPC
message, a length prefix beyond the limit, bytes that are not the method's protobuf, and keepalive
pings faster than the server permits. Each is refused cleanly and the server keeps serving others.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import hmac
import json
import logging
import random
import re
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from foothills.admin.v1 import admin_pb2, reports_pb2, support_pb2
from foothills.auth.v1 import auth_pb2, user_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.domain.users import Role
from foothills_rpc.policy import POLICY
from foothills_rpc.security.page_tokens import PageTokens
from foothills_rpc.server import MAX_MESSAGE_BYTES, SERVICE_NAMES
from tests.catalog_support import WEEKDAYS, duration, hours, mask, service_message, ts, weekly
from tests.conftest import PASSWORD, Caller, Running
from tests.reasons import recorders
from tests.support import TEST_SECRET, violations

# --- what may come back ----------------------------------------------------------------------------

DELIBERATE = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.RESOURCE_EXHAUSTED})
# grpc's own refusal of a request beyond grpc.max_receive_message_length (no status details: our code never ran).
TOO_LARGE = "Received message larger than max"
CALL_TIMEOUT = 30.0  # seconds; a hostile request that keeps the server busy longer is a finding too
STREAM_WAIT = 0.15  # seconds a streaming RPC may stay silent: open and waiting is a valid answer

# --- the RPCs --------------------------------------------------------------------------------------

_ = (health_pb2, reflection_pb2)  # imported for their descriptors
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


def _rpcs() -> list[tuple[str, MethodDescriptor]]:
    """Every method of every service the server registers (ours, health, reflection)."""
    pool = descriptor_pool.Default()
    return [(f"/{name}/{method.name}", method)
            for name in (*SERVICE_NAMES, HEALTH, REFLECTION)
            for method in pool.FindServiceByName(name).methods]


RPCS = _rpcs()


PROTECTED = {path for path, access in POLICY.items() if not access.public}


def _examples(path: str, anonymous: bool, templated: bool) -> int:
    """Generated examples per RPC (besides the template sweep): more where a valid template lets them reach
    deep, fewer for anonymous calls to protected RPCs (they end at authentication)."""
    if anonymous and path in PROTECTED:
        return 8
    return 40 if templated else 28


# --- the world the fuzzer aims at ------------------------------------------------------------------

CLOCK_START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # the `clock` fixture's start
SLOT = datetime(2030, 1, 8, 10, 0, tzinfo=UTC)  # a bookable slot of the seeded services
WEDNESDAY = datetime(2030, 1, 9, 9, 0, tzinfo=UTC)  # a slot the SetAvailability template closes


@dataclass
class World:
    """Real resources, so that generated requests also reach the code behind validation."""

    admin: Caller
    customer: Caller
    provider: Caller
    categories: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    bookings: list[str] = field(default_factory=list)
    support_requests: list[str] = field(default_factory=list)
    etags: list[str] = field(default_factory=list)
    page_tokens: list[str] = field(default_factory=list)  # real tokens, one or more per List RPC

    @property
    def admin_id(self) -> uuid.UUID:
        return uuid.UUID(self.admin.name.split("/")[1])

    @property
    def names(self) -> list[str]:
        """Every resource name, of any collection."""
        return [self.admin.name, self.customer.name, self.provider.name, *self.categories, *self.services,
                *(f"{s}/availability" for s in self.services), *self.bookings, *self.support_requests]

    @property
    def emails(self) -> list[str]:
        return [self.customer.email, self.provider.email]  # not the admin's: failed logins would lock it out


async def _seed(running: Running) -> World:
    world = World(admin=await running.signed_in("fuzz-admin@example.com", role=Role.ADMIN),
                  provider=await running.signed_in("fuzz-provider@example.com", role=Role.PROVIDER),
                  customer=await running.signed_in("fuzz-customer@example.com"))
    admin, provider, customer = world.admin, world.provider, world.customer
    for label, starts in (("Massage", (10, 11)), ("Yoga", (13, 14))):
        category = (await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name=label)), metadata=admin.metadata)).category
        # Booking limits: extreme instants once overflowed their calendar periods (an INTERNAL).
        service = (await running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
            service=service_message(category.name, capacity=3, booking_settings=catalog_pb2.BookingSettings(
                minimum_notice=duration(hours=1), maximum_days_ahead=60,
                max_bookings_per_day=20, max_bookings_per_week=40, max_bookings_per_month=80))),
            metadata=provider.metadata)).service
        await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
            availability=catalog_pb2.Availability(name=f"{service.name}/availability",
                                                  weekly_windows=weekly(WEEKDAYS, "09:00", "17:00"))),
            metadata=provider.metadata)
        world.categories.append(category.name)
        world.services.append(service.name)
        for hour in starts:
            booking = (await running.booking.CreateBooking(booking_pb2.CreateBookingRequest(
                service=service.name, start_time=ts(SLOT.replace(hour=hour)), seats=1,
                request_id=f"seed-{uuid.uuid4().hex}"), metadata=customer.metadata)).booking
            world.bookings.append(booking.name)
        # A released hold on Wednesday, which the SetAvailability template closes: a spent hold once
        # blocked removing its slot (an INTERNAL).
        hold = (await running.booking.HoldSlot(booking_pb2.HoldSlotRequest(
            service=service.name, start_time=ts(WEDNESDAY), request_id=f"seed-{uuid.uuid4().hex}"),
            metadata=customer.metadata)).hold
        await running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=hold.name), metadata=customer.metadata)
        support = (await running.admin.CreateSupportRequest(admin_pb2.CreateSupportRequestRequest(
            subject=f"About {label}", body="Where do I park?", booking=booking.name,
            request_id=f"seed-{uuid.uuid4().hex}"), metadata=customer.metadata)).support_request
        world.support_requests.append(support.name)
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=provider.name, reason="fuzz seed"),
                                    metadata=admin.metadata)
    await running.admin.EnableUser(admin_pb2.EnableUserRequest(name=provider.name), metadata=admin.metadata)
    # Read after the provider's disable and enable, which suspended and resumed (so changed) the services.
    world.etags += [(await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name))).service.etag
                    for name in world.services]
    # A real next-page token from every List RPC that has one to give.
    for path, method in RPCS:
        request_type = method.input_type
        if {"page_size", "page_token"} <= set(request_type.fields_by_name):
            call = running.channel.unary_unary(path, request_serializer=_serialize,
                                               response_deserializer=_message_class(method.output_type).FromString)
            response = await call(_message_class(request_type)(page_size=1), metadata=admin.metadata)
            if getattr(response, "next_page_token", ""):
                world.page_tokens.append(response.next_page_token)
    assert world.page_tokens, "the seed should give at least one List RPC a second page"
    return world


def _templates(world: World) -> dict[str, list[Message]]:
    """A valid request for the RPCs with rich inputs; the fuzzer mutates a few fields of it, so that
    hostile values also reach the code behind the first validation failure."""
    service, booking, support = world.services[0], world.bookings[0], world.support_requests[0]
    week = (ts(CLOCK_START), ts(CLOCK_START + timedelta(days=7)))
    rules = [catalog_pb2.PricingRule(adjustment_bps=2000, label="busy",
                                     occupancy=catalog_pb2.OccupancyCondition(min_occupancy_bps=5000)),
             catalog_pb2.PricingRule(adjustment_bps=-1000, label="early",
                                     lead_time=catalog_pb2.LeadTimeCondition(min_lead=duration(days=14))),
             catalog_pb2.PricingRule(adjustment_bps=500, days_of_week=catalog_pb2.DaysOfWeekCondition(days=WEEKDAYS)),
             catalog_pb2.PricingRule(adjustment_bps=700,
                                     hours_of_day=catalog_pb2.HoursOfDayCondition(start_hour=9, end_hour=12))]
    full_service = service_message(
        world.categories[0], capacity=2, cancellation_policy=catalog_pb2.CancellationPolicy(tiers=[
            catalog_pb2.CancellationTier(before_start=duration(hours=24), fee_bps=5000),
            catalog_pb2.CancellationTier(before_start=duration(hours=2), refused=True)]),
        pricing=catalog_pb2.PricingPolicy(rules=rules, floor_minor=1000, ceiling_minor=90_000))
    full_service.booking_settings.buffer_before.CopyFrom(duration(minutes=15))
    availability = catalog_pb2.Availability(
        name=f"{service}/availability", weekly_windows=weekly(WEEKDAYS, "09:00", "17:00"),
        overrides=[catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=9),
                                            kind=catalog_pb2.OVERRIDE_KIND_CLOSED),
                   catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=12),
                                            kind=catalog_pb2.OVERRIDE_KIND_EXTRA, hours=[hours("10:00", "12:00")])])
    return {
        "/foothills.auth.v1.AuthService/Register": [auth_pb2.RegisterRequest(
            email="fuzz-new@example.com", password=PASSWORD, display_name="New")],
        "/foothills.auth.v1.AuthService/Login": [auth_pb2.LoginRequest(email=world.customer.email, password=PASSWORD)],
        "/foothills.auth.v1.AuthService/UpdateProfile": [auth_pb2.UpdateProfileRequest(
            user=user_pb2.User(display_name="Ann", phone="+44 20 7946 0000", time_zone="Europe/London"),
            update_mask=mask("display_name", "phone", "time_zone"))],
        "/foothills.catalog.v1.CatalogService/CreateCategory": [catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Pilates", description="Core strength."))],
        "/foothills.catalog.v1.CatalogService/UpdateCategory": [catalog_pb2.UpdateCategoryRequest(
            category=catalog_pb2.Category(name=world.categories[1], display_name="Renamed"),
            update_mask=mask("display_name"))],
        "/foothills.catalog.v1.CatalogService/CreateService": [catalog_pb2.CreateServiceRequest(service=full_service)],
        "/foothills.catalog.v1.CatalogService/UpdateService": [catalog_pb2.UpdateServiceRequest(
            service=catalog_pb2.Service(name=world.services[1], display_name="Renamed", capacity=4,
                                        pricing=full_service.pricing, etag=world.etags[1]),
            update_mask=mask("display_name", "capacity", "pricing"))],
        "/foothills.catalog.v1.CatalogService/SetAvailability": [
            catalog_pb2.SetAvailabilityRequest(availability=availability)],
        "/foothills.catalog.v1.CatalogService/ListSlots": [catalog_pb2.ListSlotsRequest(
            service=service, start_time=week[0], end_time=week[1], seats=1)],
        "/foothills.catalog.v1.CatalogService/QuotePrice": [catalog_pb2.QuotePriceRequest(
            service=service, start_time=ts(SLOT.replace(hour=15)), seats=2)],
        "/foothills.catalog.v1.CatalogService/ListServices": [catalog_pb2.ListServicesRequest(
            page_size=10, query="massage", category=world.categories[0], min_price_minor=0, max_price_minor=10_000,
            currency_code="EUR", available_after=week[0], available_before=week[1],
            order_by=catalog_pb2.SERVICE_ORDER_SOONEST_AVAILABLE)],
        "/foothills.booking.v1.BookingService/CreateBooking": [booking_pb2.CreateBookingRequest(
            service=service, start_time=ts(SLOT.replace(hour=15)), seats=1, notes="Window seat",
            request_id="fuzz-booking")],
        "/foothills.booking.v1.BookingService/RescheduleBooking": [booking_pb2.RescheduleBookingRequest(
            name=booking, new_start_time=ts(SLOT.replace(hour=16)), request_id="fuzz-reschedule")],
        "/foothills.booking.v1.BookingService/CancelBooking": [booking_pb2.CancelBookingRequest(
            name=world.bookings[-1], reason="fuzz", override_policy=True)],
        "/foothills.booking.v1.BookingService/ListBookings": [booking_pb2.ListBookingsRequest(
            page_size=5, statuses=[booking_pb2.BOOKING_STATUS_CONFIRMED], start_after=week[0], start_before=week[1],
            service=service, order_by=booking_pb2.BOOKING_ORDER_SOONEST_FIRST)],
        "/foothills.booking.v1.BookingService/WatchBookings": [booking_pb2.WatchBookingsRequest(after_event_id="0")],
        "/foothills.admin.v1.AdminService/ListUsers": [admin_pb2.ListUsersRequest(
            page_size=5, query="fuzz", role=user_pb2.ROLE_CUSTOMER, disabled=False)],
        "/foothills.admin.v1.AdminService/SetUserRole": [admin_pb2.SetUserRoleRequest(
            name=world.customer.name, role=user_pb2.ROLE_CUSTOMER)],
        "/foothills.admin.v1.AdminService/CreateSupportRequest": [admin_pb2.CreateSupportRequestRequest(
            subject="Help", body="Please", booking=booking, request_id="fuzz-support")],
        "/foothills.admin.v1.AdminService/AddSupportMessage": [admin_pb2.AddSupportMessageRequest(
            name=support, body="More")],
        "/foothills.admin.v1.AdminService/AssignSupportRequest": [admin_pb2.AssignSupportRequestRequest(
            name=support, assignee=world.admin.name)],
        "/foothills.admin.v1.AdminService/SetSupportRequestStatus": [admin_pb2.SetSupportRequestStatusRequest(
            name=support, status=support_pb2.SUPPORT_REQUEST_STATUS_IN_PROGRESS)],
        "/foothills.admin.v1.AdminService/ListSupportRequests": [admin_pb2.ListSupportRequestsRequest(
            page_size=5, statuses=[support_pb2.SUPPORT_REQUEST_STATUS_OPEN], requester=world.customer.name,
            created_before=week[1])],
        "/foothills.admin.v1.AdminService/ResolveConflict": [admin_pb2.ResolveConflictRequest(
            booking=world.bookings[1], resolution=admin_pb2.CONFLICT_RESOLUTION_RESCHEDULE,
            new_start_time=ts(SLOT.replace(hour=12)), reason="fuzz")],
        "/foothills.admin.v1.AdminService/GetBookingStats": [admin_pb2.GetBookingStatsRequest(
            start_time=week[0], end_time=week[1], group_by=reports_pb2.STATS_GROUPING_DAY, top_services=3)],
        "/foothills.admin.v1.AdminService/ExportBookings": [admin_pb2.ExportBookingsRequest(
            start_time=week[0], end_time=week[1])],
        "/foothills.admin.v1.AdminService/ListAuditEvents": [admin_pb2.ListAuditEventsRequest(
            page_size=5, actor=world.admin.name, target=world.provider.name, start_time=week[0], end_time=week[1])],
    }


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


# --- strategies, from the descriptors --------------------------------------------------------------

ODD_TEXT = [
    "", " ", "  padded  ", "\x00", "a\x00b", "\t\r\n", "\x01\x1b[31m\x7f", "\u0085\u2028\u2029",
    "\u202e\u202dreversed", "\u200b\u200d\u2060", "\ufeffbom", "\ufffd", "\ufffe\uffff", "\U0010ffff",
    "\U0001f600\U0001f3f3\ufe0f\u200d\U0001f308", "e\u0301\u0301\u0301", "\u0130\u0131\u00df\ufb01",
    "\uff21\uff22", "\u0661\u0662\u0663", "%", "_", "\\", "%_\\%", "'", '"', "'; DROP TABLE users; --",
    "%00", "../../etc/passwd", "${jndi:ldap://x/a}", "{{7*7}}", "<script>alert(1)</script>", "null", "NaN",
    "-0", "1e309", "0x7fffffff",
]
HUGE_SIZES = [256, 1025, 4097, 65_537, 1_048_576 - 512, 1_048_576 + 1]  # bytes, UTF-8
HUGE_UNITS = ["a", "\u00e9", "\U0001f600", "\x00", "%", " "]


def _huge(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit.encode()))


TEXT = st.one_of(
    st.sampled_from(ODD_TEXT),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.text(st.characters(exclude_categories=["Cs"], min_codepoint=0x80), min_size=1, max_size=12),
    st.builds(_huge, st.sampled_from(HUGE_UNITS), st.sampled_from(HUGE_SIZES)),
)
EMAILS = st.sampled_from(["a@b", "@", "a@", "@b.c", "ANN@EXAMPLE.COM", "\u00fc@\u4f8b\u3048.jp",
                          "x" * 300 + "@example.com", "a@b.c\n", "a b@c.d", "\"q\"@example.com"])
TIME_ZONES = st.sampled_from(["UTC", "Europe/London", "", "Mars/Olympus", "../../etc/passwd", "/etc/localtime",
                              "Etc/GMT+14", "Etc/GMT-15", "EST5EDT", "posixrules", "localtime", "right/UTC",
                              "Factory", "europe/london", "Europe/London ", "Europe//London", "UTC\x00", "."])
CURRENCIES = st.sampled_from(["EUR", "USD", "JPY", "eur", "", "EURO", "E", "XXX", "\u20ac", "123", "E\x00R"])
EVENT_IDS = st.one_of(st.sampled_from(["0", "1", "-1", "00", "+1", " 1", "1.5", "1e3", "NaN", "\u0661",
                                       str(2**63), str(2**64), "9" * 400]),
                      st.integers(-(2**70), 2**70).map(str))
REQUEST_IDS = st.one_of(st.sampled_from(["fuzz-same-id", "x" * 64, "x" * 65, "a/b", "..", " "]), TEXT)
REFLECTION_SYMBOLS = st.sampled_from([*SERVICE_NAMES, HEALTH, "foothills.auth.v1.User", "google.protobuf.Timestamp",
                                      "foothills/auth/v1/auth.proto", "grpc/health/v1/health.proto", "*", ""])

NAME_FIELDS = {"name", "service", "booking", "customer", "provider", "category", "requester", "assignee", "actor",
               "target", "user", "parent"}
COLLECTIONS = ["users", "services", "categories", "bookings", "supportRequests", "auditEvents"]
NAME_SHAPES: list[Callable[[str], str]] = [
    lambda n: n,
    lambda n: n.upper(),
    lambda n: n + "\n",
    lambda n: " " + n,
    lambda n: n + "/",
    lambda n: n + "/extra",
    lambda n: n + "/availability/x",
    lambda n: n.split("/")[0] + "/",
    lambda n: n.split("/")[0],
    lambda n: n.split("/")[-1],
    lambda n: "/" + n,
    lambda n: n.replace("/", "//", 1),
    lambda n: n.replace("/", "/../", 1),
    lambda n: n.replace("/", "%2F", 1),
    lambda n: n[:-1],
    lambda n: n + "0",
    lambda n: f"{n.split('/')[0]}/{_dashed(n)}",
    lambda n: f"{n.split('/')[0]}/{{{_dashed(n)}}}",
    lambda n: f"{n.split('/')[0]}/urn:uuid:{_dashed(n)}",
    lambda n: f"{n.split('/')[0]}/{'0' * 32}",
    lambda n: f"{n.split('/')[0]}/{'f' * 32}",
    lambda n: f"{n.split('/')[0]}/-1",
    lambda n: f"{n.split('/')[0]}/{2**64}",
    lambda n: n.split("/")[0] + "/" + "\u0661" * 32,  # Arabic-Indic digits: int() reads them as hex
    lambda n: n.split("/")[0] + "/" + "\uff10" * 32,  # full-width zeros
    lambda n: f"{n.split('/')[0]}/{'a' * 10_000}",
    lambda n: f"{n.split('/')[0]}/{n.split('/')[1]}\x00",
]


def _dashed(name: str) -> str:
    raw = name.split("/")[1] if "/" in name else name
    try:
        return str(uuid.UUID(hex=raw[:32]))
    except ValueError:
        return raw


def _names(world: World, exclude: frozenset[str]) -> st.SearchStrategy[str]:
    names = [n for n in world.names if n not in exclude] or ["users/x"]
    foreign = [f"{collection}/{uuid.UUID(int=index * 0x1111_1111_1111).hex}"  # well-formed, of no resource
               for index, collection in enumerate(COLLECTIONS, start=1)]
    return st.one_of(
        st.sampled_from(names),
        st.builds(lambda shape, name: shape(name), st.sampled_from(NAME_SHAPES), st.sampled_from(names + foreign)),
        st.sampled_from(foreign),
        TEXT,
    )


def _tampered_tokens(world: World) -> st.SearchStrategy[str]:
    """Real tokens replayed anywhere, altered bit by bit, cut, extended, and re-signed with forged keys."""
    tokens = world.page_tokens
    signer = PageTokens(TEST_SECRET)  # the server's key in tests: forged tokens carry a valid signature

    def flip(token: str, position: int, bit: int) -> str:
        raw = bytearray(token.encode())
        raw[position % len(raw)] ^= 1 << bit
        return raw.decode("latin-1")

    def resign(token: str, key: object) -> str:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw[16:])
        payload["k"] = key
        body = json.dumps(payload, separators=(",", ":")).encode()
        mac = hmac.new(signer._key, body, hashlib.sha256).digest()[:16]  # the server's own signing key
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    keys = st.one_of(
        st.lists(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                           st.text(max_size=30), st.sampled_from(["2030-01-07T09:00:00+00:00", "not-a-uuid",
                                                                  "0" * 32, str(uuid.UUID(int=1))])),
                 max_size=4),
        st.sampled_from([None, 1, "k", {"a": 1}, [[1]], [None, None]]),
    )
    return st.one_of(
        st.sampled_from(tokens),
        st.builds(flip, st.sampled_from(tokens), st.integers(0, 400), st.integers(0, 7)),
        st.builds(lambda t, cut: t[:cut], st.sampled_from(tokens), st.integers(0, 60)),
        st.builds(lambda t, extra: t + extra, st.sampled_from(tokens), st.sampled_from(["=", "==", "A", "!", "\n"])),
        st.builds(resign, st.sampled_from(tokens), keys),
        st.sampled_from(["", "=", "A", "AAAA", "!!!!", "e30", "a" * 10_000]),
        TEXT,
    )


def _integers(bits: int, signed: bool, field_name: str) -> st.SearchStrategy[int]:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    edges = {0, 1, 2, 3, 7, 12, 13, 23, 24, 25, 29, 31, 32, 59, 60, 100, 199, 200, 201, 1000, 9999, 10_000,
             10_001, 86_400, 2**15, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, high - 1, high}
    if signed:
        edges |= {-1, -2, -(2**31), low + 1, low}
    special = sorted(e for e in edges if low <= e <= high)
    if field_name in {"seats", "page_size", "top_services", "capacity"}:
        special = [v for v in special if -2 <= v <= 300] + special  # likelier to pass validation
    return st.one_of(st.sampled_from(special), st.integers(low, high))


INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32: (32, True), FieldDescriptor.TYPE_SINT32: (32, True),
    FieldDescriptor.TYPE_SFIXED32: (32, True), FieldDescriptor.TYPE_INT64: (64, True),
    FieldDescriptor.TYPE_SINT64: (64, True), FieldDescriptor.TYPE_SFIXED64: (64, True),
    FieldDescriptor.TYPE_UINT32: (32, False), FieldDescriptor.TYPE_FIXED32: (32, False),
    FieldDescriptor.TYPE_UINT64: (64, False), FieldDescriptor.TYPE_FIXED64: (64, False),
}
SECONDS_EDGES = [0, 1, -1, 59, 60, 86_400, -62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800,
                 315_576_000_000, 315_576_000_001, -315_576_000_001, 2**31, 2**53, 2**63 - 1, -(2**63)]
NANOS_EDGES = [0, 1, -1, 999_999_999, 1_000_000_000, -999_999_999, -1_000_000_000, 2**31 - 1, -(2**31)]
NEAR = [CLOCK_START + timedelta(hours=h) for h in (-24 * 400, -24, -1, 0, 1, 25, 49, 24 * 89, 24 * 91, 24 * 3650)]
NEAR += [SLOT, SLOT.replace(hour=11), SLOT.replace(hour=16), SLOT.replace(hour=17)]
NEAR_SECONDS = [int(moment.timestamp()) for moment in NEAR]


def _instants(message_class: type[Message]) -> st.SearchStrategy[Message]:
    seconds = st.one_of(st.sampled_from(NEAR_SECONDS), st.sampled_from(SECONDS_EDGES), st.integers(-(2**63), 2**63 - 1))
    nanos = st.one_of(st.just(0), st.sampled_from(NANOS_EDGES), st.integers(-(2**31), 2**31 - 1))
    return st.builds(lambda s, n: message_class(seconds=s, nanos=n), seconds, nanos)


def _durations(message_class: type[Message]) -> st.SearchStrategy[Message]:
    seconds = st.one_of(st.sampled_from([0, 60, 900, 3600, 7200, 86_400, 86_400 * 90]),
                        st.sampled_from(SECONDS_EDGES), st.integers(-(2**63), 2**63 - 1))
    nanos = st.one_of(st.just(0), st.sampled_from(NANOS_EDGES), st.integers(-(2**31), 2**31 - 1))
    return st.builds(lambda s, n: message_class(seconds=s, nanos=n), seconds, nanos)


def _mask_paths(request: Descriptor) -> list[str]:
    """Field paths of the resources in `request` (for its update_mask), and paths that name nothing."""
    paths = ["", "*", "nope", "a.b.c", "name", "create_time", "etag", "role", "display_name ", "DISPLAY_NAME",
             "displayName", ".", "..", "name.", "\x00"]
    for resource in request.fields:
        if resource.type != FieldDescriptor.TYPE_MESSAGE or resource.message_type.full_name.startswith("google."):
            continue
        for inner in resource.message_type.fields:
            paths.append(inner.name)
            if inner.type == FieldDescriptor.TYPE_MESSAGE:
                paths += [f"{inner.name}.{leaf.name}" for leaf in inner.message_type.fields]
    return paths


def _assign(message: Message, item: FieldDescriptor, value: Any) -> None:
    if item.is_repeated:
        getattr(message, item.name).extend(value)
    elif item.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, item.name).CopyFrom(value)
    else:
        setattr(message, item.name, value)


def _repeat(item: object, count: int) -> list[object]:
    """`count` copies of `item`, but no more than about two message limits' worth of bytes."""
    size = item.ByteSize() if isinstance(item, Message) else len(str(item).encode()) + 2
    return [item] * min(count, max(1, 2 * MAX_MESSAGE_BYTES // max(size, 1)))


_CLEAR = object()
# Beyond both ends, then the ends of Timestamp's own range (year 1, 9999-12-31T23:59:59Z).
TIMESTAMP_EDGES = [{"seconds": 2**63 - 1}, {"seconds": -(2**63)}, {"seconds": 253_402_300_800},
                   {"seconds": -62_135_596_800}, {"seconds": 253_402_300_799},
                   {"seconds": NEAR_SECONDS[4], "nanos": -1}]
DURATION_EDGES = [{"seconds": 2**63 - 1}, {"seconds": -(2**63)}, {"seconds": -1}, {"seconds": 1, "nanos": -1}]


def _edges(item: FieldDescriptor, message: Message) -> list[Any]:
    """The most hostile values of one field, for the one-field-at-a-time sweep over a template."""
    current = getattr(message, item.name)
    if item.is_repeated:
        return [_CLEAR, *([[current[0]] * 1000] if len(current) else [])]
    if item.type == FieldDescriptor.TYPE_MESSAGE:
        kind = item.message_type.full_name
        message_class = _message_class(item.message_type)
        if kind == "google.protobuf.Timestamp":
            return [message_class(**edge) for edge in TIMESTAMP_EDGES]
        if kind == "google.protobuf.Duration":
            return [message_class(**edge) for edge in DURATION_EDGES]
        if kind == "google.protobuf.FieldMask":
            return [message_class(paths=["*"]), message_class(paths=["nope"]), message_class()]
        return [_CLEAR] if message.HasField(item.name) else []
    if item.type in INTEGER_TYPES:
        bits, signed = INTEGER_TYPES[item.type]
        return [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, -1] if signed else [2**bits - 1]
    if item.type == FieldDescriptor.TYPE_ENUM:
        return [99, -1]
    if item.type == FieldDescriptor.TYPE_BOOL:
        return [not current]
    if item.type == FieldDescriptor.TYPE_STRING:
        return ["", "x" * 300 + "@example.com", "\U0010ffff\u202e" * 3]
    if item.type == FieldDescriptor.TYPE_BYTES:
        return [b"", b"\xff" * 10_000]
    return [float("nan"), float("inf")]


def _sweep(template: Message) -> list[Sample]:
    """`template` with one field at a time set to each of its most hostile values (nested fields and the
    first item of repeated messages too), each labelled with what was changed."""
    variants: list[Sample] = []

    def visit(path: list[tuple[str, int | None]], message: Message) -> None:
        for item in message.DESCRIPTOR.fields:
            for value in _edges(item, message):
                variant = type(template)()
                variant.CopyFrom(template)
                target = variant
                for name, index in path:
                    target = getattr(target, name) if index is None else getattr(target, name)[index]
                target.ClearField(item.name)
                if value is not _CLEAR:
                    _assign(target, item, value)
                where = ".".join(n if i is None else f"{n}[{i}]" for n, i in [*path, (item.name, None)])
                variants.append(Sample(variant, f"{where} = {'cleared' if value is _CLEAR else _brief_any(value)}"))
            if item.type != FieldDescriptor.TYPE_MESSAGE or item.message_type.full_name.startswith("google.protobuf."):
                continue
            if item.is_repeated and len(getattr(message, item.name)):
                visit([*path, (item.name, 0)], getattr(message, item.name)[0])
            elif not item.is_repeated and message.HasField(item.name):
                visit([*path, (item.name, None)], getattr(message, item.name))

    visit([], template)
    return variants


def _brief_any(value: Any) -> str:
    if isinstance(value, Message):
        return _brief(value)
    if isinstance(value, list):
        return f"[{_brief_any(value[0])}] * {len(value)}"
    return _runs(value) if isinstance(value, str | bytes) and len(value) > 64 else repr(value)


@dataclass
class Fuzzer:
    world: World
    exclude_names: frozenset[str] = frozenset()
    _cache: dict[tuple[str, str], st.SearchStrategy[Any]] = field(default_factory=dict)

    def request(self, descriptor: Descriptor, templates: list[Message]) -> st.SearchStrategy[Message]:
        """Mutated templates first (so failures shrink towards a valid request), then anything at all."""
        paths = _mask_paths(descriptor)
        return st.one_of(*(self._mutated(t, depth=0, mask_paths=paths) for t in templates),
                         self._message(descriptor, depth=0, mask_paths=paths))

    def _mutated(self, template: Message, *, depth: int, mask_paths: list[str]) -> st.SearchStrategy[Message]:
        """`template` with some fields kept, some cleared, some replaced by generated values, and (in
        message fields) some mutated in turn."""
        plans = []
        for item in template.DESCRIPTOR.fields:
            generated = self._field(item, depth, mask_paths)
            if generated is None:
                continue
            present = (len(getattr(template, item.name)) > 0 if item.is_repeated
                       else template.HasField(item.name) if item.has_presence
                       else getattr(template, item.name) != item.default_value)
            nested = None
            if present and item.type == FieldDescriptor.TYPE_MESSAGE and not item.is_repeated:
                nested = self._mutated(getattr(template, item.name), depth=depth + 1, mask_paths=mask_paths)
            if not present:
                actions = ["keep"] * 5 + ["replace"]
            else:
                actions = ["keep"] * 4 + ["clear", "replace"] + (["mutate"] * 2 if nested is not None else [])
            plans.append((item, st.sampled_from(actions), generated, nested))

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            message = type(template)()
            message.CopyFrom(template)
            for item, actions, generated, nested in plans:
                action = draw(actions)
                if action == "keep":
                    continue
                message.ClearField(item.name)
                if action == "clear":
                    continue
                _assign(message, item, draw(nested if action == "mutate" else generated))
            return message

        return build()

    def _message(self, descriptor: Descriptor, *, depth: int, mask_paths: list[str]) -> st.SearchStrategy[Message]:
        message_class = _message_class(descriptor)
        name = descriptor.full_name
        if name == "google.protobuf.Timestamp":
            return _instants(message_class)
        if name == "google.protobuf.Duration":
            return _durations(message_class)
        if name == "google.protobuf.FieldMask":
            paths = st.sampled_from(mask_paths)
            return st.builds(lambda p: message_class(paths=p),
                             st.one_of(st.lists(paths, max_size=5), st.builds(_repeat, paths, st.just(5000))))
        fields = [(f, self._field(f, depth, mask_paths)) for f in descriptor.fields]
        real_oneofs = [o for o in descriptor.oneofs if not (len(o.fields) == 1 and o.name == f"_{o.fields[0].name}")]

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            message = message_class()
            chosen = {o.full_name: draw(st.sampled_from([None, *o.fields])) for o in real_oneofs}
            for item, strategy in fields:
                if strategy is None:
                    continue
                oneof = item.containing_oneof
                if oneof is not None and oneof.full_name in chosen:
                    if chosen[oneof.full_name] is not item:
                        continue
                elif not draw(st.booleans()):
                    continue
                _assign(message, item, draw(strategy))
            return message

        return build()

    def _field(self, item: FieldDescriptor, depth: int, mask_paths: list[str]) -> st.SearchStrategy[Any] | None:
        if item.type == FieldDescriptor.TYPE_MESSAGE:
            if item.message_type.GetOptions().map_entry or depth >= 5:
                return None
            single = self._message(item.message_type, depth=depth + 1, mask_paths=mask_paths)
        else:
            single = self._scalar(item)
        if not item.is_repeated:
            return single
        many = st.builds(_repeat, single, st.sampled_from([100, 1000, 20_000]))
        return st.one_of(st.lists(single, max_size=4), many)

    def _scalar(self, item: FieldDescriptor) -> st.SearchStrategy[Any]:
        key = (item.full_name, item.name)
        if key not in self._cache:
            self._cache[key] = self._make_scalar(item)
        return self._cache[key]

    def _make_scalar(self, item: FieldDescriptor) -> st.SearchStrategy[Any]:
        kind, name = item.type, item.name
        if kind in INTEGER_TYPES:
            return _integers(*INTEGER_TYPES[kind], name)
        if kind == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return st.floats(width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [v.number for v in item.enum_type.values]
            unknown = [-1, max(known) + 1, 99, 2**31 - 1, -(2**31)]
            return st.one_of(st.sampled_from(known), st.sampled_from(unknown), st.integers(-(2**31), 2**31 - 1))
        if kind == FieldDescriptor.TYPE_BYTES:
            return st.one_of(st.binary(max_size=64), st.builds(lambda n: b"\xff" * n, st.sampled_from(HUGE_SIZES)))
        if name in NAME_FIELDS:
            return _names(self.world, self.exclude_names)
        if name == "page_token":
            return _tampered_tokens(self.world)
        if name == "etag":
            etags = st.sampled_from(self.world.etags)
            return st.one_of(etags, etags.map(lambda e: e + "x"), st.sampled_from(['W/"x"', '"', "*"]), TEXT)
        if name == "email":
            return st.one_of(st.sampled_from(self.world.emails), EMAILS, TEXT)
        if name == "time_zone":
            return st.one_of(TIME_ZONES, TEXT)
        if name == "currency_code":
            return st.one_of(CURRENCIES, TEXT)
        if name in {"after_event_id", "event_id"}:
            return st.one_of(EVENT_IDS, TEXT)
        if name == "request_id":
            return REQUEST_IDS
        if name in {"file_by_filename", "file_containing_symbol", "containing_type", "all_extension_numbers_of_type",
                    "list_services"}:
            return st.one_of(REFLECTION_SYMBOLS, TEXT)
        return TEXT


class Sample:
    """A generated request with a short, exact repr (hypothesis reprs every example; the generated huge
    strings are long runs of one character, so `'a' * 1048064` says it all)."""

    def __init__(self, message: Message, change: str = "") -> None:
        self.message = message
        self.change = change  # for the template sweep: which field holds which hostile value

    def __repr__(self) -> str:
        return f"{_brief(self.message)}  # {self.change}" if self.change else _brief(self.message)


@st.composite
def _samples(draw: st.DrawFn, messages: st.SearchStrategy[Message]) -> Sample:
    return Sample(draw(messages))  # built here, not by .map(): hypothesis would print the message's own repr


def _brief(message: Message) -> str:
    parts = []
    for item, value in message.ListFields():
        if item.is_repeated:
            values = list(value)
            shown = ", ".join(_brief_value(item, v) for v in values[:3])
            parts.append(f"{item.name}=[{shown}{f', ... ({len(values)} items)' if len(values) > 3 else ''}]")
        else:
            parts.append(f"{item.name}={_brief_value(item, value)}")
    return f"{message.DESCRIPTOR.name}({', '.join(parts)})"


def _brief_value(item: FieldDescriptor, value: Any) -> str:
    if isinstance(value, Message):
        return _brief(value)
    if isinstance(value, str | bytes) and len(value) > 64:
        return _runs(value)
    if item.type == FieldDescriptor.TYPE_ENUM:
        known = item.enum_type.values_by_number.get(value)
        return known.name if known is not None else f"{value} (unknown)"
    return repr(value)


_RUN = re.compile(r"((.)\2{7,})", re.S)
_BYTE_RUN = re.compile(rb"((.)\2{7,})", re.S)


def _runs(value: str | bytes) -> str:
    """An exact, short expression for a long string made of long runs: `'x' * 300 + '@example.com'`."""
    parts: list[str] = []
    position = 0
    for run in (_RUN if isinstance(value, str) else _BYTE_RUN).finditer(value):
        if run.start() > position:
            parts.append(repr(value[position:run.start()]))
        parts.append(f"{run.group(2)!r} * {len(run.group(1))}")
        position = run.end()
    if position < len(value):
        parts.append(repr(value[position:]))
    text = " + ".join(parts)
    return text if len(text) <= 400 else f"{value[:48]!r}...({len(value)} long)"


# --- calling any RPC from its descriptor -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    trailing: tuple[tuple[str, str | bytes], ...]


async def _invoke(channel: grpc.aio.Channel, path: str, method: MethodDescriptor, request: Message,
                  metadata: tuple[tuple[str, str], ...]) -> Outcome:
    """One call; a streaming RPC is read for at most one message (silence for STREAM_WAIT is a valid answer)."""
    kwargs = {"request_serializer": _serialize,
              "response_deserializer": _message_class(method.output_type).FromString}
    try:
        if not method.server_streaming:
            call = channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=CALL_TIMEOUT)
            await call
            return Outcome(grpc.StatusCode.OK, "", ())
        if method.client_streaming:
            stream = channel.stream_stream(path, **kwargs)(iter([request]), metadata=metadata, timeout=CALL_TIMEOUT)
        else:
            stream = channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=CALL_TIMEOUT)
        read = asyncio.ensure_future(stream.read())
        done, _ = await asyncio.wait({read}, timeout=STREAM_WAIT)
        if not done:
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await read
            return Outcome(grpc.StatusCode.OK, "open", ())
        read.result()
        stream.cancel()
        return Outcome(grpc.StatusCode.OK, "", ())
    except grpc.aio.AioRpcError as error:
        return Outcome(error.code(), error.details() or "", tuple(error.trailing_metadata() or ()))


def _problem(path: str, outcome: Outcome) -> str | None:
    """Why `outcome` is not an acceptable answer, or None."""
    code = outcome.code
    if code == grpc.StatusCode.OK:
        return None
    if path.startswith("/grpc.") and code == grpc.StatusCode.UNIMPLEMENTED:
        return None  # grpc's own services may lack a newer method (grpcio-health-checking has no aio List)
    if code not in DELIBERATE:
        return f"{path} answered {code.name}: {outcome.details!r}"
    if path.startswith(f"/{HEALTH}/") and code == grpc.StatusCode.NOT_FOUND:
        return None  # the gRPC health protocol's answer for an unknown service; grpc sends it without a message
    if not outcome.details.strip():
        return f"{path} answered {code.name} without a message"
    if (path.startswith("/foothills.") and TOO_LARGE not in outcome.details
            and not any(key == "grpc-status-details-bin" for key, _ in outcome.trailing)):
        return f"{path} answered {code.name} {outcome.details!r} without google.rpc.Status details"
    return None


class _ServerErrors(logging.Handler):
    """Keeps every ERROR the server logs (our pipeline's "unexpected error" lines, grpc's own)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        with self._records_lock:
            self.records.append(text)

    def since(self, mark: int) -> list[str]:
        with self._records_lock:
            return self.records[mark:]


@pytest.fixture
def server_errors() -> Iterator[_ServerErrors]:
    handler = _ServerErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


# --- the property ----------------------------------------------------------------------------------

# Set once the admin's session ends (Logout) or may have ended (a password or profile change): sign in again.
SESSION_CHANGING = {"/foothills.auth.v1.AuthService/Logout", "/foothills.auth.v1.AuthService/ChangePassword",
                    "/foothills.auth.v1.AuthService/UpdateProfile", "/foothills.auth.v1.AuthService/ResetPassword",
                    "/foothills.auth.v1.AuthService/RefreshToken"}
# Would lock the fuzzing admin out (demote or disable it): the admin's own name is not offered to these.
SELF_HARM = {"/foothills.admin.v1.AdminService/SetUserRole", "/foothills.admin.v1.AdminService/DisableUser"}


@dataclass
class Session:
    running: Running
    world: World
    anonymous: bool
    tried: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return () if self.anonymous else self.world.admin.metadata

    async def ensure_admin(self) -> None:
        """Signs the admin in again when a fuzzed call ended its session."""
        try:
            await self.running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=self.world.admin.metadata)
            return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise
        user = await self.running.server.components.users.get(self.world.admin_id)
        login = await self.running.login(user.email)
        self.world.admin = Caller(name=self.world.admin.name, email=user.email, credentials=login.credentials)


def _fuzz_one_rpc(session: Session, loop: asyncio.AbstractEventLoop, path: str, method: MethodDescriptor,
                  errors: _ServerErrors) -> None:
    """Runs hypothesis for one RPC, in the calling (worker) thread; raises on the first shrunk failure."""
    exclude = frozenset({session.world.admin.name}) if path in SELF_HARM else frozenset()
    templates = _templates(session.world).get(path, [])
    strategy = _samples(Fuzzer(session.world, exclude_names=exclude).request(method.input_type, templates))

    def on_loop(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=CALL_TIMEOUT + 30)

    def check(request: Sample) -> None:
        mark = len(errors.records)
        session.tried[path] += 1
        outcome = on_loop(_invoke(session.running.channel, path, method, request.message, session.metadata))
        session.codes[outcome.code.name] += 1
        if path in SESSION_CHANGING and not session.anonymous:
            on_loop(session.ensure_admin())
        problem = _problem(path, outcome)
        logged = errors.since(mark)
        assert problem is None, problem + ("\nserver log:\n" + "\n".join(logged) if logged else "")

    check.__name__ = check.__qualname__ = "fuzz_" + path.strip("/").replace("/", "_").replace(".", "_")
    test = given(request=strategy)(check)
    if not (session.anonymous and path in PROTECTED):
        for template in templates:
            for variant in _sweep(template):
                test = example(request=variant)(test)
    test = settings(max_examples=_examples(path, session.anonymous, bool(templates)), derandomize=True,
                    database=None, deadline=None, suppress_health_check=list(HealthCheck), print_blob=False,
                    report_multiple_bugs=False, phases=[Phase.explicit, Phase.generate, Phase.shrink])(test)
    test()


async def _health(running: Running) -> int:
    answer = await health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(answer.status)


@pytest.mark.parametrize("caller", ["admin", "anonymous"])
async def test_every_rpc_answers_hostile_requests_with_ok_or_a_deliberate_error(
        running: Running, caller: str, server_errors: _ServerErrors) -> None:
    """Property: whatever the request, the answer is OK or a deliberate error code with a message
    (from our services with `google.rpc.Status` details); never INTERNAL, UNKNOWN or UNAVAILABLE; the
    server still answers health SERVING after each RPC's examples and logs no error. Every RPC is tried;
    each failing RPC is reported with its shrunk request, the server's traceback included."""
    world = await _seed(running)
    session = Session(running, world, anonymous=caller == "anonymous")
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    for path, method in RPCS:
        if not session.anonymous:
            await session.ensure_admin()
        try:
            await asyncio.to_thread(_fuzz_one_rpc, session, loop, path, method, server_errors)
        except Exception as exc:  # hypothesis re-raises the shrunk failure with the example as a note
            failures.append(f"--- {path}\n{_report(exc)[:20_000]}")
        assert await _health(running) == health_pb2.HealthCheckResponse.SERVING, f"health after {path}"
    total = sum(session.tried.values())
    print(f"\nfuzzed {total} requests over {len(session.tried)} RPCs as {caller}; answers: {dict(session.codes)}")
    gc.collect()  # finalizes abandoned stream handlers, whose clean-up may log too
    await asyncio.sleep(0.2)
    logged = _distinct(server_errors.records)
    assert not failures and not logged, (
        f"{len(failures)} RPC(s) failed:\n\n" + "\n\n".join(failures)
        + f"\n\nThe server logged {len(logged)} distinct error(s):\n\n" + "\n\n".join(logged))
    assert set(session.tried) == {path for path, _ in RPCS}


def _report(error: BaseException) -> str:
    """The message and notes (hypothesis's falsifying example) of `error`, or of each distinct failure."""
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(_report(inner) for inner in error.exceptions)
    return "".join(traceback.format_exception_only(error))


def _distinct(records: list[str]) -> list[str]:
    """One record per kind of error (request ids and addresses blanked out for the comparison)."""
    seen: dict[str, str] = {}
    for record in records:
        seen.setdefault(re.sub(r"0x[0-9a-f]+|[0-9a-f]{32}|Task-\d+", "#", record.splitlines()[0]), record)
    return list(seen.values())


# --- raw bytes on the wire -------------------------------------------------------------------------

# The wire tests exercise grpc's transport, not the database: one backend is enough.
WIRE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
ENHANCE_YOUR_CALM = 0xB
GRPC_RESOURCE_EXHAUSTED = 8

# RFC 7541 appendix A; names only, plus the values of the entries that have one.
_STATIC_NAMES = [
    ":authority", ":method", ":method", ":path", ":path", ":scheme", ":scheme", ":status", ":status", ":status",
    ":status", ":status", ":status", ":status", "accept-charset", "accept-encoding", "accept-language",
    "accept-ranges", "accept", "access-control-allow-origin", "age", "allow", "authorization", "cache-control",
    "content-disposition", "content-encoding", "content-language", "content-length", "content-location",
    "content-range", "content-type", "cookie", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "link", "location",
    "max-forwards", "proxy-authenticate", "proxy-authorization", "range", "referer", "refresh", "retry-after",
    "server", "set-cookie", "strict-transport-security", "transfer-encoding", "user-agent", "vary", "via",
    "www-authenticate"
]
_STATIC_VALUES = {2: "GET", 3: "POST", 4: "/", 5: "/index.html", 6: "http", 7: "https", 8: "200", 9: "204",
                  10: "206", 11: "304", 12: "400", 13: "404", 14: "500", 16: "gzip, deflate"}
STATIC_TABLE = [(name, _STATIC_VALUES.get(index, "")) for index, name in enumerate(_STATIC_NAMES, start=1)]


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int, prefix: int, first: int = 0) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_headers(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, no Huffman coding: the simplest valid HPACK."""
    block = bytearray()
    for name, value in headers:
        block += b"\x00" + _hpack_int(len(name), 7) + name.encode() + _hpack_int(len(value), 7) + value.encode()
    return bytes(block)


class HpackDecoder:
    """Enough HPACK to read grpc-status and grpc-message (grpc sends those without Huffman coding)."""

    def __init__(self) -> None:
        self.dynamic: list[tuple[str, str | None]] = []
        self.max_size = 4096

    def _entry(self, index: int) -> tuple[str, str | None]:
        return STATIC_TABLE[index - 1] if index <= len(STATIC_TABLE) else self.dynamic[index - len(STATIC_TABLE) - 1]

    @staticmethod
    def _int(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
        limit = (1 << prefix) - 1
        value, pos = block[pos] & limit, pos + 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            byte, pos = block[pos], pos + 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    def _string(self, block: bytes, pos: int) -> tuple[str | None, int]:
        huffman = block[pos] & 0x80
        length, pos = self._int(block, pos, 7)
        raw = block[pos:pos + length]
        return (None if huffman else raw.decode("latin-1")), pos + length

    def _add(self, name: str, value: str | None) -> None:
        self.dynamic.insert(0, (name, value))
        while self.dynamic and sum(len(n) + len(v or "") + 32 for n, v in self.dynamic) > self.max_size:
            self.dynamic.pop()

    def decode(self, block: bytes) -> dict[str, str | None]:
        headers: dict[str, str | None] = {}
        pos = 0
        while pos < len(block):
            byte = block[pos]
            if byte & 0x80:  # indexed
                index, pos = self._int(block, pos, 7)
                name, value = self._entry(index)
            elif byte & 0x20 and not byte & 0x40:  # dynamic table size update
                self.max_size, pos = self._int(block, pos, 5)
                continue
            else:  # literal: with incremental indexing (0x40), without or never indexed
                indexing = bool(byte & 0x40)
                index, pos = self._int(block, pos, 6 if indexing else 4)
                if index:
                    name = self._entry(index)[0]
                else:
                    decoded, pos = self._string(block, pos)
                    name = decoded or "?huffman"
                value, pos = self._string(block, pos)
                if indexing:
                    self._add(name, value)
            headers[name] = value
        return headers


@dataclass
class Answer:
    """What the server did with one raw exchange."""

    headers: dict[str, str | None] = field(default_factory=dict)
    rst_stream: int | None = None
    goaway: tuple[int, bytes] | None = None
    closed: bool = False

    @property
    def grpc_status(self) -> int | None:
        value = self.headers.get("grpc-status")
        return None if value is None else int(value)


class RawHttp2:
    """A socket speaking just enough HTTP/2 to send malformed gRPC and read the server's verdict."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.hpack = HpackDecoder()

    @classmethod
    async def connect(cls, port: int) -> RawHttp2:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def handshake(self) -> None:
        self.writer.write(PREFACE + frame(SETTINGS, 0, 0))
        await self.writer.drain()

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self) -> tuple[int, int, int, bytes] | None:
        try:
            head = await self.reader.readexactly(9)
            payload = await self.reader.readexactly(int.from_bytes(head[:3], "big"))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, payload

    async def answer(self, stream: int = 1, within: float = 10.0) -> Answer:
        """Frames until `stream` ends (trailers or RST_STREAM), a GOAWAY arrives or the socket closes."""
        answer = Answer()
        block = b""
        async with asyncio.timeout(within):
            while True:
                received = await self.read_frame()
                if received is None:
                    answer.closed = True
                    return answer
                kind, flags, sid, payload = received
                if kind == SETTINGS and not flags & ACK:
                    self.send(frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    self.send(frame(PING, ACK, 0, payload))
                elif kind == GOAWAY:
                    answer.goaway = (int.from_bytes(payload[4:8], "big"), payload[8:])
                    return answer
                elif kind == RST_STREAM and sid == stream:
                    answer.rst_stream = int.from_bytes(payload[:4], "big")
                    return answer
                elif kind in (HEADERS, CONTINUATION) and sid == stream:
                    block += _header_block(kind, flags, payload)
                    if flags & END_HEADERS:
                        answer.headers.update(self.hpack.decode(block))
                        block = b""
                        if flags & END_STREAM or "grpc-status" in answer.headers:
                            return answer

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def _header_block(kind: int, flags: int, payload: bytes) -> bytes:
    if kind == HEADERS:
        if flags & 0x8:  # PADDED
            payload = payload[1:len(payload) - payload[0]]
        if flags & 0x20:  # PRIORITY
            payload = payload[5:]
    return payload


def grpc_request_headers(port: int, path: str) -> bytes:
    return hpack_headers([(":method", "POST"), (":scheme", "http"), (":path", path),
                          (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                          ("te", "trailers")])


def grpc_message(payload: bytes, *, declared: int | None = None) -> bytes:
    """The 5-byte gRPC prefix (uncompressed, length) and the payload; `declared` lies about the length."""
    return b"\x00" + (len(payload) if declared is None else declared).to_bytes(4, "big") + payload


HEALTH_CHECK = f"/{HEALTH}/Check"


async def _serving(running: Running) -> None:
    """Another, well-behaved client is served."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=recorders()) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _health_call(port: int, stream: int) -> bytes:
    return (frame(HEADERS, END_HEADERS, stream, grpc_request_headers(port, HEALTH_CHECK))
            + frame(DATA, END_STREAM, stream, grpc_message(health_pb2.HealthCheckRequest().SerializeToString())))


_SETTINGS = PREFACE + frame(SETTINGS, 0, 0)
# What grpc does with each, as observed with grpcio 1.85: "closed" (the connection is dropped, possibly after
# a GOAWAY with an error code), "refused" (the stream ends with a non-OK grpc-status from grpc itself; the
# connection lives on), "ignored" (grpc skips it; a good call on the same connection then succeeds).
GARBAGE = [
    pytest.param(random.Random(8).randbytes(4096), "closed", id="random-bytes"),  # noqa: S311  # fixed garbage
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "closed", id="http1-request"),
    pytest.param(bytes.fromhex("16030100f8010000f40303") + bytes(240), "closed", id="tls-client-hello"),
    pytest.param(PREFACE + b"\xff" * 64, "closed", id="preface-then-garbage"),
    pytest.param(_SETTINGS + (2**24 - 1).to_bytes(3, "big") + bytes([DATA, 0, 0, 0, 0, 1]), "closed",
                 id="frame-beyond-max-frame-size"),
    pytest.param(PREFACE + frame(SETTINGS, 0, 0, b"\x00\x04\xff\xff\xff\xff"), "closed", id="window-beyond-2^31"),
    pytest.param(_SETTINGS + frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff"), "refused",
                 id="headers-with-broken-hpack"),
    pytest.param(_SETTINGS + frame(DATA, 0, 0, b"x"), "ignored", id="data-on-stream-0"),
    pytest.param(_SETTINGS + frame(0xEE, 0xFF, 7, b"unknown frame type"), "ignored", id="unknown-frame-type"),
]


@WIRE
@pytest.mark.parametrize(("garbage", "expected"), GARBAGE)
async def test_garbage_on_the_wire_is_refused_and_the_server_keeps_serving(
        running: Running, garbage: bytes, expected: str, server_errors: _ServerErrors) -> None:
    """Garbage never reaches our code: grpc drops the connection, refuses the stream or skips the frame,
    and every other client is still served."""
    raw = await RawHttp2.connect(running.port)
    raw.send(garbage + (_health_call(running.port, 1) if expected == "ignored" else b""))
    await raw.writer.drain()
    answer = await raw.answer(stream=1, within=10)
    await raw.close()
    if expected == "closed":
        assert answer.closed or (answer.goaway is not None and answer.goaway[0] != 0), answer
    elif expected == "refused":
        assert answer.grpc_status not in (None, 0), answer
    else:
        assert answer.grpc_status == 0, answer
    assert not any("unexpected error" in line for line in server_errors.records)
    await _serving(running)


@WIRE
async def test_a_frame_cut_off_mid_way_and_a_peer_vanishing_mid_preface_do_no_harm(running: Running) -> None:
    half = await RawHttp2.connect(running.port)
    half.send(PREFACE[:10])
    await half.writer.drain()
    raw = await RawHttp2.connect(running.port)
    await raw.handshake()
    whole = frame(HEADERS, END_HEADERS, 1, grpc_request_headers(running.port, HEALTH_CHECK))
    raw.send(whole[: len(whole) // 2])
    await raw.writer.drain()
    await _serving(running)  # while both are still connected
    await half.close()
    await raw.close()
    await _serving(running)


@WIRE
async def test_a_truncated_grpc_message_never_reaches_a_handler(running: Running) -> None:
    """The prefix promises 100 bytes, 3 arrive, then the client ends the stream. grpcio 1.85 neither
    answers nor runs a handler: the stream waits until the client goes away (it holds no admission
    slot, since our pipeline has not run). Other streams on the same connection, and other clients, are
    served meanwhile; closing the connection frees it."""
    raw = await RawHttp2.connect(running.port)
    await raw.handshake()
    raw.send(frame(HEADERS, END_HEADERS, 1, grpc_request_headers(running.port, HEALTH_CHECK))
             + frame(DATA, END_STREAM, 1, grpc_message(b"\x0a\x01x", declared=100)))
    await raw.writer.drain()
    try:
        truncated = await raw.answer(stream=1, within=1.0)
    except TimeoutError:
        truncated = None  # still waiting for the rest of the message
    assert truncated is None or truncated.grpc_status not in (None, 0), truncated
    raw.send(_health_call(running.port, 3))
    assert (await raw.answer(stream=3)).grpc_status == 0
    await _serving(running)
    await raw.close()
    await _serving(running)


@WIRE
async def test_a_length_prefix_beyond_the_limit_is_resource_exhausted(running: Running) -> None:
    """The prefix announces more than grpc.max_receive_message_length; grpc refuses it with
    RESOURCE_EXHAUSTED before the body arrives, and the connection stays usable."""
    raw = await RawHttp2.connect(running.port)
    await raw.handshake()
    raw.send(frame(HEADERS, END_HEADERS, 1, grpc_request_headers(running.port, HEALTH_CHECK))
             + frame(DATA, 0, 1, grpc_message(b"\x0a\x00", declared=MAX_MESSAGE_BYTES + 1)))
    answer = await raw.answer(stream=1)
    assert answer.grpc_status == GRPC_RESOURCE_EXHAUSTED, answer
    assert TOO_LARGE in (answer.headers.get("grpc-message") or ""), answer
    # The same connection still serves a well-formed call.
    raw.send(_health_call(running.port, 3))
    again = await raw.answer(stream=3)
    await raw.close()
    assert again.grpc_status == 0, again
    await _serving(running)


def _raw_call(running: Running, path: str, payload: bytes) -> Any:
    return running.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)(
        payload, timeout=10)


@WIRE
@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1], ids=["at-the-limit", "one-byte-over"])
async def test_the_message_limit_is_exact(running: Running, size: int) -> None:
    """A RegisterRequest of exactly 1 MiB reaches our validation; one byte more is refused by grpc."""
    request = auth_pb2.RegisterRequest(email="big@example.com", password=PASSWORD)
    request.display_name = "a" * (size - request.ByteSize() - 4)  # tag 1 byte, length 3 bytes
    payload = request.SerializeToString()
    assert len(payload) == size
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_call(running, "/foothills.auth.v1.AuthService/Register", payload)
    if size > MAX_MESSAGE_BYTES:
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert TOO_LARGE in (caught.value.details() or "")
    else:
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # the display name is far too long
    await _serving(running)


NOT_PROTOBUF = [
    pytest.param(b"\xff", id="bad-tag"),
    pytest.param(b"\x0f", id="wire-type-7"),
    pytest.param(b"\x08", id="truncated-varint"),
    pytest.param(b"\x08" + b"\xff" * 11, id="varint-longer-than-10-bytes"),
    pytest.param(b"\x0a\x05ab", id="truncated-length-delimited"),
    pytest.param(b"\x0a\xff\xff\xff\xff\x0f", id="length-beyond-the-message"),
    pytest.param(b"\x0b\x0a\x01x", id="unterminated-group"),
]
FOOTHILLS_UNARY = [(path, method) for path, method in RPCS
                   if path.startswith("/foothills.") and not method.server_streaming]


def _refused_as_malformed(error: grpc.aio.AioRpcError) -> bool:
    """INVALID_ARGUMENT with our status details and reason MALFORMED_REQUEST (grpc.aio alone would say
    UNKNOWN "Unexpected <class 'google.protobuf.message.DecodeError'>"; the pipeline's tolerant
    deserializer turns it into a clean refusal)."""
    return error.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(error) == {"request": "MALFORMED_REQUEST"}


@WIRE
@pytest.mark.parametrize("payload", NOT_PROTOBUF)
async def test_bytes_that_are_not_the_methods_protobuf_are_refused_before_any_handler(
        running: Running, payload: bytes, server_errors: _ServerErrors) -> None:
    """Every unary RPC of ours, sent bytes that do not parse as its request message: INVALID_ARGUMENT,
    reason MALFORMED_REQUEST, before any servicer runs; no "unexpected error"; the server keeps serving."""
    for path, _method in FOOTHILLS_UNARY:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _raw_call(running, path, payload)
        if POLICY[path].public:
            assert _refused_as_malformed(caught.value), (path, caught.value)
        else:  # no token: authentication comes first, before the bytes are looked at
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, (path, caught.value)
    assert not any("unexpected error" in line for line in server_errors.records)
    await _serving(running)


@WIRE
async def test_invalid_utf8_in_a_string_field_is_refused_before_any_handler(running: Running) -> None:
    """proto3 strings must be UTF-8; protobuf's parser refuses other bytes, so grpc answers as above."""
    assert auth_pb2.LoginRequest.DESCRIPTOR.fields_by_number[1].type == FieldDescriptor.TYPE_STRING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_call(running, "/foothills.auth.v1.AuthService/Login", b"\x0a\x02\xc3\x28")
    assert _refused_as_malformed(caught.value), caught.value
    await _serving(running)


@WIRE
async def test_pings_faster_than_permitted_get_goaway_and_others_are_still_served(running: Running) -> None:
    """grpc's server defaults already enforce a ping policy, no option needed:
    grpc.keepalive_permit_without_calls = 0 and grpc.http2.min_ping_interval_without_data_ms = 300000
    (5 min) make every ping on an idle connection after the first a strike, and beyond
    grpc.http2.max_ping_strikes = 2 the server sends GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and closes
    the connection: on the 4th ping of a client pinging every few milliseconds. Others are still served."""
    raw = await RawHttp2.connect(running.port)
    await raw.handshake()
    goaway, pings = None, 0
    while goaway is None and pings < 20:
        raw.send(frame(PING, 0, 0, pings.to_bytes(8, "big")))
        await raw.writer.drain()
        pings += 1
        with contextlib.suppress(TimeoutError):  # a PING ACK and nothing else: not yet
            answer = await raw.answer(stream=1, within=0.2)
            assert answer.goaway is not None, answer  # no silent close without a reason
            goaway = answer.goaway
    await _serving(running)  # while the abusive client is still connected
    await raw.close()
    assert goaway == (ENHANCE_YOUR_CALM, b"too_many_pings"), f"after {pings} pings: {goaway}"
    assert pings <= 5, pings
    await _serving(running)
