"""Notices of support requests: the requester hears every staff reply and status change; staff (the
assignee once there is one, else every enabled admin) hear of new requests and the requester's
messages. Queued in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db.accounts import enabled_admins, user_by_id
from foothills_rpc.db.models import SupportRequest, User
from foothills_rpc.notifications.notices import SUPPORT_NOTICES, notify

What = Literal["opened", "requester_wrote", "staff_replied", "status_changed", "assigned"]


async def tell(session: AsyncSession, what: What, request: SupportRequest, *, event: str, now: datetime, actor: User,
               message: str = "") -> None:
    """Tells who SUPPORT_NOTICES names for `what`, except `actor`, who made the change. `event` names the
    change within the request (`message-3`; a status change or assignment: any id of its own)."""
    told = SUPPORT_NOTICES[what]
    requester = await user_by_id(session, request.requester_id)
    if told.audience == "requester":
        readers = [requester]
    elif told.audience == "assignee" or request.assignee_id is not None:
        readers = [await user_by_id(session, request.assignee_id)] if request.assignee_id else []
    else:
        readers = await enabled_admins(session)
    name = f"supportRequests/{request.id.hex}"
    context = {"topic": request.subject, "request": name, "requester": requester.display_name,
               "actor": actor.display_name, "author": "Foothills support", "message": message,
               "status": request.status.replace("_", " "), "assigned": request.assignee_id is not None,
               "booking": f"bookings/{request.booking_id.hex}" if request.booking_id else ""}
    for reader in readers:
        if reader.id != actor.id:
            await notify(session, reader, told, context, key=f"{name}:{event}", now=now)
