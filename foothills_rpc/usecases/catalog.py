"""Catalog use cases: categories, services, availability, slots and quotes."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import accounts as accounts_repo
from foothills_rpc.db import audit
from foothills_rpc.db import catalog as repo
from foothills_rpc.db import waitlist as waitlist_repo
from foothills_rpc.db.catalog_cache import CatalogCache
from foothills_rpc.db.changes import CATALOG, notify
from foothills_rpc.db.conflicts import find_conflicts
from foothills_rpc.db.database import Database, T, Work
from foothills_rpc.db.models import Booking, Category, Service
from foothills_rpc.domain import slots as slot_rules
from foothills_rpc.domain.catalog import ServiceSpec, check_seats, validate_category, validate_service
from foothills_rpc.domain.errors import (
    Aborted,
    Collector,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from foothills_rpc.domain.pricing import Quote, validate_currency
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import Role
from foothills_rpc.notifications import notices
from foothills_rpc.security.page_tokens import PageTokens
from foothills_rpc.usecases.terms import Terms
from foothills_rpc.usecases.waitlist import offer_freed

log = logging.getLogger(__name__)

MAX_SLOT_RANGE = timedelta(days=31)
MAX_QUERY_LENGTH = 100
# Reads of a service that another process keeps editing, before ListSlots gives up.
MAX_STALE_READS = 3
# Conflicts of one service compared before and after a schedule change; past this many, the list of
# what a change strands may miss some (each would still show in ListConflicts).
MAX_CONFLICTS_COMPARED = 10_000


def etag(service: Service) -> str:
    return f"v{service.version}"


class PricedSlot(NamedTuple):  # one per slot of a week, like repo.OpenSlot
    slot: repo.OpenSlot
    quote: Quote


@dataclass(frozen=True)
class ScheduleChange:
    """A service after a change (or as it would be), and the active future bookings the change leaves
    in conflict (soonest first) that were not in conflict before."""

    service: Service
    stranded: list[Booking]


@dataclass(frozen=True)
class SlotListing:
    """ListSlots' answer: the slots, and [bookable_from, bookable_until), where a slot may start to be
    booked now (after the minimum notice, within the horizon), which says why a range outside it is
    empty. The window is None for an archived service: nothing is bookable."""

    slots: list[PricedSlot]
    bookable_from: datetime | None = None
    bookable_until: datetime | None = None


class Catalog:
    def __init__(self, *, db: Database, clock: Clock, terms: Terms, page_tokens: PageTokens,
                 cache: CatalogCache) -> None:
        self._db = db
        self._clock = clock
        self._terms = terms
        self._page_tokens = page_tokens
        self._cache = cache

    async def _edit(self, work: Work[T]) -> T:
        """Runs a change to services: every process's catalog cache forgets them once it commits."""
        async def edit(session: AsyncSession) -> T:
            result = await work(session)
            await notify(session, CATALOG)
            return result

        try:
            return await self._db.run(edit)
        finally:
            self._cache.drop()  # this process's next read sees the edit at once (or its unknown outcome)

    async def _edit_schedule(self, actor: Principal, service_id: uuid.UUID, work: Work[Service], *,
                             validate_only: bool) -> ScheduleChange:
        """Runs a change that may strand bookings of the service (its availability, grid, capacity or
        state), and finds the bookings it leaves in conflict that were not before; the provider is told
        of them unless the change was theirs. With `validate_only` the change is rehearsed and rolled
        back: the answer says what it would do."""
        async def change(session: AsyncSession) -> ScheduleChange:
            now = self._clock.now()
            before = {c.booking.id for c in await find_conflicts(session, now=now, service_id=service_id,
                                                                 limit=MAX_CONFLICTS_COMPARED)}
            service = await work(session)
            after = await find_conflicts(session, now=now, service_id=service_id, limit=MAX_CONFLICTS_COMPARED)
            stranded = [c.booking for c in after if c.booking.id not in before]
            if stranded and actor.user_id != service.provider_id:
                provider = await accounts_repo.user_by_id(session, service.provider_id)
                by = await accounts_repo.user_by_id(session, actor.user_id)
                await notices.notify(session, provider, notices.CONFLICTS,
                             {"service": service.display_name, "actor": by.display_name,
                              "bookings": [{"name": f"bookings/{b.id.hex}", "start": b.start_at} for b in stranded]},
                             key=f"conflicts-{service.id.hex}-{service.version}", now=now,
                             service_zone=service.time_zone)
            return ScheduleChange(service, stranded)

        if validate_only:
            return await self._db.rehearse(change)
        return await self._edit(change)

    # --- categories ----------------------------------------------------------------------

    async def create_category(self, actor: Principal, display_name: str, description: str) -> Category:
        errors = Collector()
        validate_category(display_name, description, errors)
        errors.check()
        now = self._clock.now()

        async def create(session: AsyncSession) -> Category:
            category = await repo.insert_category(session, display_name=display_name.strip(), description=description,
                                                  now=now)
            audit.record(session, actor_id=actor.user_id, action="CreateCategory",
                         target=f"categories/{category.id.hex}", after=_category_fields(category), now=now)
            return category

        return await self._db.run(create)

    async def category(self, category_id: uuid.UUID) -> Category:
        return await self._db.read(lambda s: repo.category_by_id(s, category_id))

    async def categories(self, *, requested_size: int, token: str) -> tuple[list[Category], str]:
        return await self._page_tokens.page(
            token, "categories", requested_size, parse=lambda key: (str(key[0]), uuid.UUID(str(key[1]))),
            fetch=lambda after, n: self._db.read(lambda s: repo.list_categories(s, after=after, limit=n)),
            key_of=lambda category: [category.name_key, str(category.id)])

    async def update_category(self, actor: Principal, category_id: uuid.UUID, *, display_name: str | None,
                              description: str | None) -> Category:
        current = await self.category(category_id)
        errors = Collector()
        validate_category(current.display_name if display_name is None else display_name,
                          current.description if description is None else description, errors)
        errors.check()
        now = self._clock.now()

        async def apply(session: AsyncSession) -> Category:
            category = await repo.category_by_id(session, category_id)
            before = _category_fields(category)
            if display_name is not None:
                await repo.rename_category(session, category, display_name.strip())
            if description is not None:
                category.description = description
            category.updated_at = now
            audit.record(session, actor_id=actor.user_id, action="UpdateCategory",
                         target=f"categories/{category.id.hex}", before=before, after=_category_fields(category),
                         now=now)
            return category

        return await self._db.run(apply)

    async def delete_category(self, actor: Principal, category_id: uuid.UUID) -> None:
        now = self._clock.now()

        async def delete(session: AsyncSession) -> None:
            before = _category_fields(await repo.category_by_id(session, category_id))
            await repo.delete_category(session, category_id)
            audit.record(session, actor_id=actor.user_id, action="DeleteCategory",
                         target=f"categories/{category_id.hex}", before=before, now=now)

        await self._db.run(delete)

    # --- services ------------------------------------------------------------------------

    async def create_service(self, caller: Principal, spec: ServiceSpec, *, category_id: uuid.UUID | None,
                             provider_id: uuid.UUID | None, errors: Collector) -> Service:
        """`errors`: what the request's conversion found (a malformed category name, say); the spec's
        violations join them, so the caller learns every bad field at once. A None `category_id`
        was reported there."""
        validate_service(spec, errors)
        if provider_id is None and caller.role is Role.ADMIN and "service.provider" not in errors.fields:
            errors.add("service.provider", "is required when an admin creates a service")
        errors.check()
        assert category_id is not None
        provider_id = provider_id or caller.user_id
        if caller.role is Role.PROVIDER and provider_id != caller.user_id:
            raise PermissionDenied("providers create services for themselves only", reason="NOT_OWNER")
        now = self._clock.now()

        async def create(session: AsyncSession) -> Service:
            await repo.category_by_id(session, category_id)
            provider = await accounts_repo.user_by_id(session, provider_id)
            if provider.role != Role.PROVIDER.value or provider.disabled:
                raise FailedPrecondition("the provider must be an active user with the provider role",
                                         reason="NOT_A_PROVIDER")
            service = Service(id=uuid.uuid4(), category_id=category_id, provider_id=provider_id, availability={},
                              archived=False, version=1, created_at=now, updated_at=now)
            repo.apply_spec(service, spec)
            session.add(service)
            await session.flush()
            audit.record(session, actor_id=caller.user_id, action="CreateService",
                         target=f"services/{service.id.hex}", after=_service_fields(service), now=now)
            return service

        return await self._db.run(create)

    async def service(self, service_id: uuid.UUID) -> Service:
        """The service as last committed (from the cache when it is on); never change the row."""
        return await self._cache.service(service_id, partial(self._read_service, service_id))

    async def _read_service(self, service_id: uuid.UUID) -> Service:
        """The service from the database, bypassing the cache."""
        return await self._db.read(lambda s: repo.service_by_id(s, service_id))

    async def search(self, search: repo.ServiceSearch, *, requested_size: int,
                     token: str) -> tuple[list[Service], str]:
        errors = Collector()
        if len(search.query) > MAX_QUERY_LENGTH:
            errors.add("query", f"must be at most {MAX_QUERY_LENGTH} characters")
        if (search.min_price_minor is not None and search.max_price_minor is not None
                and search.min_price_minor > search.max_price_minor):
            errors.add("max_price_minor", "must not be below min_price_minor")
        priced = search.min_price_minor is not None or search.max_price_minor is not None or search.order == "price"
        if search.currency and not validate_currency(search.currency):
            errors.add("currency_code", "must be an ISO 4217 code such as EUR")
        elif priced and not search.currency:  # minor units of two currencies do not compare
            errors.add("currency_code", "is required with a price filter or the price order")
        if (search.available_after is None) != (search.available_before is None):
            errors.add("available_before", "set both available_after and available_before, or neither")
        elif search.available_after and search.available_before and search.available_after >= search.available_before:
            errors.add("available_before", "must be after available_after")
        errors.check()
        now = self._clock.now()
        found, next_token = await self._page_tokens.page(
            token, search, requested_size, parse=partial(repo.search_key, search.order),
            fetch=lambda after, n: self._found(search, now=now, after=after, limit=n),
            key_of=lambda row: row.key)
        return await self._services([f.service_id for f in found]), next_token

    async def _found(self, search: repo.ServiceSearch, *, now: datetime, after: tuple[Any, uuid.UUID] | None,
                     limit: int) -> list[repo.Found]:
        return repo.found_in(await self._db.read_rows(*repo.search_statement(search, now=now, after=after,
                                                                             limit=limit)))

    async def _services(self, service_ids: list[uuid.UUID]) -> list[Service]:
        """The services of `service_ids`, in that order, from the cache where it holds them."""
        rows = self._cache.services(service_ids)
        missing = [i for i in service_ids if i not in rows]
        if missing:
            generation = self._cache.generation()
            loaded = await self._db.read(lambda s: repo.services_by_ids(s, missing))
            self._cache.keep(loaded, generation)
            rows.update((service.id, service) for service in loaded)
        return [rows[i] for i in service_ids if i in rows]

    async def update_service(self, caller: Principal, service_id: uuid.UUID, *, expected_etag: str,
                             changes: dict[str, object], category_id: uuid.UUID | None,
                             validate_only: bool = False, errors: Collector | None = None) -> ScheduleChange:
        """Applies `changes` (ServiceSpec field -> value) and a new category, under the etag check.
        `errors`: what the request's conversion found; the changed service's violations join them."""
        errors = Collector() if errors is None else errors
        if not expected_etag:
            errors.add("service.etag", "is required: send the etag you last read")
        now = self._clock.now()

        async def apply(session: AsyncSession) -> Service:
            service = await self._owned(session, caller, service_id)
            if service.archived:
                raise FailedPrecondition("archived services cannot be changed", reason="SERVICE_ARCHIVED")
            if expected_etag and etag(service) != expected_etag:
                raise Aborted("the service changed since you read it; read it again", reason="ETAG_MISMATCH")
            before = _service_fields(service)
            spec = replace(repo.spec_of(service), **changes)  # type: ignore[arg-type]
            validate_service(spec, errors)
            errors.check()
            if category_id is not None:
                await repo.category_by_id(session, category_id)
                service.category_id = category_id
            repo.apply_spec(service, spec)
            service.version += 1
            service.updated_at = now
            await repo.materialize_slots(session, service, now=now, horizon=self._terms.horizon(service, now))
            for slot_id in await waitlist_repo.slots_with_waiting(session, service.id):
                await offer_freed(session, self._terms, slot_id, now)  # more capacity: offers to the line
            audit.record(session, actor_id=caller.user_id, action="UpdateService",
                         target=f"services/{service.id.hex}", before=before, after=_service_fields(service), now=now)
            return service

        return await self._edit_schedule(caller, service_id, apply, validate_only=validate_only)

    async def archive_service(self, caller: Principal, service_id: uuid.UUID, *, expected_etag: str,
                              validate_only: bool = False) -> ScheduleChange:
        now = self._clock.now()

        async def apply(session: AsyncSession) -> Service:
            service = await self._owned(session, caller, service_id)
            if expected_etag and etag(service) != expected_etag:
                raise Aborted("the service changed since you read it; read it again", reason="ETAG_MISMATCH")
            if not service.archived:
                service.archived = True
                service.version += 1
                service.updated_at = now
                await repo.materialize_slots(session, service, now=now, horizon=self._terms.horizon(service, now))
                audit.record(session, actor_id=caller.user_id, action="DeleteService",
                             target=f"services/{service.id.hex}", before={"archived": False},
                             after={"archived": True}, now=now)
            return service

        return await self._edit_schedule(caller, service_id, apply, validate_only=validate_only)

    # --- availability and slots ------------------------------------------------------------

    async def set_availability(self, caller: Principal, service_id: uuid.UUID,
                               availability: slot_rules.Availability, *, validate_only: bool = False) -> ScheduleChange:
        violations = slot_rules.validate_availability(availability, prefix="availability")
        if violations:
            raise InvalidArgument(violations)
        now = self._clock.now()

        async def apply(session: AsyncSession) -> Service:
            service = await self._owned(session, caller, service_id)
            if service.archived:
                raise FailedPrecondition("archived services cannot be changed", reason="SERVICE_ARCHIVED")
            before = {"availability": service.availability}
            repo.store_availability(service, availability)
            audit.record(session, actor_id=caller.user_id, action="SetAvailability",
                         target=f"services/{service.id.hex}", before=before,
                         after={"availability": service.availability}, now=now)
            service.version += 1
            service.updated_at = now
            await repo.materialize_slots(session, service, now=now, horizon=self._terms.horizon(service, now))
            return service

        return await self._edit_schedule(caller, service_id, apply, validate_only=validate_only)

    async def list_slots(self, service_id: uuid.UUID, start: datetime, end: datetime, seats: int) -> SlotListing:
        errors = Collector()
        if end <= start:
            errors.add("end_time", "must be after start_time")
        elif end - start > MAX_SLOT_RANGE:
            errors.add("end_time", "must be at most 31 days after start_time")
        check_seats(seats, errors)
        errors.check()
        now = self._clock.now()
        service = await self.service(service_id)
        for _ in range(MAX_STALE_READS):
            if service.archived or service.suspended:
                return SlotListing([])
            opens, closes = now + self._terms.minimum_notice(service), self._terms.horizon(service, now)
            # Seats are read now, never cached, in the statement that checks the service's version. Holds
            # past their expiry stop counting at once, swept or not (the application's clock decides).
            rows = repo.open_slots_of(await self._db.read_rows(*repo.open_slots_statement(
                service_id, max(start, opens), min(end, closes), now)), version=service.version)
            if rows is not None:
                spec = repo.spec_of(service)  # once per call, not once per slot
                prices: dict[tuple[int, ...], Quote] = {}
                price = partial(self._terms.price, service, seats=seats or 1, now=now, spec=spec, prices=prices)
                return SlotListing([PricedSlot(slot, price(slot)) for slot in rows], opens, closes)
            # An edit committed in another process; its notification is on the way. Read the service anew.
            service = await self._read_service(service_id)
        raise Aborted("the service kept changing while its slots were read; retry the call")

    async def quote(self, service_id: uuid.UUID, start: datetime, seats: int) -> Quote:
        errors = Collector()
        check_seats(seats, errors)
        errors.check()
        now = self._clock.now()

        service, slot = await self._db.read(lambda session: repo.service_and_open_slot(session, service_id, start,
                                                                                        now))
        if slot is None or service.archived:
            raise FailedPrecondition("that start is not a slot of the service", reason="SLOT_UNAVAILABLE")
        return self._terms.price(service, slot, seats=seats or 1, now=now)

    async def extend_horizons(self) -> int:
        """Materialises every active service's slots on to today's horizon; returns how many services got
        new ones. Only the stretch after a service's last slot can lack any (an edit of the grid
        rewrites all of it), so only that stretch is generated, and only a service with a new start
        is locked and written: each server process runs this every hour and at its start."""
        extended = 0
        for found, last_start in await self._db.read(repo.active_services_and_last_slots):
            now = self._clock.now()  # per service: a run over many services takes a while
            since = now if last_start is None else max(now, last_start)
            if not any(slot.start != last_start for slot in
                       repo.grid_slots(found, since, self._terms.horizon(found, now))):
                continue

            async def extend(session: AsyncSession, service_id: uuid.UUID = found.id, since: datetime = since) -> None:
                service = await repo.service_by_id(session, service_id, for_update=True)
                await repo.materialize_slots(session, service, now=since,
                                             horizon=self._terms.horizon(service, self._clock.now()), extend_only=True)
            await self._db.run(extend)
            extended += 1
        return extended

    async def _owned(self, session: AsyncSession, caller: Principal, service_id: uuid.UUID) -> Service:
        """The service, locked for change, if the caller may change it."""
        service = await repo.service_by_id(session, service_id, for_update=True)
        if caller.role is not Role.ADMIN and service.provider_id != caller.user_id:
            raise PermissionDenied("only the service's provider or an admin may change it", reason="NOT_OWNER")
        return service




def _category_fields(category: Category) -> dict[str, object]:
    return {"display_name": category.display_name, "description": category.description}


def _service_fields(service: Service) -> dict[str, object]:
    fields: dict[str, object] = audit.plain(repo.spec_of(service))
    fields.update(category=f"categories/{service.category_id.hex}", provider=f"users/{service.provider_id.hex}")
    return fields
