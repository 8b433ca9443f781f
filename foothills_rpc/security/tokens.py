"""Access tokens (signed JWTs) and opaque secrets (refresh and reset tokens).

Access tokens are HS256 JWTs checked per RFC 8725: one allowed algorithm, required claims, issuer,
audience, our own token type, and no header that asks us to fetch or trust another key.
Opaque tokens are random; only their SHA-256 is stored, so a database leak yields no usable token.

A token's signature and shape are checked once per process: the claims of the exact token string
are kept (bounded, least recently used first out), and only the time claims are checked on each call.
That saves the HMAC and JSON work (about 160 us) on every call a signed-in client makes; whether the
session still stands is read from the database every time, so a logout still applies at once.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from foothills_rpc.domain.errors import Unauthenticated

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 (a claim value, not a secret)
_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid", "typ"]
# Headers that would make a verifier look elsewhere for the key, or that we do not understand.
_REFUSED_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})
# Tokens whose signature was checked, per process: about 1 kB each, room for that many signed-in clients.
VERIFIED_TOKENS = 8192


@dataclass(frozen=True)
class _Signed:
    """The claims of a token whose signature, issuer and audience were checked; not yet its times."""
    user_id: uuid.UUID
    session_id: uuid.UUID
    typ: object
    nbf: int
    iat: int
    exp: int


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """The stored form of an opaque token (hex SHA-256); tokens have 256 random bits, no salt needed."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccessTokens:
    def __init__(self, secret: str, *, issuer: str, audience: str, ttl: timedelta,
                 leeway: timedelta = timedelta(0)) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.ttl = ttl
        self._leeway = leeway.total_seconds()
        self._signed = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._check_signature)

    def issue(self, *, user_id: uuid.UUID, session_id: uuid.UUID, role: str, now: datetime) -> tuple[str, datetime]:
        expires_at = now + self.ttl
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "role": role,
            "typ": ACCESS_TOKEN_TYPE,
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"typ": "JWT"}), expires_at

    def verify(self, token: str, *, now: datetime) -> AccessClaims:
        """The claims of a valid access token; Unauthenticated for anything else."""
        signed = self._signed(token)
        # Time claims are checked against our clock, not the machine's (tests inject time). Another
        # server's clock may run a little ahead: `nbf` and `iat` get the leeway, `exp` none.
        ahead = now.timestamp() + self._leeway
        if signed.nbf > ahead or signed.iat > ahead:
            raise Unauthenticated("access token is not valid yet", reason="TOKEN_INVALID")
        if signed.exp <= now.timestamp():
            raise Unauthenticated("access token has expired", reason="TOKEN_EXPIRED")
        if signed.typ != ACCESS_TOKEN_TYPE:
            raise Unauthenticated("not an access token", reason="TOKEN_INVALID")
        return AccessClaims(user_id=signed.user_id, session_id=signed.session_id,
                            expires_at=datetime.fromtimestamp(signed.exp, now.tzinfo))

    def _check_signature(self, token: str) -> _Signed:
        """`token`'s claims if it is ours (signature, algorithm, headers, issuer, audience, the claims
        required); Unauthenticated for anything else. A refusal is not kept: raising skips the cache."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM or _REFUSED_HEADERS & header.keys():
                raise Unauthenticated("access token is not valid", reason="TOKEN_INVALID")
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
            return _Signed(user_id=uuid.UUID(str(claims["sub"])), session_id=uuid.UUID(str(claims["sid"])),
                           typ=claims["typ"], nbf=int(claims["nbf"]), iat=int(claims["iat"]),
                           exp=int(claims["exp"]))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise Unauthenticated("access token is not valid", reason="TOKEN_INVALID") from exc
