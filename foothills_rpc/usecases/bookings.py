"""Booking use cases: create, read, cancel, reschedule, confirm, complete, watch, and expire approvals."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import audit
from foothills_rpc.db import bookings as repo
from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db import holds as holds_repo
from foothills_rpc.db import waitlist as waitlist_repo
from foothills_rpc.db.accounts import user_by_id
from foothills_rpc.db.changes import ChangeFeed
from foothills_rpc.db.database import Database
from foothills_rpc.db.limits import check_customer_limits
from foothills_rpc.db.models import Booking, BookingEvent, Hold, Service, Slot, WaitlistEntry
from foothills_rpc.domain.bookings import Status, check_transition
from foothills_rpc.domain.cancellation import evaluate
from foothills_rpc.domain.errors import (
    AlreadyExists,
    Collector,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from foothills_rpc.domain.limits import check_reschedule
from foothills_rpc.domain.pricing import Adjustment, Quote
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import Role
from foothills_rpc.mail import outbox
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.security.page_tokens import PageTokens, page_size
from foothills_rpc.usecases.catalog import Catalog
from foothills_rpc.usecases.waitlist import offer_freed

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_NOTES = 2000
MAX_REASON = 500


@dataclass(frozen=True)
class BookingRequest:
    service_id: uuid.UUID | None  # None only with a hold
    start: datetime | None  # None only with a hold
    seats: int
    notes: str
    request_id: str
    expected_total: tuple[int, str] | None = None  # (minor units, currency)
    hold_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None  # a provider or admin booking on a customer's behalf


# A waitlist entry and, once it has an offer, when the offer lapses.
EntryView = tuple[WaitlistEntry, datetime | None]


@dataclass(frozen=True)
class HoldRequest:
    service_id: uuid.UUID
    start: datetime
    seats: int
    request_id: str


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def check_request_id(request_id: str, errors: Collector) -> None:
    if not REQUEST_ID.match(request_id):
        errors.add("request_id", "is required: 1 to 64 of A-Z a-z 0-9 . _ - (a UUID works)")


class Bookings:
    def __init__(self, *, db: Database, clock: Clock, catalog: Catalog, dispatcher: Dispatcher,
                 changes: ChangeFeed, page_tokens: PageTokens) -> None:
        self._db = db
        self._clock = clock
        self._catalog = catalog
        self._dispatcher = dispatcher
        self.changes = changes
        self._page_tokens = page_tokens

    def now(self) -> datetime:
        return self._clock.now()

    def _committed(self) -> None:
        """After a change commits: its mail can go, and this process's watchers can look."""
        self._dispatcher.notify()
        self.changes.changed()

    # --- create --------------------------------------------------------------------------

    async def create(self, caller: Principal, request: BookingRequest) -> Booking:
        errors = Collector()
        if not 0 <= request.seats <= 10_000:
            errors.add("seats", "must be between 1 and 10000 (0 means 1)")
        if len(request.notes) > MAX_NOTES:
            errors.add("notes", f"must be at most {MAX_NOTES} characters")
        check_request_id(request.request_id, errors)
        errors.check()
        seats = request.seats or 1
        digest_parts: tuple[object, ...] = (request.service_id, request.start, seats, request.notes,
                                            request.expected_total)
        if request.hold_id is not None:  # a hash unchanged for requests without a hold
            digest_parts += (request.hold_id, request.seats)
        on_behalf = request.customer_id is not None and request.customer_id != caller.user_id
        if on_behalf:
            digest_parts += (request.customer_id,)
            if caller.role is Role.CUSTOMER:
                raise PermissionDenied("only the service's provider or an admin books for someone else",
                                       reason="NOT_OWNER")
        key = repo.RequestKey(caller.user_id, "CreateBooking", request.request_id, _digest(*digest_parts))
        now = self._clock.now()

        async def book(session: AsyncSession) -> Booking:
            if (earlier := await repo.earlier_request(session, key)) is not None:
                return await self._replay(session, caller, earlier.request_hash, key, earlier.booking_id)
            hold: Hold | None = None
            customer = caller
            if request.hold_id is not None:
                hold = await self._usable_hold(session, caller, request, now)
                service = await catalog_repo.service_by_id(session, hold.service_id)
                await self._check_limits(session, service, caller.user_id, hold.start_at, now, exclude_hold=hold.id)
                slot = await self._bookable_slot(session, caller, service, hold.start_at, hold.seats, now,
                                                 exclude=None, held=True)
                taken = hold.seats
                quote = _quote_of(hold)
            else:
                assert request.service_id is not None and request.start is not None  # the servicer checks
                service = await catalog_repo.service_by_id(session, request.service_id)
                if on_behalf:
                    assert request.customer_id is not None
                    if caller.role is not Role.ADMIN and service.provider_id != caller.user_id:
                        raise PermissionDenied("only the service's provider or an admin books for someone else",
                                               reason="NOT_OWNER")
                    await user_by_id(session, request.customer_id)  # NOT_FOUND for no such user
                    customer = Principal(user_id=request.customer_id, session_id=caller.session_id,
                                         role=Role.CUSTOMER)
                await self._check_limits(session, service, customer.user_id, request.start, now)
                slot = await self._bookable_slot(session, customer, service, request.start, seats, now, exclude=None,
                                                 inside_notice=on_behalf)
                taken = seats
                quote = self._catalog.price(service, slot, seats=seats, now=now)
            if request.expected_total is not None and request.expected_total != (quote.total_minor, quote.currency):
                raise FailedPrecondition(
                    f"the price is now {quote.total_minor} {quote.currency} (minor units)", reason="PRICE_CHANGED",
                    metadata={"total_minor": str(quote.total_minor), "currency_code": quote.currency})
            if hold is None and not await repo.take_seats(session, slot.id, taken):
                raise FailedPrecondition("not enough free seats in that slot", reason="SLOT_UNAVAILABLE")
            spec = catalog_repo.spec_of(service)
            notice = self._catalog.minimum_notice(service)
            # Booked by the provider or an admin: approved by the making (and its deadline may have passed).
            needs_approval = spec.booking.requires_approval and not on_behalf
            booking = Booking(
                id=uuid.uuid4(), service_id=service.id, slot_id=slot.id, customer_id=customer.user_id,
                provider_id=service.provider_id, uses_provider_time=not service.runs_without_provider,
                start_at=slot.start_at, end_at=slot.end_at, seats=taken,
                status=(Status.PENDING if needs_approval else Status.CONFIRMED).value,
                currency=quote.currency, unit_price_minor=quote.unit_minor, total_price_minor=quote.total_minor,
                price_breakdown=holds_repo.quote_json(quote), cancellation_policy=service.cancellation_policy,
                cancellation_fee_minor=0, cancel_reason="", notes=request.notes, reschedule_count=0,
                approval_deadline=slot.start_at - notice if needs_approval else None,
                original_start_at=slot.start_at, created_at=now, updated_at=now)
            session.add(booking)
            await repo.flush_booking(session)
            if hold is not None:
                if not await holds_repo.claim(session, hold.id, to="used", now=now, unexpired=True,
                                              booking_id=booking.id):
                    raise FailedPrecondition("the hold expired", reason="HOLD_EXPIRED")  # unreachable: it is locked
                await waitlist_repo.follow_hold(session, hold.id, "used", now)  # an accepted offer
            await repo.remember_request(session, key, booking.id, now)
            if on_behalf:
                why = "booked on the customer's behalf"
                if slot.start_at < now + notice:
                    why += ", inside the minimum notice"
                _audit(session, caller, booking, "CreateBooking", {}, now, reason=why)
            await self._record(session, booking, "created", now)
            return booking

        booking = await self._idempotent(book, caller, key)
        self._committed()
        return booking

    async def _idempotent(self, work: Callable[[AsyncSession], Awaitable[Booking]], caller: Principal,
                          key: repo.RequestKey) -> Booking:
        """Runs `work`; if it is refused because a concurrent call with the same key won, returns that result."""
        try:
            return await self._db.run(work)
        except DomainError as refusal:
            async def replay(session: AsyncSession) -> Booking | None:
                earlier = await repo.earlier_request(session, key)
                if earlier is None:
                    return None
                return await self._replay(session, caller, earlier.request_hash, key, earlier.booking_id)

            if (booking := await self._db.run(replay)) is None:
                raise refusal from None
            return booking

    async def _replay(self, session: AsyncSession, caller: Principal, stored_hash: str, key: repo.RequestKey,
                      booking_id: uuid.UUID) -> Booking:
        if stored_hash != key.request_hash:
            raise AlreadyExists("this request_id was used for a different request", reason="REQUEST_ID_REUSED")
        return await repo.booking_for(session, caller, booking_id)

    async def _bookable_slot(self, session: AsyncSession, caller: Principal, service: Service, start: datetime,
                             seats: int, now: datetime, *, exclude: uuid.UUID | None, held: bool = False,
                             inside_notice: bool = False) -> Slot:
        """The slot at `start` if every booking rule allows the caller to take it (seats aside).

        Expired holds of the slot are claimed before its seats are taken, so they count as free at once. With `held`
        (booking with a hold), the window and seats were checked when the hold was made and stand. With
        `inside_notice` (a provider or admin booking for a customer), the minimum notice does not apply."""
        if service.archived:
            raise FailedPrecondition("the service is archived", reason="SERVICE_ARCHIVED")
        if service.suspended:
            raise FailedPrecondition("the service's provider is not taking bookings now", reason="SERVICE_SUSPENDED")
        if start < now:  # said plainly: past slots are mostly not materialised, so it would read SLOT_UNAVAILABLE
            raise FailedPrecondition("that start is in the past", reason="START_IN_PAST")
        # Checked first: slots are materialised only up to the horizon, so beyond it there is no row to find.
        if not held and start > self._catalog.horizon(service, now):
            raise FailedPrecondition("that start is beyond how far ahead the service takes bookings",
                                     reason="TOO_FAR_AHEAD")
        slot = await catalog_repo.slot_at(session, service.id, start)
        if slot is None:
            raise FailedPrecondition("that start is not a slot of the service", reason="SLOT_UNAVAILABLE")
        if not held:
            if not inside_notice and slot.start_at < now + self._catalog.minimum_notice(service):
                raise FailedPrecondition("that slot starts too soon to book", reason="MINIMUM_NOTICE")
            if seats > slot.capacity:
                raise FailedPrecondition("the slot has fewer seats than that", reason="SLOT_UNAVAILABLE")
        found = await repo.clashes(
            session, customer_id=caller.user_id, provider_id=None if service.runs_without_provider else
            service.provider_id, slot_id=slot.id, start=slot.start_at, end=slot.end_at, exclude=exclude,
            lapsed_holds=None if held else holds_repo.lapsed, now=now)
        if found.customer_slot_id == slot.id:
            raise FailedPrecondition("you already booked this slot", reason="SLOT_ALREADY_BOOKED_BY_USER")
        if found.customer_slot_id is not None:
            raise FailedPrecondition("you already have a booking at that time", reason="OVERLAPPING_BOOKING")
        if found.provider_busy:
            raise FailedPrecondition("the provider is booked elsewhere at that time", reason="PROVIDER_UNAVAILABLE")
        # Holds past their expiry are claimed here, so their seats count as free at once.
        if found.lapsed_holds and (lapsed := await holds_repo.free_lapsed(session, slot.id, now)):
            for hold_id in lapsed:
                await waitlist_repo.follow_hold(session, hold_id, "expired", now)
            await offer_freed(session, self._catalog, slot.id, now)  # the line comes first
            await session.refresh(slot)  # seats taken changed: the demand price reads them
        return slot

    async def _check_limits(self, session: AsyncSession, service: Service, customer_id: uuid.UUID, start: datetime,
                            now: datetime, *, exclude_booking: uuid.UUID | None = None,
                            exclude_hold: uuid.UUID | None = None) -> None:
        """Refuses a booking (or hold) starting at `start` beyond the service's per-period limits.

        Counted under the customer's row lock, taken before any slot lock in the same transaction, so two
        processes booking for one customer at once count one after the other and never both pass."""
        if not catalog_repo.spec_of(service).booking.limits.any:
            return
        await repo.lock_customer(session, customer_id)
        await check_customer_limits(session, service, customer_id, start, now, exclude_booking=exclude_booking,
                                    exclude_hold=exclude_hold)

    async def _usable_hold(self, session: AsyncSession, caller: Principal, request: BookingRequest,
                           now: datetime) -> Hold:
        """The caller's hold named in `request`, locked, if a booking may use it now."""
        assert request.hold_id is not None
        hold = await holds_repo.hold_for(session, caller, request.hold_id, for_update=True, admin_sees_all=False)
        errors = Collector()
        if request.service_id is not None and request.service_id != hold.service_id:
            errors.add("service", "must be the hold's service (or empty)")
        if request.start is not None and request.start != hold.start_at:
            errors.add("start_time", "must be the hold's start (or empty)")
        if request.seats and request.seats != hold.seats:
            errors.add("seats", "must be the hold's seats (or 0)")
        errors.check()
        if hold.status == "used":
            raise FailedPrecondition("a booking was made with this hold already", reason="HOLD_ALREADY_USED")
        if hold.status != "active" or hold.expires_at <= now:
            raise FailedPrecondition("the hold expired or was released", reason="HOLD_EXPIRED")
        return hold

    # --- holds ---------------------------------------------------------------------------

    async def hold(self, caller: Principal, request: HoldRequest) -> Hold:
        errors = Collector()
        if not 0 <= request.seats <= 10_000:
            errors.add("seats", "must be between 1 and 10000 (0 means 1)")
        check_request_id(request.request_id, errors)
        errors.check()
        seats = request.seats or 1
        request_hash = _digest(request.service_id, request.start, seats)
        now = self._clock.now()

        async def earlier(session: AsyncSession) -> Hold | None:
            found = await holds_repo.hold_by_request(session, caller.user_id, request.request_id)
            if found is not None and found.request_hash != request_hash:
                raise AlreadyExists("this request_id was used for a different request", reason="REQUEST_ID_REUSED")
            return found

        async def take(session: AsyncSession) -> Hold:
            if (found := await earlier(session)) is not None:
                return found
            service = await catalog_repo.service_by_id(session, request.service_id)
            await self._check_limits(session, service, caller.user_id, request.start, now)
            slot = await self._bookable_slot(session, caller, service, request.start, seats, now, exclude=None)
            quote = self._catalog.price(service, slot, seats=seats, now=now)
            if not await repo.take_seats(session, slot.id, seats):
                raise FailedPrecondition("not enough free seats in that slot", reason="SLOT_UNAVAILABLE")
            hold = Hold(id=uuid.uuid4(), service_id=service.id, slot_id=slot.id, customer_id=caller.user_id,
                        start_at=slot.start_at, end_at=slot.end_at, seats=seats, status="active",
                        expires_at=now + catalog_repo.spec_of(service).booking.hold, currency=quote.currency,
                        unit_price_minor=quote.unit_minor, total_price_minor=quote.total_minor,
                        price_breakdown=holds_repo.quote_json(quote), booking_id=None, request_id=request.request_id,
                        request_hash=request_hash, created_at=now, updated_at=now)
            session.add(hold)
            await holds_repo.flush_hold(session)
            # After take_seats: the slot's row lock is held, so a concurrent hold of this customer on this
            # slot has committed (and is seen) or waits behind this one.
            if await holds_repo.holds_slot(session, caller.user_id, slot.id, now, exclude=hold.id):
                raise FailedPrecondition("you hold seats of this slot already", reason="SLOT_ALREADY_HELD_BY_USER")
            return hold

        try:
            return await self._db.run(take)
        except DomainError as refusal:
            if (found := await self._db.run(earlier)) is None:
                raise refusal from None
            return found

    async def get_hold(self, caller: Principal, hold_id: uuid.UUID) -> Hold:
        return await self._db.run(lambda s: holds_repo.hold_for(s, caller, hold_id))

    async def release_hold(self, caller: Principal, hold_id: uuid.UUID) -> Hold:
        now = self._clock.now()

        async def release(session: AsyncSession) -> Hold:
            hold = await holds_repo.hold_for(session, caller, hold_id, for_update=True)
            if hold.status == "used":
                raise FailedPrecondition("a booking was made with this hold; cancel the booking instead",
                                         reason="HOLD_ALREADY_USED")
            await self._end_hold(session, hold, now, released=True)
            return hold

        hold = await self._db.run(release)
        self._committed()
        return hold

    async def _end_hold(self, session: AsyncSession, hold: Hold, now: datetime, *, released: bool) -> bool:
        """Releases (or, past its expiry, expires) an active hold and gives its seats back, once."""
        to = "released" if released and hold.expires_at > now else "expired"
        if not await holds_repo.claim(session, hold.id, to=to, now=now, unexpired=to == "released"):
            return False
        await repo.release_seats(session, hold.slot_id, hold.seats)
        hold.status, hold.updated_at = to, now
        await waitlist_repo.follow_hold(session, hold.id, to, now)
        await offer_freed(session, self._catalog, hold.slot_id, now)
        return True

    async def expire_holds(self) -> int:
        """Gives back the seats of holds past their expiry; each claimed once, by one process. Also
        closes waiting lines that can no longer be offered anything."""
        now = self._clock.now()
        await self._db.run(lambda s: waitlist_repo.close_stale(s, now))
        ids = await self._db.run(lambda s: holds_repo.lapsed_holds(s, now))
        system = Principal(user_id=uuid.UUID(int=0), session_id=uuid.UUID(int=0), role=Role.ADMIN)
        expired = 0
        for hold_id in ids:
            async def expire(session: AsyncSession, hold_id: uuid.UUID = hold_id) -> bool:
                try:
                    hold = await holds_repo.hold_for(session, system, hold_id)
                except NotFound:
                    return False
                return await self._end_hold(session, hold, now, released=False)
            expired += await self._db.run(expire)
        if expired:
            self._committed()  # offers to the next in line may have been mailed
        return expired

    # --- waitlist ------------------------------------------------------------------------

    async def join_waitlist(self, caller: Principal, service_id: uuid.UUID, start: datetime,
                            seats: int) -> EntryView:
        if not 0 <= seats <= 10_000:
            raise InvalidArgument.single("seats", "must be between 1 and 10000 (0 means 1)")
        seats = seats or 1
        now = self._clock.now()

        async def join(session: AsyncSession) -> EntryView:
            service = await catalog_repo.service_by_id(session, service_id)
            slot = await self._bookable_slot(session, caller, service, start, seats, now, exclude=None)
            # The slot's lock orders this join with every offer of the slot: a seat freed before it is
            # seen free here (SLOT_AVAILABLE), one freed after it is offered to this entry.
            await repo.lock_slots(session, [slot.id])
            await session.refresh(slot)
            entry = await waitlist_repo.entry_of(session, slot.id, caller.user_id)
            if entry is not None and entry.status in ("waiting", "offered"):
                return entry, await waitlist_repo.offer_expiry(session, entry)
            if slot.capacity - slot.seats_taken >= seats:
                raise FailedPrecondition("those seats are free: book them", reason="SLOT_AVAILABLE")
            if entry is None:
                entry = WaitlistEntry(id=uuid.uuid4(), service_id=service.id, slot_id=slot.id,
                                      customer_id=caller.user_id, start_at=slot.start_at, created_at=now)
                session.add(entry)
            entry.seats, entry.status, entry.hold_id = seats, "waiting", None
            entry.position = await waitlist_repo.next_position(session, slot.id)
            entry.joined_at = entry.updated_at = now  # (back) at the end of the line
            await session.flush()
            return entry, None

        return await self._db.run(join)

    async def waitlist(self, caller: Principal, service_id: uuid.UUID | None, *, requested_size: int,
                       token: str) -> tuple[list[EntryView], str]:
        limit = page_size(requested_size)
        context = ("waitlist", service_id)
        after = self._page_tokens.decode(token, context)
        try:
            rows = await self._db.run(lambda s: waitlist_repo.list_entries(s, caller, service_id, after=after,
                                                                           limit=limit + 1))
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidArgument.single("page_token", "is malformed", "INVALID_PAGE_TOKEN") from exc
        if len(rows) <= limit:
            return rows, ""
        return rows[:limit], self._page_tokens.encode(waitlist_repo.page_key(rows[limit - 1][0]), context)

    async def leave_waitlist(self, caller: Principal, entry_id: uuid.UUID) -> EntryView:
        now = self._clock.now()

        async def leave(session: AsyncSession) -> EntryView:
            entry = await waitlist_repo.entry_for(session, caller, entry_id, for_update=True)
            if entry.status == "waiting":
                entry.status, entry.updated_at = "left", now
            elif entry.status == "offered" and entry.hold_id is not None:
                hold = await holds_repo.hold_for(session, caller, entry.hold_id, for_update=True)
                if not await self._end_hold(session, hold, now, released=True):
                    entry.status, entry.updated_at = "left", now  # its hold had ended already
                await session.refresh(entry)
            return entry, await waitlist_repo.offer_expiry(session, entry)

        entry = await self._db.run(leave)
        self._committed()
        return entry

    # --- read ----------------------------------------------------------------------------

    async def get(self, caller: Principal, booking_id: uuid.UUID) -> Booking:
        return await self._db.read(lambda s: repo.booking_for(s, caller, booking_id))

    async def find(self, caller: Principal, filters: repo.BookingFilter, *, requested_size: int,
                   token: str) -> tuple[list[Booking], str]:
        if filters.customer_id is not None and caller.role is Role.CUSTOMER and filters.customer_id != caller.user_id:
            raise InvalidArgument.single("customer", "only providers and admins filter by another customer")
        limit = page_size(requested_size)
        after = self._page_tokens.decode(token, ("bookings", filters))
        try:
            rows = await self._db.read(lambda s: repo.list_bookings(s, caller, filters, after=after, limit=limit + 1))
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidArgument.single("page_token", "is malformed", "INVALID_PAGE_TOKEN") from exc
        if len(rows) <= limit:
            return rows, ""
        return rows[:limit], self._page_tokens.encode(repo.page_key(rows[limit - 1], filters.order),
                                                      ("bookings", filters))

    # --- status changes ------------------------------------------------------------------

    async def cancel(self, caller: Principal, booking_id: uuid.UUID, *, reason: str, override: bool,
                     request_id: str = "", validate_only: bool = False) -> Booking:
        """Cancels under the policy; a retry with the same `request_id` returns the first result. With
        `validate_only`, returns the booking as the cancellation would leave it (the fee it would
        charge now) and changes nothing, or raises the refusal the cancellation would meet."""
        errors = Collector()
        if len(reason) > MAX_REASON:
            errors.add("reason", f"must be at most {MAX_REASON} characters")
        if request_id:
            check_request_id(request_id, errors)
        errors.check()
        if override and caller.role is not Role.ADMIN:
            raise PermissionDenied("only admins override the cancellation policy", reason="OVERRIDE_NOT_ALLOWED")
        if override and not reason.strip():
            raise InvalidArgument.single("reason", "is required when overriding the cancellation policy")
        now = self._clock.now()
        reason = reason.strip()

        if validate_only:
            async def preview(session: AsyncSession) -> Booking:
                booking = await repo.booking_for(session, caller, booking_id)
                fee = self._cancellation_fee(caller, booking, override=override, now=now)
                session.expunge(booking)  # the answer shows the outcome; nothing of it is written
                booking.status, booking.cancel_reason, booking.cancellation_fee_minor = (
                    Status.CANCELLED.value, reason, fee)
                return booking

            return await self._db.read(preview)

        key = repo.RequestKey(caller.user_id, "CancelBooking", request_id,
                              _digest(booking_id, reason, override)) if request_id else None

        async def apply(session: AsyncSession) -> Booking:
            if key is not None and (earlier := await repo.earlier_request(session, key)) is not None:
                return await self._replay(session, caller, earlier.request_hash, key, earlier.booking_id)
            booking = await repo.booking_for(session, caller, booking_id, for_update=True)
            before = _audited(booking)
            fee = self._cancellation_fee(caller, booking, override=override, now=now)
            await self._cancel(session, booking, reason=reason, fee=fee, now=now)
            if key is not None:
                await repo.remember_request(session, key, booking.id, now)
            _audit(session, caller, booking, "CancelBooking", before, now, reason=reason)
            return booking

        booking = await (self._idempotent(apply, caller, key) if key is not None else self._db.run(apply))
        self._committed()
        return booking

    @staticmethod
    def _cancellation_fee(caller: Principal, booking: Booking, *, override: bool, now: datetime) -> int:
        """The fee cancelling `booking` now charges; raises the refusal if it may not be cancelled."""
        check_transition(Status(booking.status), Status.CANCELLED)
        if override:
            return 0  # an admin's decision, recorded with its reason; no fee
        if booking.provider_id == caller.user_id and booking.customer_id != caller.user_id:
            # The provider calls it off: never a fee, but not once it has started.
            if now >= booking.start_at:
                raise FailedPrecondition("the booking has started", reason="OUTSIDE_CANCELLATION_WINDOW")
            return 0
        # The customer (or an admin acting for them) cancels under the policy agreed when booking.
        verdict = evaluate(catalog_repo.cancellation_of(booking.cancellation_policy), start=booking.start_at,
                           now=now, charged_minor=booking.total_price_minor)
        if not verdict.allowed:
            message = "the cancellation policy no longer allows cancelling this booking"
            if caller.role is Role.ADMIN:  # say how the refusal can be overridden
                message += "; an admin may override it with override_policy and a reason"
            raise FailedPrecondition(message, reason="OUTSIDE_CANCELLATION_WINDOW",
                                     metadata={"overridable_with": "override_policy"})
        return verdict.fee_minor

    async def _cancel(self, session: AsyncSession, booking: Booking, *, reason: str, fee: int, now: datetime) -> None:
        booking.status = Status.CANCELLED.value
        booking.cancel_reason = reason
        booking.cancellation_fee_minor = fee
        booking.updated_at = now
        await repo.release_seats(session, booking.slot_id, booking.seats)
        await offer_freed(session, self._catalog, booking.slot_id, now)
        await self._record(session, booking, "cancelled", now, reason=reason)

    async def confirm(self, caller: Principal, booking_id: uuid.UUID) -> Booking:
        return await self._provider_transition(caller, booking_id, Status.CONFIRMED)

    async def complete(self, caller: Principal, booking_id: uuid.UUID) -> Booking:
        return await self._provider_transition(caller, booking_id, Status.COMPLETED)

    async def _provider_transition(self, caller: Principal, booking_id: uuid.UUID, target: Status) -> Booking:
        now = self._clock.now()

        async def apply(session: AsyncSession) -> Booking:
            booking = await repo.booking_for(session, caller, booking_id, for_update=True)
            if caller.role is not Role.ADMIN and booking.provider_id != caller.user_id:
                raise PermissionDenied("only the service's provider or an admin may do this", reason="NOT_OWNER")
            check_transition(Status(booking.status), target)
            if target is Status.COMPLETED and booking.end_at > now:
                raise FailedPrecondition("the booking has not ended yet", reason="BOOKING_NOT_ENDED")
            before = _audited(booking)
            booking.status = target.value
            booking.updated_at = now
            _audit(session, caller, booking, "ConfirmBooking" if target is Status.CONFIRMED else "CompleteBooking",
                   before, now)
            await self._record(session, booking, target.value, now)
            return booking

        booking = await self._db.run(apply)
        self._committed()
        return booking

    async def reschedule(self, caller: Principal, booking_id: uuid.UUID, new_start: datetime,
                         request_id: str, *, reason: str = "", as_provider: bool = False) -> Booking:
        """Moves the booking; `reason` is recorded in the audit log and told to the customer. The
        customer or an admin may move it; with `as_provider` (resolving a conflict) the service's
        provider too."""
        errors = Collector()
        check_request_id(request_id, errors)
        errors.check()
        key = repo.RequestKey(caller.user_id, "RescheduleBooking", request_id, _digest(booking_id, new_start))
        now = self._clock.now()

        async def move(session: AsyncSession) -> Booking:
            if (earlier := await repo.earlier_request(session, key)) is not None:
                return await self._replay(session, caller, earlier.request_hash, key, earlier.booking_id)
            booking = await repo.booking_for(session, caller, booking_id, for_update=True)
            if Status(booking.status) not in (Status.PENDING, Status.CONFIRMED):
                check_transition(Status(booking.status), Status.CONFIRMED)  # raises, naming the status
            if (booking.customer_id != caller.user_id and caller.role is not Role.ADMIN
                    and not (as_provider and booking.provider_id == caller.user_id)):
                raise PermissionDenied("only the customer or an admin may reschedule", reason="NOT_OWNER")
            service = await catalog_repo.service_by_id(session, booking.service_id)
            spec = catalog_repo.spec_of(service)
            original = booking.original_start_at or booking.start_at
            check_reschedule(count=booking.reschedule_count, max_reschedules=spec.booking.max_reschedules,
                             original_start=original, new_start=new_start,
                             max_distance=spec.booking.max_reschedule_distance)
            # The booking itself is left out of the count: a move within the same period counts once.
            await self._check_limits(session, service, booking.customer_id, new_start, now, exclude_booking=booking.id)
            owner = Principal(user_id=booking.customer_id, session_id=caller.session_id, role=Role.CUSTOMER)
            slot = await self._bookable_slot(session, owner, service, new_start, booking.seats, now,
                                             exclude=booking.id)
            if slot.id == booking.slot_id:
                raise FailedPrecondition("the booking is already in that slot", reason="SLOT_ALREADY_BOOKED_BY_USER")
            await repo.lock_slots(session, [booking.slot_id, slot.id])
            before = _audited(booking)
            if not await repo.take_seats(session, slot.id, booking.seats):
                raise FailedPrecondition("not enough free seats in that slot", reason="SLOT_UNAVAILABLE")
            await repo.release_seats(session, booking.slot_id, booking.seats)
            await offer_freed(session, self._catalog, booking.slot_id, now)
            booking.original_start_at = original
            booking.slot_id, booking.start_at, booking.end_at = slot.id, slot.start_at, slot.end_at
            if booking.approval_deadline is not None:
                booking.approval_deadline = slot.start_at - self._catalog.minimum_notice(service)
            booking.reschedule_count += 1
            booking.updated_at = now
            await repo.flush_booking(session)
            await repo.remember_request(session, key, booking.id, now)
            _audit(session, caller, booking, "RescheduleBooking", before, now, reason=reason)
            await self._record(session, booking, "rescheduled", now, reason=reason)
            return booking

        booking = await self._idempotent(move, caller, key)
        self._committed()
        return booking

    async def expire_approvals(self) -> int:
        """Cancels pending bookings whose approval deadline passed; each claimed once, by one process."""
        now = self._clock.now()
        ids = await self._db.run(lambda s: repo.expired_approvals(s, now))
        system = Principal(user_id=uuid.UUID(int=0), session_id=uuid.UUID(int=0), role=Role.ADMIN)
        for booking_id in ids:
            async def expire(session: AsyncSession, booking_id: uuid.UUID = booking_id) -> None:
                booking = await repo.booking_for(session, system, booking_id, for_update=True)
                if booking.status == Status.PENDING.value:  # another process may have got there first
                    await self._cancel(session, booking, reason="APPROVAL_EXPIRED", fee=0, now=now)
            await self._db.run(expire)
        if ids:
            self._committed()
        return len(ids)

    # --- events --------------------------------------------------------------------------

    async def _record(self, session: AsyncSession, booking: Booking, kind: str, now: datetime, *,
                      reason: str = "") -> None:
        """The event and the customer's mail, in the same transaction as the change; `reason` (why it was
        cancelled or moved) is told to the customer."""
        to = await repo.addressee(session, booking)
        start = booking.start_at.strftime("%Y-%m-%d %H:%M UTC")
        await outbox.enqueue(session, recipient=to.email, now=now,
                             subject=f"Booking {kind}: {to.service_name}, {start}",
                             body=(f"Hello {to.display_name},\n\nYour booking of {to.service_name} on {start} "
                                   f"({booking.seats} seat(s), {booking.total_price_minor} {booking.currency} in minor "
                                   f"units) is now {booking.status}.\n"
                                   + (f"\nReason: {reason}\n" if reason else "")
                                   + f"\nReference: bookings/{booking.id.hex}\n"))
        await repo.append_event(session, booking, kind, now)

    async def latest_event(self) -> int:
        return await self._db.run(repo.latest_event_id)

    async def events_after(self, caller: Principal, after: int) -> list[tuple[BookingEvent, Booking]]:
        return await self._db.run(lambda s: repo.events_after(s, caller, after))


def _audited(booking: Booking) -> dict[str, object]:
    return {"status": booking.status, "start_time": booking.start_at, "cancellation_fee_minor":
            booking.cancellation_fee_minor}


def _audit(session: AsyncSession, actor: Principal, booking: Booking, action: str, before: dict[str, object],
           now: datetime, *, reason: str = "") -> None:
    """Changes made by someone other than the customer (a provider, an admin) go to the audit log."""
    if actor.user_id != booking.customer_id:
        audit.record(session, actor_id=actor.user_id, action=action, target=f"bookings/{booking.id.hex}",
                     before=before, after=_audited(booking), reason=reason, now=now)


def _quote_of(hold: Hold) -> Quote:
    """The quote a hold locked, as it was priced."""
    data = hold.price_breakdown
    return Quote(base_unit_minor=data["base_unit_minor"], unit_minor=data["unit_minor"], seats=data["seats"],
                 total_minor=data["total_minor"], currency=data["currency"],
                 adjustments=tuple(Adjustment(label, amount) for label, amount in data["adjustments"]))

