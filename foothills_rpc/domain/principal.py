"""Who is calling: the signed-in user behind a verified access token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from foothills_rpc.domain.users import Role


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
