"""Bookings: create, read, list, cancel, reschedule, confirm, complete, watch, and expire approvals.
Holds (holds.py) and the waiting line (waitlist.py) are aggregates of their own; what decides whether
seats may be taken at all is admission.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import audit
from foothills_rpc.db import bookings as repo
from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db import holds as holds_repo
from foothills_rpc.db import waitlist as waitlist_repo
from foothills_rpc.db.accounts import user_by_id
from foothills_rpc.db.catalog_cache import CatalogCache
from foothills_rpc.db.changes import ChangeFeed
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import Booking, BookingEvent, Service, Slot
from foothills_rpc.domain.bookings import Status, check_transition
from foothills_rpc.domain.cancellation import evaluate
from foothills_rpc.domain.catalog import check_seats
from foothills_rpc.domain.errors import (
    AlreadyExists,
    Collector,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.limits import check_reschedule
from foothills_rpc.domain.pricing import Quote
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.requests import check_request_id, request_digest
from foothills_rpc.domain.users import Role
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.security.page_tokens import PageTokens, instant_and_id
from foothills_rpc.usecases.admission import Admission
from foothills_rpc.usecases.holds import Holds
from foothills_rpc.usecases.terms import Terms
from foothills_rpc.usecases.waitlist import offer_to_line

log = logging.getLogger(__name__)

MAX_NOTES = 2000
R = TypeVar("R")  # what a booking write returns (`Bookings._idempotent`)
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


class _Attempt(NamedTuple):
    """A booking tried with one statement (`Bookings.create`): the slot admitted, the booking as priced,
    whether it took the seats and, if the statement ran and took nothing, what stood in the way."""
    slot: Slot
    booking: Booking
    took: bool
    in_way: repo.Clashes | None


class Bookings:
    def __init__(self, *, db: Database, clock: Clock, terms: Terms, admission: Admission, dispatcher: Dispatcher,
                 changes: ChangeFeed, page_tokens: PageTokens, cache: CatalogCache) -> None:
        self._db = db
        self._cache = cache
        self._clock = clock
        self._terms = terms
        self._admission = admission
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
        check_seats(request.seats, errors)
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
        key = repo.RequestKey(caller.user_id, "CreateBooking", request.request_id, request_digest(*digest_parts))
        now = self._clock.now()
        taking: list[tuple[uuid.UUID, uuid.UUID]] = []  # (customer, slot) each attempt books

        def new_booking(service: Service, slot: Slot, customer: Principal, taken: int, quote: Quote) -> Booking:
            # Booked by the provider or an admin: approved by the making (and its deadline may have passed).
            needs_approval = catalog_repo.spec_of(service).booking.requires_approval and not on_behalf
            return Booking(
                id=uuid.uuid4(), service_id=service.id, slot_id=slot.id, customer_id=customer.user_id,
                provider_id=service.provider_id, uses_provider_time=not service.runs_without_provider,
                start_at=slot.start_at, end_at=slot.end_at, seats=taken,
                status=(Status.PENDING if needs_approval else Status.CONFIRMED).value,
                currency=quote.currency, unit_price_minor=quote.unit_minor, total_price_minor=quote.total_minor,
                price_breakdown=holds_repo.quote_json(quote), cancellation_policy=service.cancellation_policy,
                cancellation_fee_minor=0, cancel_reason="", notes=request.notes, reschedule_count=0,
                approval_deadline=slot.start_at - self._terms.minimum_notice(service) if needs_approval else None,
                original_start_at=slot.start_at, created_at=now, updated_at=now)

        def expected_price(booking: Booking) -> bool:
            return request.expected_total in (None, (booking.total_price_minor, booking.currency))

        def check_price(booking: Booking) -> None:
            if not expected_price(booking):
                raise FailedPrecondition(
                    f"the price is now {booking.total_price_minor} {booking.currency} (minor units)",
                    reason="PRICE_CHANGED", metadata={"total_minor": str(booking.total_price_minor),
                                                      "currency_code": booking.currency})

        async def book_at_once(session: AsyncSession, service: Service, found: Slot | None, customer: Principal, *,
                               inside_notice: bool = False) -> _Attempt:
            """Books `found` with one statement (`book_unless_clash`) if every rule outside the database
            allows it and the price is the one expected; the attempt says whether it took the seats, and
            if not, why."""
            assert request.start is not None  # the servicer checks
            slot = self._admission.admit(service, found, request.start, seats, now, inside_notice=inside_notice)
            taking.append((customer.user_id, slot.id))
            quote = self._terms.price(service, slot, seats=seats, now=now)
            booking = new_booking(service, slot, customer, seats, quote)
            if not expected_price(booking):
                return _Attempt(slot, booking, took=False, in_way=None)
            asked = self._admission.overlaps(customer, service, slot, now, exclude=None)
            in_way = await repo.book_unless_clash(session, asked, booking, key, by=caller.user_id, now=now)
            return _Attempt(slot, booking, took=in_way is None, in_way=in_way)

        async def book_alone(session: AsyncSession) -> Booking | None:
            """The usual booking (no hold, for oneself, a service without limits, the price expected, no
            lapsed hold in the way) as one write with no transaction around it: None where it does not
            apply, and `book` below runs."""
            assert request.service_id is not None and request.start is not None  # the servicer checks
            service, found = await self._service_and_slot(session, request.service_id, request.start)
            if catalog_repo.spec_of(service).booking.limits.any:
                return None  # counted under the customer's lock, in a transaction
            attempt = await book_at_once(session, service, found, caller)
            if attempt.took:
                return attempt.booking
            if attempt.in_way is None:
                return None  # the price moved; the slot's reasons come first, which `book` names
            self._admission.refuse_clashes(attempt.in_way, attempt.slot)
            if attempt.in_way.lapsed_holds:
                return None  # claimed, and their seats offered to the line, in a transaction
            raise FailedPrecondition("not enough free seats in that slot", reason="SLOT_UNAVAILABLE")

        async def book(session: AsyncSession) -> Booking:
            customer = caller
            if request.hold_id is not None:
                hold = await Holds.usable_hold(session, caller, request.hold_id, service_id=request.service_id,
                                               start=request.start, seats=request.seats, now=now)
                service, slot = await catalog_repo.service_and_slot(session, hold.service_id, hold.start_at)
                await self._admission.check_limits(session, service, caller.user_id, hold.start_at, now,
                                                   exclude_hold=hold.id)
                slot = await self._admission.claim_slot(session, caller, service, slot, hold.start_at, hold.seats,
                                                        now, exclude=None, held=True)
                taking.append((customer.user_id, slot.id))
                booking = new_booking(service, slot, customer, hold.seats, holds_repo.stored_quote(hold))
                check_price(booking)
                await repo.insert_booking(session, booking, key, by=caller.user_id, now=now)
                if not await holds_repo.claim(session, hold.id, to=HoldStatus.USED, now=now, unexpired=True,
                                              booking_id=booking.id):
                    raise FailedPrecondition("the hold expired", reason="HOLD_EXPIRED")  # unreachable: it is locked
                await waitlist_repo.follow_hold(session, hold.id, HoldStatus.USED, now)  # an accepted offer
            else:
                assert request.service_id is not None and request.start is not None  # the servicer checks
                service, found = await catalog_repo.service_and_slot(session, request.service_id, request.start)
                if on_behalf:
                    assert request.customer_id is not None
                    if caller.role is not Role.ADMIN and service.provider_id != caller.user_id:
                        raise PermissionDenied("only the service's provider or an admin books for someone else",
                                               reason="NOT_OWNER")
                    await user_by_id(session, request.customer_id)  # NOT_FOUND for no such user
                    customer = Principal(user_id=request.customer_id, session_id=caller.session_id,
                                         role=Role.CUSTOMER)
                await self._admission.check_limits(session, service, customer.user_id, request.start, now)
                # Tried again even after `book_alone` found lapsed holds in the way: by now the expiry job
                # may have freed their seats, and then the one statement takes them.
                attempt = await book_at_once(session, service, found, customer, inside_notice=on_behalf)
                booking = attempt.booking
                if not attempt.took:
                    # Something is in the way (named here), lapsed holds free seats, or the price moved
                    # (the slot's reasons come first).
                    slot = await self._admission.claim_slot(session, customer, service, attempt.slot, request.start,
                                                            seats, now, exclude=None, inside_notice=on_behalf,
                                                            take=True, in_way=attempt.in_way)
                    booking = new_booking(service, slot, customer, seats,
                                          self._terms.price(service, slot, seats=seats, now=now))
                    check_price(booking)
                    await repo.insert_booking(session, booking, key, by=caller.user_id, now=now)
            if on_behalf:
                why = "booked on the customer's behalf"
                if booking.start_at < now + self._terms.minimum_notice(service):
                    why += ", inside the minimum notice"
                _audit(session, caller, booking, "CreateBooking", {}, now, reason=why)
            return booking

        try:
            booking = None
            if request.hold_id is None and not on_behalf:
                booking = await self._idempotent(book_alone, caller, key, alone=True)
            if booking is None:
                booking = await self._idempotent(book, caller, key)
        except FailedPrecondition as refusal:
            raise await self._same_slot_named(refusal, taking) from None
        self._committed()
        return booking

    async def _service_and_slot(self, session: AsyncSession, service_id: uuid.UUID,
                                start: datetime) -> tuple[Service, Slot | None]:
        """`catalog_repo.service_and_slot`, with this process's copy of the service (`CatalogCache`) if it
        has one still at the version read with the slot: the service's row is not loaded again for every
        booking. The row a miss reads is kept for the next booking."""
        generation = self._cache.generation()
        if (copy := self._cache.services([service_id]).get(service_id)) is not None:
            version, slot = await catalog_repo.version_and_slot(session, service_id, start)
            if version == copy.version:
                return copy, slot
        service, slot = await catalog_repo.service_and_slot(session, service_id, start)
        self._cache.keep([service], generation)
        return service, slot

    async def _same_slot_named(self, refusal: FailedPrecondition,
                               taking: list[tuple[uuid.UUID, uuid.UUID]]) -> DomainError:
        """The refusal to answer, with one reason for one concept: a second booking of the same slot by
        the same customer is SLOT_ALREADY_BOOKED_BY_USER whether the check saw the first booking or the
        database's overlap constraint caught a concurrent one (which it reports as an overlap)."""
        if refusal.reason != "OVERLAPPING_BOOKING" or not taking:
            return refusal
        customer_id, slot_id = taking[-1]
        if await self._db.read(lambda s: repo.has_active_booking(s, customer_id, slot_id)):
            return FailedPrecondition("you already booked this slot", reason="SLOT_ALREADY_BOOKED_BY_USER")
        return refusal

    async def _idempotent(self, work: Callable[[AsyncSession], Awaitable[R]], caller: Principal,
                          key: repo.RequestKey | None, *, alone: bool = False) -> R | Booking:
        """Runs `work`, which records `key` with its change; if it is refused and the key was used before
        (a retry, or a concurrent call with the same key that won), returns the earlier request's result.
        The key is not looked up first: a refusal of any kind, its own primary key's included
        (`repo.RequestSeen`), is when to look, so a first request pays no round trip for it. With
        `alone`, `work` changes data with one statement at most (`Database.write_alone`). Without a key
        (a call that sent no request_id), a refusal is just raised."""
        try:
            return await (self._db.write_alone(work) if alone else self._db.run(work))
        except DomainError as refusal:
            if key is None:
                raise
            async def replay(session: AsyncSession) -> Booking | None:
                earlier = await repo.earlier_request(session, key)
                if earlier is None:
                    return None
                return await self._replay(session, caller, earlier.request_hash, key, earlier.booking_id)

            if (booking := await self._db.read(replay)) is None:  # reads only: no BEGIN, no COMMIT
                raise refusal from None
            return booking

    async def _replay(self, session: AsyncSession, caller: Principal, stored_hash: str, key: repo.RequestKey,
                      booking_id: uuid.UUID) -> Booking:
        if stored_hash != key.request_hash:
            raise AlreadyExists("this request_id was used for a different request", reason="REQUEST_ID_REUSED")
        return await repo.booking_for(session, caller, booking_id)

    # --- read ----------------------------------------------------------------------------

    async def get_booking(self, caller: Principal, booking_id: uuid.UUID) -> Booking:
        return await self._db.read(lambda s: repo.booking_for(s, caller, booking_id))

    async def list_bookings(self, caller: Principal, filters: repo.BookingFilter, *, requested_size: int,
                   token: str) -> tuple[list[repo.BookingLine], str]:
        if filters.customer_id is not None and caller.role is Role.CUSTOMER and filters.customer_id != caller.user_id:
            raise InvalidArgument.single("customer", "only providers and admins filter by another customer")

        async def fetch(after: tuple[datetime, uuid.UUID] | None, n: int) -> list[repo.BookingLine]:
            statement = repo.bookings_page_statement(caller, filters, after=after, limit=n)
            return [repo.BookingLine._make(row) for row in await self._db.read_rows(*statement)]

        return await self._page_tokens.page(token, ("bookings", filters), requested_size, parse=instant_and_id,
                                            fetch=fetch, key_of=lambda line: repo.page_key(line, filters.order))

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
                booking.status, booking.cancel_reason, booking.cancellation_fee_minor = (
                    Status.CANCELLED.value, reason, fee)
                return booking

            return await self._db.read(preview)

        key = repo.RequestKey(caller.user_id, "CancelBooking", request_id,
                              request_digest(booking_id, reason, override)) if request_id else None

        async def cancel_alone(session: AsyncSession) -> Booking | None:
            """The usual cancellation (the customer's own, nobody waiting in the slot's line, the booking
            unchanged since it was read) as one write with no transaction around it: None where it does
            not apply, and `apply` runs."""
            booking = await repo.booking_for(session, caller, booking_id)
            if booking.customer_id != caller.user_id:
                return None  # audited, in a transaction
            fee = self._cancellation_fee(caller, booking, override=override, now=now)
            if not await repo.cancel_as_read(session, booking, self._cancelled(reason, fee, now), key=key,
                                             by=caller.user_id, reason=reason, now=now):
                return None
            return booking

        async def apply(session: AsyncSession) -> Booking:
            booking = await repo.booking_for(session, caller, booking_id, for_update=True)
            before = _audited(booking)
            fee = self._cancellation_fee(caller, booking, override=override, now=now)
            await self._cancel(session, booking, by=caller.user_id, reason=reason, fee=fee, now=now)
            if key is not None:
                await repo.remember_request(session, key, booking.id, now)
            _audit(session, caller, booking, "CancelBooking", before, now, reason=reason)
            return booking

        booking = await self._idempotent(cancel_alone, caller, key, alone=True)
        if booking is None:
            booking = await self._idempotent(apply, caller, key)
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

    async def _cancel(self, session: AsyncSession, booking: Booking, *, by: uuid.UUID | None, reason: str, fee: int,
                      now: datetime) -> None:
        freed = repo.SlotSeats(booking.slot_id, booking.seats)
        if await repo.record_change(session, booking, "cancelled", now, by=by, reason=reason, release=freed,
                                    changes=self._cancelled(reason, fee, now)):
            await offer_to_line(session, self._terms, freed.slot_id, now)

    @staticmethod
    def _cancelled(reason: str, fee: int, now: datetime) -> dict[str, object]:
        """What a cancellation changes in the booking."""
        return {"status": Status.CANCELLED.value, "cancel_reason": reason, "cancellation_fee_minor": fee,
                "updated_at": now}

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
            await repo.record_change(session, booking, target.value, now, by=caller.user_id,
                                     changes={"status": target.value, "updated_at": now})
            _audit(session, caller, booking, "ConfirmBooking" if target is Status.CONFIRMED else "CompleteBooking",
                   before, now)
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
        key = repo.RequestKey(caller.user_id, "RescheduleBooking", request_id, request_digest(booking_id, new_start))
        now = self._clock.now()

        async def move(session: AsyncSession) -> Booking:
            booking = await repo.booking_for(session, caller, booking_id, for_update=True)
            if Status(booking.status) not in (Status.PENDING, Status.CONFIRMED):
                check_transition(Status(booking.status), Status.CONFIRMED)  # raises, naming the status
            if (booking.customer_id != caller.user_id and caller.role is not Role.ADMIN
                    and not (as_provider and booking.provider_id == caller.user_id)):
                raise PermissionDenied("only the customer or an admin may reschedule", reason="NOT_OWNER")
            service, slot = await catalog_repo.service_and_slot(session, booking.service_id, new_start)
            spec = catalog_repo.spec_of(service)
            original = booking.original_start_at or booking.start_at
            check_reschedule(count=booking.reschedule_count, max_reschedules=spec.booking.max_reschedules,
                             original_start=original, new_start=new_start,
                             max_distance=spec.booking.max_reschedule_distance)
            # The booking itself is left out of the count: a move within the same period counts once.
            await self._admission.check_limits(session, service, booking.customer_id, new_start, now,
                                               exclude_booking=booking.id)
            owner = Principal(user_id=booking.customer_id, session_id=caller.session_id, role=Role.CUSTOMER)
            slot = await self._admission.claim_slot(session, owner, service, slot, new_start, booking.seats, now,
                                                    exclude=booking.id)
            if slot.id == booking.slot_id:
                raise FailedPrecondition("the booking is already in that slot", reason="SLOT_ALREADY_BOOKED_BY_USER")
            await repo.lock_slots(session, [booking.slot_id, slot.id])
            before = _audited(booking)
            if not await repo.take_seats(session, slot.id, booking.seats):
                raise FailedPrecondition("not enough free seats in that slot", reason="SLOT_UNAVAILABLE")
            left = repo.SlotSeats(booking.slot_id, booking.seats)
            changes: dict[str, object] = {
                "original_start_at": original, "slot_id": slot.id, "start_at": slot.start_at, "end_at": slot.end_at,
                "reschedule_count": booking.reschedule_count + 1, "updated_at": now}
            if booking.approval_deadline is not None:
                changes["approval_deadline"] = slot.start_at - self._terms.minimum_notice(service)
            if await repo.record_change(session, booking, "rescheduled", now, by=caller.user_id, reason=reason,
                                        previous_start=booking.start_at, changes=changes, release=left):
                await offer_to_line(session, self._terms, left.slot_id, now)
            await repo.remember_request(session, key, booking.id, now)
            _audit(session, caller, booking, "RescheduleBooking", before, now, reason=reason)
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
                    await self._cancel(session, booking, by=None, reason="APPROVAL_EXPIRED", fee=0, now=now)
            await self._db.run(expire)
        if ids:
            self._committed()
        return len(ids)

    # --- events --------------------------------------------------------------------------

    async def last_event(self) -> int:
        return await self._db.read(repo.last_event_id)

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
