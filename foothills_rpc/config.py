"""Configuration, read once from the environment into one typed object.

Every setting has an environment variable (documented in the README) and a default that suits the
embedded SQLite set-up. Nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///foothills.db"


class ConfigError(ValueError):
    """A setting is missing or malformed; the server refuses to start."""


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. Defaults follow OWASP's password storage guidance (19 MiB, t=2, p=1)."""

    memory_kib: int = 19 * 1024
    time_cost: int = 2
    parallelism: int = 1


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    sender: str = "Foothills <no-reply@foothills.invalid>"
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class TlsFiles:
    """The PEM contents `TlsSettings.load` read and checked."""

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None


@dataclass(frozen=True)
class TlsSettings:
    """PEM files for serving TLS; with `client_ca`, every caller must present a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def load(self) -> TlsFiles:
        """The files' contents, checked as the server will use them; ConfigError naming the culprit."""
        cert, key = _read("FOOTHILLS_TLS_CERT", self.cert), _read("FOOTHILLS_TLS_KEY", self.key)
        if b"-----BEGIN CERTIFICATE-----" not in cert:
            raise ConfigError(f"FOOTHILLS_TLS_CERT ({self.cert}) is not a PEM certificate")
        if b"PRIVATE KEY-----" not in key or b"ENCRYPTED" in key:
            raise ConfigError(f"FOOTHILLS_TLS_KEY ({self.key}) is not an unencrypted PEM private key")
        try:  # OpenSSL parses both and checks that the key belongs to the certificate
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert, self.key, password=b"")
        except ssl.SSLError as exc:
            problem = "is not the key of" if exc.reason == "KEY_VALUES_MISMATCH" else "cannot be used with"
            raise ConfigError(f"FOOTHILLS_TLS_KEY ({self.key}) {problem} the certificate in "
                              f"FOOTHILLS_TLS_CERT ({self.cert}): {exc}") from exc
        if self.client_ca is None:
            return TlsFiles(cert_chain=cert, private_key=key)
        client_ca = _read("FOOTHILLS_TLS_CLIENT_CA", self.client_ca)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=client_ca.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"FOOTHILLS_TLS_CLIENT_CA ({self.client_ca}) holds no PEM CA certificate: {exc}") from exc
        return TlsFiles(cert_chain=cert, private_key=key, client_ca=client_ca)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # None means: generate one beside an embedded database (refused with PostgreSQL).
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_issuer: str = "foothills"
    jwt_audience: str = "foothills-api"
    access_token_ttl: timedelta = timedelta(minutes=15)
    # Clock skew allowed between the server that issued a token and the one checking it, for `nbf` and
    # `iat` only: a token from a host a second ahead is still good, and `exp` stays exact.
    jwt_leeway: timedelta = timedelta(seconds=30)
    refresh_token_ttl: timedelta = timedelta(days=30)
    password_reset_ttl: timedelta = timedelta(minutes=30)
    argon2: Argon2Params = Argon2Params()
    # Failed logins for one email inside `login_window` beyond `login_max_failures` lock that
    # email for `login_lockout`.
    login_max_failures: int = 10
    login_window: timedelta = timedelta(minutes=15)
    login_lockout: timedelta = timedelta(minutes=15)
    # Registrations per client address, and password-reset requests per email, per `rate_window`:
    # Register's ALREADY_EXISTS cannot be used to sweep addresses, nor resets to flood an inbox.
    registrations_per_address: int = 20
    password_resets_per_email: int = 5
    rate_window: timedelta = timedelta(hours=1)
    # Peers whose x-forwarded-for is believed (a proxy such as deploy/nginx.conf); others' is ignored.
    trusted_proxies: frozenset[str] = frozenset()
    smtp: SmtpSettings | None = None
    # Whether this server process also sends the outbox's mail. False on API servers when a
    # `foothills-rpc send-mail` process sends it for them (their CPU then goes to calls only).
    send_mail: bool = True
    # Mail goes here as .eml files when no SMTP server is configured.
    outbox_dir: Path = Path("outbox")
    mail_sender: str = "Foothills <no-reply@foothills.invalid>"
    # Platform booking defaults; a service's own settings override them.
    default_minimum_notice: timedelta = timedelta(hours=1)
    # How long before a booking's start its customer is reminded, for services that set no reminders.
    default_reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    default_maximum_days_ahead: int = 90
    db_pool_size: int = 10
    # Unary calls served at once per process; more are refused with RESOURCE_EXHAUSTED (health exempt).
    max_in_flight: int = 2000
    # The longest a unary call may run, whatever the caller's deadline; then UNAVAILABLE (CALL_TIMEOUT).
    max_call_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    health_probe_seconds: float = 2.0
    slot_horizon_seconds: float = 3600.0
    sweep_seconds: float = 30.0
    # How often a process looks for booking events others committed, while someone watches (one query).
    watch_poll_seconds: float = 0.1
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line
    # HOST:PORT of this process's Prometheus endpoint; None: not served. Under `serve --workers N`
    # worker i serves on PORT + i; `send-mail` serves its own.
    metrics_listen: str | None = None
    # Whether spans are exported: the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
    tracing: bool = False
    # A caller's connection is closed after this long (its calls get the grace period to finish), so
    # long-lived channels spread again over workers behind SO_REUSEPORT or an L4 balancer. None: never.
    max_connection_age_seconds: float | None = None
    max_connection_age_grace_seconds: float = 30.0
    # None: plaintext (for a trusted network or a TLS-terminating proxy in front).
    tls: TlsSettings | None = None
    # Test mode only (FOOTHILLS_TEST_MODE=1): the server's clock starts at this instant.
    test_clock_start: datetime | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()

        def text(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {raw!r}")
            return value

        def seconds(name: str, default: timedelta) -> timedelta:
            return timedelta(seconds=number(name, default.total_seconds()))

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name, "").strip().lower()
            if not raw:
                return default
            if raw not in {"1", "true", "yes", "0", "false", "no"}:
                raise ConfigError(f"{name} must be true or false, got {raw!r}")
            return raw in {"1", "true", "yes"}

        smtp = None
        if host := env.get("FOOTHILLS_SMTP_HOST", "").strip():
            smtp = SmtpSettings(
                host=host,
                port=int(number("FOOTHILLS_SMTP_PORT", 587)),
                username=env.get("FOOTHILLS_SMTP_USERNAME", ""),
                password=env.get("FOOTHILLS_SMTP_PASSWORD", ""),
                starttls=flag("FOOTHILLS_SMTP_STARTTLS", True),
                sender=text("FOOTHILLS_MAIL_FROM", defaults.mail_sender),
            )
        argon2 = Argon2Params(
            memory_kib=int(number("FOOTHILLS_ARGON2_MEMORY_KIB", defaults.argon2.memory_kib)),
            time_cost=int(number("FOOTHILLS_ARGON2_TIME_COST", defaults.argon2.time_cost)),
            parallelism=int(number("FOOTHILLS_ARGON2_PARALLELISM", defaults.argon2.parallelism)),
        )
        return cls(
            test_clock_start=_test_clock_start(env),
            database_url=text("FOOTHILLS_DATABASE_URL", DEFAULT_DATABASE_URL),
            jwt_secret=env.get("FOOTHILLS_JWT_SECRET") or None,
            jwt_issuer=text("FOOTHILLS_JWT_ISSUER", defaults.jwt_issuer),
            jwt_audience=text("FOOTHILLS_JWT_AUDIENCE", defaults.jwt_audience),
            access_token_ttl=seconds("FOOTHILLS_ACCESS_TOKEN_TTL_SECONDS", defaults.access_token_ttl),
            jwt_leeway=seconds("FOOTHILLS_JWT_LEEWAY_SECONDS", defaults.jwt_leeway),
            refresh_token_ttl=seconds("FOOTHILLS_REFRESH_TOKEN_TTL_SECONDS", defaults.refresh_token_ttl),
            argon2=argon2,
            login_max_failures=int(number("FOOTHILLS_LOGIN_MAX_FAILURES", defaults.login_max_failures)),
            login_window=seconds("FOOTHILLS_LOGIN_WINDOW_SECONDS", defaults.login_window),
            login_lockout=seconds("FOOTHILLS_LOGIN_LOCKOUT_SECONDS", defaults.login_lockout),
            registrations_per_address=int(number("FOOTHILLS_REGISTRATIONS_PER_ADDRESS",
                                                 defaults.registrations_per_address)),
            password_resets_per_email=int(number("FOOTHILLS_PASSWORD_RESETS_PER_EMAIL",
                                                 defaults.password_resets_per_email)),
            rate_window=seconds("FOOTHILLS_RATE_WINDOW_SECONDS", defaults.rate_window),
            trusted_proxies=_addresses("FOOTHILLS_TRUSTED_PROXIES", env),
            smtp=smtp,
            send_mail=flag("FOOTHILLS_SEND_MAIL", defaults.send_mail),
            outbox_dir=Path(text("FOOTHILLS_OUTBOX_DIR", str(defaults.outbox_dir))),
            mail_sender=text("FOOTHILLS_MAIL_FROM", defaults.mail_sender),
            default_minimum_notice=seconds("FOOTHILLS_DEFAULT_MINIMUM_NOTICE_SECONDS", defaults.default_minimum_notice),
            default_reminders=_reminders("FOOTHILLS_DEFAULT_REMINDER_SECONDS", defaults.default_reminders, env),
            default_maximum_days_ahead=int(number("FOOTHILLS_DEFAULT_MAXIMUM_DAYS_AHEAD",
                                                  defaults.default_maximum_days_ahead)),
            db_pool_size=int(number("FOOTHILLS_DB_POOL_SIZE", defaults.db_pool_size)),
            max_in_flight=int(number("FOOTHILLS_MAX_IN_FLIGHT", defaults.max_in_flight)),
            max_call_seconds=number("FOOTHILLS_MAX_CALL_SECONDS", defaults.max_call_seconds),
            shutdown_grace_seconds=number("FOOTHILLS_SHUTDOWN_GRACE_SECONDS", defaults.shutdown_grace_seconds),
            # How often each process sweeps expired approvals and holds.
            sweep_seconds=number("FOOTHILLS_SWEEP_SECONDS", defaults.sweep_seconds),
            log_level=text("FOOTHILLS_LOG_LEVEL", defaults.log_level).upper(),
            log_format=_choice("FOOTHILLS_LOG_FORMAT", ("text", "json"), defaults.log_format, env),
            metrics_listen=_listen("FOOTHILLS_METRICS_LISTEN", env),
            tracing=_tracing(env),
            max_connection_age_seconds=number("FOOTHILLS_MAX_CONNECTION_AGE_SECONDS", 0) or None,
            max_connection_age_grace_seconds=number("FOOTHILLS_MAX_CONNECTION_AGE_GRACE_SECONDS",
                                                    defaults.max_connection_age_grace_seconds),
            tls=_tls(env),
        )


