"""Account use cases: registration, sign-in, sessions, password resets and the caller's profile."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.config import Settings
from foothills_rpc.db import accounts as repo
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import User
from foothills_rpc.domain.errors import (
    Collector,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from foothills_rpc.domain.passwords import password_violation
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import (
    DEFAULT_LOCALE,
    MAX_EMAIL_LENGTH,
    Role,
    display_name_problem,
    email_problem,
    locale_problem,
    normalize_email,
    phone_problem,
    time_zone_problem,
)
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.notifications.notices import PASSWORD_CHANGED, PASSWORD_RESET, notify
from foothills_rpc.security.passwords import PasswordHasher
from foothills_rpc.security.tokens import AccessTokens, digest, new_opaque_token

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "email or password is incorrect"


@dataclass(frozen=True)
class Credentials:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True)
class ProfileChanges:
    """New values for the fields named in an update mask (None: leave as is)."""

    display_name: str | None = None
    phone: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    reminders_enabled: bool | None = None
    notices_enabled: bool | None = None


class Accounts:
    def __init__(self, *, db: Database, clock: Clock, settings: Settings, hasher: PasswordHasher,
                 tokens: AccessTokens, dispatcher: Dispatcher,
                 sessions_changed: Callable[[uuid.UUID], None] = lambda _user_id: None) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._hasher = hasher
        self._tokens = tokens
        self._dispatcher = dispatcher
        self._sessions_changed = sessions_changed  # this process's session cache forgets the user at once

    # --- registration and sign-in ------------------------------------------------------------

    async def register(self, *, email: str, password: str, display_name: str,
                       role: Role = Role.CUSTOMER, client_address: str | None = None) -> User:
        """`client_address` is the caller's for a self-service sign-up (rate-limited per address);
        None for an operator's command line."""
        email = normalize_email(email)
        errors = Collector()
        if problem := email_problem(email):
            errors.add("email", problem)
        if problem := display_name_problem(display_name):
            errors.add("display_name", problem)
        if violation := password_violation(password, email=email, field="password"):
            errors.violations.append(violation)
        errors.check()
        if client_address is not None:
            # Its own transaction: the insert below may fail (ALREADY_EXISTS), and the probe must still count.
            await self._db.run(lambda s: self._count_call(
                s, "register", client_address, self._settings.registrations_per_address,
                reason="REGISTRATION_RATE_LIMITED",
                message="too many registrations from this address; try again later"))
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        return await self._db.run(lambda s: repo.insert_user(
            s, email=email, password_hash=password_hash, display_name=display_name.strip(), role=role, now=now))

    async def login(self, *, email: str, password: str) -> tuple[Credentials, User]:
        email = normalize_email(email)
        errors = Collector()
        if not email:
            errors.add("email", "is required")
        elif len(email) > MAX_EMAIL_LENGTH:  # no account can have it; says nothing about who exists
            errors.add("email", f"must be at most {MAX_EMAIL_LENGTH} characters")
        if not password:
            errors.add("password", "is required")
        errors.check()
        now = self._clock.now()

        async def look_up(session: AsyncSession) -> tuple[datetime | None, User | None]:
            locked = await repo.login_locked_until(session, email=email, now=now)
            return locked, (None if locked else await repo.user_by_email(session, email))

        locked_until, user = await self._db.run(look_up)
        if locked_until is not None:
            raise ResourceExhausted("too many failed sign-ins for this email; try again later",
                                    reason="LOGIN_THROTTLED", retry_after=locked_until - now)
        # Always verify a hash (a dummy one for unknown emails) so timing does not reveal accounts.
        if not await self._hasher.verify(password[:1024], user.password_hash if user else None):
            await self._db.run(lambda s: repo.record_login_failure(
                s, email=email, now=now, window=self._settings.login_window,
                max_failures=self._settings.login_max_failures, lockout=self._settings.login_lockout))
            raise Unauthenticated(INVALID_CREDENTIALS, reason="INVALID_CREDENTIALS")
        assert user is not None
        if user.disabled:
            raise PermissionDenied("this account is disabled", reason="ACCOUNT_DISABLED")
        new_hash = await self._hasher.hash(password) if self._hasher.needs_rehash(user.password_hash) else None

        async def sign_in(session: AsyncSession) -> Credentials:
            # Re-read under a lock: a disable that landed after the password check wins.
            current = await repo.user_by_id(session, user.id, for_update=True)
            if current.disabled:
                raise PermissionDenied("this account is disabled", reason="ACCOUNT_DISABLED")
            await repo.clear_login_failures(session, email=email)
            if new_hash is not None:
                current.password_hash = new_hash
            auth_session = await repo.start_session(session, user_id=user.id, now=now,
                                                    ttl=self._settings.refresh_token_ttl)
            return await self._issue(session, user_id=user.id, role=Role(user.role),
                                     session_id=auth_session.id, now=now, expires_at=auth_session.expires_at)

        return await self._db.run(sign_in), user

    async def refresh(self, *, refresh_token: str) -> Credentials:
        if not refresh_token:
            raise InvalidArgument.single("refresh_token", "is required")
        now = self._clock.now()

        async def rotate(session: AsyncSession) -> Credentials | repo.Rotation:
            rotation = await repo.use_refresh_token(session, token_hash=digest(refresh_token), now=now)
            if rotation.session_id is None:
                return rotation
            if rotation.reused:
                # A rotated token came back: someone kept a copy. End the whole family.
                ended.extend(await repo.revoke_sessions(session, session_id=rotation.session_id, now=now,
                                                        reason="refresh_token_reused"))
                return rotation
            owner = await repo.active_session_owner(session, session_id=rotation.session_id, now=now)
            if owner is None:
                return repo.Rotation(session_id=None)
            auth_session = await session.get(repo.AuthSession, rotation.session_id)
            assert auth_session is not None
            return await self._issue(session, user_id=owner.user_id, role=owner.role,
                                     session_id=rotation.session_id, now=now,
                                     expires_at=auth_session.expires_at)

        ended: list[uuid.UUID] = []
        try:
            outcome = await self._db.run(rotate)
        finally:
            self._forget(ended)
        if isinstance(outcome, Credentials):
            return outcome
        if outcome.reused:
            log.warning("refresh token reused; session revoked session_id=%s", outcome.session_id)
            raise Unauthenticated("refresh token was already used; sign in again", reason="REFRESH_TOKEN_REUSED")
        raise Unauthenticated("refresh token is not valid; sign in again", reason="REFRESH_TOKEN_INVALID")

    async def logout(self, principal: Principal) -> None:
        now = self._clock.now()
        try:
            await self._db.run(lambda s: repo.revoke_sessions(s, session_id=principal.session_id, now=now,
                                                              reason="logout"))
        finally:
            self._sessions_changed(principal.user_id)

    def _forget(self, users: list[uuid.UUID]) -> None:
        for user_id in users:
            self._sessions_changed(user_id)

    async def _issue(self, session: AsyncSession, *, user_id: uuid.UUID, role: Role, session_id: uuid.UUID,
                     now: datetime, expires_at: datetime) -> Credentials:
        refresh_token = new_opaque_token()
        await repo.add_refresh_token(session, session_id=session_id, token_hash=digest(refresh_token),
                                     now=now, expires_at=expires_at)
        access_token, access_expires_at = self._tokens.issue(
            user_id=user_id, session_id=session_id, role=role.value, now=now)
        return Credentials(access_token, access_expires_at, refresh_token, expires_at)

    # --- password reset ----------------------------------------------------------------------

    async def request_password_reset(self, *, email: str) -> None:
        email = normalize_email(email)
        if problem := email_problem(email):
            raise InvalidArgument.single("email", problem)
        now = self._clock.now()
        token = new_opaque_token()
        expires_at = now + self._settings.password_reset_ttl

        async def create(session: AsyncSession) -> bool:
            # Counted per email whether or not an account has it, and in the same transaction as the
            # token, so known and unknown emails both cost one write commit: neither the answer nor its
            # time tells them apart. A refused call rolls back its own count, which stays over the limit.
            await self._count_call(session, "password_reset", email, self._settings.password_resets_per_email,
                                   reason="PASSWORD_RESET_RATE_LIMITED",
                                   message="too many password-reset requests for this email; try again later")
            user = await repo.user_by_email(session, email)
            if user is None or user.disabled:
                return False
            await repo.add_password_reset(session, user_id=user.id, token_hash=digest(token), now=now,
                                          expires_at=expires_at)
            await notify(session, user, PASSWORD_RESET, {"code": token, "expires": expires_at},
                         key=f"reset-{digest(token)}", now=now)
            return True

        if await self._db.run(create):
            self._dispatcher.notify()

    async def reset_password(self, *, token: str, new_password: str) -> None:
        if not token:
            raise InvalidArgument.single("token", "is required")
        if violation := password_violation(new_password, email="", field="new_password"):
            raise InvalidArgument([violation])
        password_hash = await self._hasher.hash(new_password)
        now = self._clock.now()

        async def apply(session: AsyncSession) -> None:
            user_id = await repo.use_password_reset(session, token_hash=digest(token), now=now)
            if user_id is None:
                raise Unauthenticated("reset token is not valid", reason="RESET_TOKEN_INVALID")
            user = await repo.user_by_id(session, user_id)
            if violation := password_violation(new_password, email=user.email, field="new_password"):
                raise InvalidArgument([violation])  # rolls back: the token stays usable
            user.password_hash = password_hash
            user.updated_at = now
            ended.extend(await repo.revoke_sessions(session, user_id=user_id, now=now, reason="password_reset"))
            await repo.clear_login_failures(session, email=user.email)
            await self._tell_password_changed(session, user, "reset with a code sent to this address", now)

        ended: list[uuid.UUID] = []
        try:
            await self._db.run(apply)
        finally:
            self._forget(ended)
        self._dispatcher.notify()

    @staticmethod
    async def _tell_password_changed(session: AsyncSession, user: User, how: str, now: datetime) -> None:
        await notify(session, user, PASSWORD_CHANGED, {"how": how, "changed": now, "account": user.email},
                     key=f"password-{uuid.uuid4().hex}", now=now)

    async def _count_call(self, session: AsyncSession, scope: str, key: str, limit: int, *, reason: str,
                          message: str) -> None:
        """Counts this call against (scope, key) and refuses it once the window holds more than `limit`."""
        now, window = self._clock.now(), self._settings.rate_window
        hits = await repo.hit_rate_limit(session, scope=scope, key=key, now=now, window=window)
        if hits.count > limit:
            raise ResourceExhausted(message, reason=reason, retry_after=hits.window_started_at + window - now)

    # --- profile -----------------------------------------------------------------------------

    async def profile(self, principal: Principal) -> User:
        return await self._db.run(lambda s: repo.user_by_id(s, principal.user_id))

    async def update_profile(self, principal: Principal, changes: ProfileChanges) -> User:
        errors = Collector()
        checks = [("display_name", changes.display_name, display_name_problem),
                  ("phone", changes.phone, phone_problem), ("time_zone", changes.time_zone, time_zone_problem),
                  ("locale", changes.locale, locale_problem)]
        for field, value, problem_of in checks:
            if value is not None and (problem := problem_of(value)):
                errors.add(f"user.{field}", problem)
        errors.check()
        now = self._clock.now()

        async def apply(session: AsyncSession) -> User:
            user = await repo.user_by_id(session, principal.user_id)
            if changes.display_name is not None:
                user.display_name = changes.display_name.strip()
            if changes.phone is not None:
                user.phone = changes.phone
            if changes.time_zone is not None:
                user.time_zone = changes.time_zone
            if changes.locale is not None:
                user.locale = changes.locale or DEFAULT_LOCALE
            if changes.reminders_enabled is not None:
                user.reminders_enabled = changes.reminders_enabled
            if changes.notices_enabled is not None:
                user.notices_enabled = changes.notices_enabled
            user.updated_at = now
            return user

        return await self._db.run(apply)

    async def change_password(self, principal: Principal, *, current_password: str, new_password: str) -> None:
        errors = Collector()
        if not current_password:
            errors.add("current_password", "is required")
        user = await self.profile(principal)
        if violation := password_violation(new_password, email=user.email, field="new_password"):
            errors.violations.append(violation)
        errors.check()
        if not await self._hasher.verify(current_password[:1024], user.password_hash):
            # Not UNAUTHENTICATED: clients read that as "sign out", yet the session is fine.
            raise FailedPrecondition("the current password is incorrect", reason="WRONG_CURRENT_PASSWORD")
        password_hash = await self._hasher.hash(new_password)
        now = self._clock.now()

        async def apply(session: AsyncSession) -> None:
            stored = await repo.user_by_id(session, principal.user_id)
            stored.password_hash = password_hash
            stored.updated_at = now
            await repo.revoke_sessions(session, user_id=principal.user_id, keep=principal.session_id, now=now,
                                       reason="password_changed")
            await self._tell_password_changed(session, stored, "changed by someone who knew the old one", now)

        try:
            await self._db.run(apply)
        finally:
            self._sessions_changed(principal.user_id)
        self._dispatcher.notify()
