"""Support requests: users ask for help, admins assign, reply and move them along. Who is told of
each change (notifications/support_news.py) is queued in the same transaction as the change."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import audit
from foothills_rpc.db import bookings as bookings_repo
from foothills_rpc.db.accounts import user_by_id
from foothills_rpc.db.database import UNIQUE_VIOLATION, Database, sqlstate
from foothills_rpc.db.models import SupportMessage, SupportRequest, User
from foothills_rpc.db.visibility import visible_row
from foothills_rpc.domain.errors import AlreadyExists, Collector, FailedPrecondition, InvalidArgument, NotFound
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.requests import check_request_id
from foothills_rpc.domain.support import SupportStatus, check_transition
from foothills_rpc.domain.users import Role
from foothills_rpc.notifications import support_news
from foothills_rpc.security.page_tokens import PageTokens, instant_and_id

MAX_SUBJECT = 200
MAX_BODY = 5000


@dataclass(frozen=True)
class Thread:
    request: SupportRequest
    messages: list[SupportMessage]


@dataclass(frozen=True)
class SupportFilter:
    statuses: tuple[str, ...] = ()
    requester_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    created_before: datetime | None = None


def _check_text(field: str, value: str, limit: int, errors: Collector) -> None:
    if not value.strip():
        errors.add(field, "is required")
    elif len(value) > limit:
        errors.add(field, f"must be at most {limit} characters")


class Support:
    def __init__(self, *, db: Database, clock: Clock, page_tokens: PageTokens) -> None:
        self._db = db
        self._clock = clock
        self._page_tokens = page_tokens

    async def create(self, caller: Principal, *, subject: str, body: str, booking_id: uuid.UUID | None,
                     request_id: str) -> Thread:
        errors = Collector()
        _check_text("subject", subject, MAX_SUBJECT, errors)
        _check_text("body", body, MAX_BODY, errors)
        check_request_id(request_id, errors)
        errors.check()
        digest = hashlib.sha256(f"{subject}\0{body}\0{booking_id}".encode()).hexdigest()
        now = self._clock.now()

        async def create(session: AsyncSession) -> Thread:
            if booking_id is not None:
                await bookings_repo.booking_for(session, caller, booking_id)  # NOT_FOUND unless visible
            request = SupportRequest(id=uuid.uuid4(), requester_id=caller.user_id, subject=subject.strip(),
                                     booking_id=booking_id, status=SupportStatus.OPEN.value, assignee_id=None,
                                     request_id=request_id, request_hash=digest, created_at=now, updated_at=now)
            session.add(request)
            await session.flush()  # the request row first: the message refers to it
            session.add(SupportMessage(id=uuid.uuid4(), request_id=request.id, position=1, author_id=caller.user_id,
                                       from_staff=False, body=body, created_at=now))
            await session.flush()
            await support_news.tell(session, "opened", request, event="message-1", now=now, message=body,
                                    actor=await user_by_id(session, caller.user_id))
            return await _thread(session, request)

        try:
            return await self._db.run(create)
        except IntegrityError as exc:
            if sqlstate(exc) != UNIQUE_VIOLATION:
                raise
            # The unique (requester, request_id) caught a retry, perhaps a simultaneous one.
            async def replay(session: AsyncSession) -> Thread:
                request = (await session.execute(select(SupportRequest).where(
                    SupportRequest.requester_id == caller.user_id,
                    SupportRequest.request_id == request_id))).scalar_one()
                if request.request_hash != digest:
                    raise AlreadyExists("this request_id was used for a different request", reason="REQUEST_ID_REUSED")
                return await _thread(session, request)

            return await self._db.run(replay)

    async def get(self, caller: Principal, support_id: uuid.UUID) -> Thread:
        async def read(session: AsyncSession) -> Thread:
            return await _thread(session, await _visible(session, caller, support_id))

        return await self._db.run(read)

    async def list(self, caller: Principal, filters: SupportFilter, *, requested_size: int,
                   token: str) -> tuple[list[SupportRequest], str]:
        if caller.role is not Role.ADMIN:
            if filters.assignee_id is not None or (filters.requester_id not in (None, caller.user_id)):
                raise InvalidArgument.single("requester", "only admins filter by requester or assignee")
            filters = SupportFilter(statuses=filters.statuses, requester_id=caller.user_id,
                                    created_before=filters.created_before)

        async def read(session: AsyncSession, after: tuple[datetime, uuid.UUID] | None,
                       limit: int) -> list[SupportRequest]:
            query = (select(SupportRequest).order_by(SupportRequest.created_at.desc(), SupportRequest.id.desc())
                     .limit(limit))
            if filters.statuses:
                query = query.where(SupportRequest.status.in_(filters.statuses))
            if filters.requester_id is not None:
                query = query.where(SupportRequest.requester_id == filters.requester_id)
            if filters.assignee_id is not None:
                query = query.where(SupportRequest.assignee_id == filters.assignee_id)
            if filters.created_before is not None:
                query = query.where(SupportRequest.created_at < filters.created_before)
            if after is not None:
                query = query.where(or_(SupportRequest.created_at < after[0],
                                        and_(SupportRequest.created_at == after[0], SupportRequest.id < after[1])))
            return list((await session.execute(query)).scalars())

        return await self._page_tokens.page(
            token, filters, requested_size, parse=instant_and_id,
            fetch=lambda after, n: self._db.run(lambda s: read(s, after, n)),
            key_of=lambda request: [request.created_at.isoformat(), str(request.id)])

    async def add_message(self, caller: Principal, support_id: uuid.UUID, body: str) -> Thread:
        errors = Collector()
        _check_text("body", body, MAX_BODY, errors)
        errors.check()
        now = self._clock.now()

        async def add(session: AsyncSession) -> Thread:
            request = await _visible(session, caller, support_id, for_update=True)
            if request.status == SupportStatus.CLOSED.value:
                raise FailedPrecondition("the support request is closed", reason="SUPPORT_REQUEST_CLOSED")
            staff = caller.role is Role.ADMIN and caller.user_id != request.requester_id
            # The request row is locked, so counting gives the next position; the unique key guards it.
            position = len((await _thread(session, request)).messages) + 1
            message = SupportMessage(id=uuid.uuid4(), request_id=request.id, position=position,
                                     author_id=caller.user_id, from_staff=staff, body=body, created_at=now)
            session.add(message)
            request.updated_at = now
            if staff:
                audit.record(session, actor_id=caller.user_id, action="AddSupportMessage", target=_name(request),
                             after={"message": message.id}, now=now)
            await support_news.tell(session, "staff_replied" if staff else "requester_wrote", request,
                                    event=f"message-{position}", now=now, message=body,
                                    actor=await user_by_id(session, caller.user_id))
            await session.flush()
            return await _thread(session, request)

        return await self._db.run(add)

    async def assign(self, caller: Principal, support_id: uuid.UUID, assignee_id: uuid.UUID | None) -> Thread:
        now = self._clock.now()

        async def assign(session: AsyncSession) -> Thread:
            if assignee_id is not None:
                assignee = await session.get(User, assignee_id)
                if assignee is None or assignee.role != Role.ADMIN.value or assignee.disabled:
                    raise FailedPrecondition("the assignee must be an enabled admin", reason="ASSIGNEE_NOT_ADMIN")
            request = await _visible(session, caller, support_id, for_update=True)
            if request.assignee_id != assignee_id:
                audit.record(session, actor_id=caller.user_id, action="AssignSupportRequest", target=_name(request),
                             before={"assignee": request.assignee_id}, after={"assignee": assignee_id}, now=now)
                request.assignee_id = assignee_id
                request.updated_at = now
                if assignee_id is not None:
                    await support_news.tell(session, "assigned", request, event=f"assigned-{uuid.uuid4().hex}", now=now,
                                            actor=await user_by_id(session, caller.user_id))
            return await _thread(session, request)

        return await self._db.run(assign)

    async def set_status(self, caller: Principal, support_id: uuid.UUID, status: SupportStatus) -> Thread:
        now = self._clock.now()

        async def change(session: AsyncSession) -> Thread:
            request = await _visible(session, caller, support_id, for_update=True)
            current = SupportStatus(request.status)
            check_transition(current, status)
            audit.record(session, actor_id=caller.user_id, action="SetSupportRequestStatus", target=_name(request),
                         before={"status": current.value}, after={"status": status.value}, now=now)
            request.status = status.value
            request.updated_at = now
            await support_news.tell(session, "status_changed", request, event=f"status-{uuid.uuid4().hex}", now=now,
                                    actor=await user_by_id(session, caller.user_id))
            return await _thread(session, request)

        return await self._db.run(change)


def _name(request: SupportRequest) -> str:
    return f"supportRequests/{request.id.hex}"


async def _visible(session: AsyncSession, caller: Principal, support_id: uuid.UUID, *,
                   for_update: bool = False) -> SupportRequest:
    """The request if the caller may see it; NOT_FOUND otherwise, so existence does not leak."""
    return await visible_row(session, select(SupportRequest).where(SupportRequest.id == support_id),
                             owner=SupportRequest.requester_id, caller=caller, for_update=for_update,
                             missing=NotFound("no such support request", reason="SUPPORT_REQUEST_NOT_FOUND"))


async def _thread(session: AsyncSession, request: SupportRequest) -> Thread:
    messages = (await session.execute(select(SupportMessage).where(SupportMessage.request_id == request.id)
                                      .order_by(SupportMessage.position))).scalars()
    return Thread(request=request, messages=list(messages))