def _addresses(name: str, env: Mapping[str, str]) -> frozenset[str]:
    """A comma-separated list of IP addresses, normalised (so '::1' and '0:0::1' match)."""
    found = set()
    for raw in env.get(name, "").split(","):
        if raw := raw.strip():
            try:
                found.add(str(ipaddress.ip_address(raw)))
            except ValueError as exc:
                raise ConfigError(f"{name} must list IP addresses, got {raw!r}") from exc
    return frozenset(found)


def _reminders(name: str, default: tuple[timedelta, ...], env: Mapping[str, str]) -> tuple[timedelta, ...]:
    """Comma-separated positive seconds before the start, e.g. `86400,3600`; `none` for no reminders."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw == "none":
        return ()
    try:
        offsets = tuple(sorted({timedelta(seconds=int(part)) for part in raw.split(",")}, reverse=True))
    except ValueError as exc:
        raise ConfigError(f"{name} must list whole seconds (or be 'none'), got {raw!r}") from exc
    if not offsets or offsets[-1] <= timedelta(0) or len(offsets) > 5:
        raise ConfigError(f"{name} must list one to five positive numbers of seconds, got {raw!r}")
    return offsets


def _choice(name: str, choices: tuple[str, ...], default: str, env: Mapping[str, str]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _listen(name: str, env: Mapping[str, str]) -> str | None:
    """HOST:PORT (port 0 for any free one), or None when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name} must be HOST:PORT, got {raw!r}")
    return raw


def _tracing(env: Mapping[str, str]) -> bool:
    """The OpenTelemetry SDK's own variables decide: an OTLP endpoint set, and the SDK not disabled."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return bool(endpoint.strip()) and not disabled


def _test_clock_start(env: Mapping[str, str]) -> datetime | None:
    """FOOTHILLS_TEST_CLOCK_START, honoured only with FOOTHILLS_TEST_MODE=1 and refused without it, so a
    stray variable can never move a production server's clock."""
    raw = env.get("FOOTHILLS_TEST_CLOCK_START", "").strip()
    if not raw:
        return None
    if env.get("FOOTHILLS_TEST_MODE", "").strip().lower() not in {"1", "true", "yes"}:
        raise ConfigError("FOOTHILLS_TEST_CLOCK_START is only honoured with FOOTHILLS_TEST_MODE=1")
    try:
        start = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ConfigError(f"FOOTHILLS_TEST_CLOCK_START must be an ISO 8601 instant, got {raw!r}") from exc
    if start.tzinfo is None:
        raise ConfigError(f"FOOTHILLS_TEST_CLOCK_START needs a UTC offset, got {raw!r}")
    return start


def _tls(env: Mapping[str, str]) -> TlsSettings | None:
    """FOOTHILLS_TLS_CERT and FOOTHILLS_TLS_KEY together or not at all; FOOTHILLS_TLS_CLIENT_CA only with both.
    The files are read and checked when the server starts (`TlsSettings.load`)."""
    cert, key, client_ca = (env.get(f"FOOTHILLS_TLS_{name}", "").strip() for name in ("CERT", "KEY", "CLIENT_CA"))
    if not cert and not key:
        if client_ca:
            raise ConfigError("FOOTHILLS_TLS_CLIENT_CA needs FOOTHILLS_TLS_CERT and FOOTHILLS_TLS_KEY "
                              "(client certificates are checked inside TLS)")
        return None
    if not cert or not key:
        missing = "FOOTHILLS_TLS_KEY" if cert else "FOOTHILLS_TLS_CERT"
        raise ConfigError(f"{missing} is not set: TLS needs FOOTHILLS_TLS_CERT and FOOTHILLS_TLS_KEY together")
    return TlsSettings(cert=Path(cert), key=Path(key), client_ca=Path(client_ca) if client_ca else None)


def _read(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {name} ({path}): {exc.strerror or exc}") from exc
