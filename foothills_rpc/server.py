"""Assembles the application and runs the grpc.aio server: services, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from sqlalchemy.engine import make_url

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from foothills_rpc.background import Periodic
from foothills_rpc.clock import Clock, ShiftedClock, SystemClock
from foothills_rpc.config import ConfigError, Settings
from foothills_rpc.db.bookings import last_event_id
from foothills_rpc.db.catalog_cache import CatalogCache
from foothills_rpc.db.changes import ChangeFeed, Listener
from foothills_rpc.db.database import Database
from foothills_rpc.db.session_cache import SessionCache
from foothills_rpc.interceptors.auth import Authenticator
from foothills_rpc.interceptors.pipeline import RpcPipeline
from foothills_rpc.mail.mailer import Mailer, destination, mailer_for
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.notifications import booking_news
from foothills_rpc.observability import tracing
from foothills_rpc.observability.metrics import Metrics
from foothills_rpc.security.page_tokens import PageTokens
from foothills_rpc.security.passwords import PasswordHasher
from foothills_rpc.security.tokens import AccessTokens
from foothills_rpc.services.admin import AdminServicer
from foothills_rpc.services.auth import AuthServicer
from foothills_rpc.services.booking import BookingServicer
from foothills_rpc.services.catalog import CatalogServicer
from foothills_rpc.services.reflection import DocumentedPool
from foothills_rpc.usecases.accounts import Accounts
from foothills_rpc.usecases.admission import Admission
from foothills_rpc.usecases.audit import AuditLog
from foothills_rpc.usecases.bookings import Bookings
from foothills_rpc.usecases.catalog import Catalog
from foothills_rpc.usecases.conflicts import Conflicts
from foothills_rpc.usecases.holds import Holds
from foothills_rpc.usecases.reports import Reports
from foothills_rpc.usecases.support import Support
from foothills_rpc.usecases.terms import Terms
from foothills_rpc.usecases.users import UserAdmin
from foothills_rpc.usecases.waitlist import Waitlist

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)
MAX_MESSAGE_BYTES = 1024 * 1024
PROBES_MISSED_FOR_NOT_SERVING = 2


def resolve_jwt_secret(settings: Settings) -> str:
    """The configured secret; on the embedded default, one generated once and kept beside the database."""
    if settings.jwt_secret:
        return settings.jwt_secret
    if not settings.is_sqlite:
        raise ConfigError("FOOTHILLS_JWT_SECRET must be set when the database is PostgreSQL")
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return secrets.token_urlsafe(48)
    path = Path(f"{database}.jwt-secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        log.warning("FOOTHILLS_JWT_SECRET is not set: generated one and saved it to %s (mode 0600)", path)
    return path.read_text().strip()


@dataclass
class Components:
    settings: Settings
    clock: Clock
    metrics: Metrics
    tracer_provider: trace.TracerProvider
    db: Database
    listener: Listener
    hasher: PasswordHasher
    dispatcher: Dispatcher
    accounts: Accounts
    users: UserAdmin
    terms: Terms
    catalog: Catalog
    bookings: Bookings
    holds: Holds
    waitlist: Waitlist
    support: Support
    conflicts: Conflicts
    audit_log: AuditLog
    reports: Reports
    authenticator: Authenticator


def clock_for(settings: Settings) -> Clock:
    """The system clock; in test mode, one that starts at the configured instant."""
    if settings.test_clock_start is None:
        return SystemClock()
    log.warning("TEST MODE: the clock starts at %s", settings.test_clock_start.isoformat())
    return ShiftedClock(settings.test_clock_start)


def tracer_provider_for(settings: Settings, service_name: str) -> trace.TracerProvider:
    return tracing.exporting_provider(service_name) if settings.tracing else tracing.NO_TRACING


def build_components(settings: Settings, *, clock: Clock | None = None, mailer: Mailer | None = None,
                     tracer_provider: trace.TracerProvider | None = None) -> Components:
    """`tracer_provider`: where spans go (tests pass one that keeps them); by default the OTLP exporter
    when the standard variables ask for it, else none."""
    clock = clock or clock_for(settings)
    secret = resolve_jwt_secret(settings)
    metrics = Metrics()
    tracer_provider = tracer_provider or tracer_provider_for(settings, "foothills-rpc")
    db = Database(settings.database_url, pool_size=settings.db_pool_size, metrics=metrics)
    if tracer_provider is not tracing.NO_TRACING:
        tracing.trace_statements(db.engine, tracer_provider)
    mailer = mailer or mailer_for(settings)
    hasher = PasswordHasher(settings.argon2)
    tokens = AccessTokens(secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                          ttl=settings.access_token_ttl, leeway=settings.jwt_leeway)
    dispatcher = Dispatcher(db, mailer, clock, sender=settings.mail_sender, tracer_provider=tracer_provider,
                            composers=booking_news.composers(settings.default_reminders))
    page_tokens = PageTokens(secret)
    listener = Listener(settings.database_url)
    cache = CatalogCache(listener)
    sessions = SessionCache(listener)
    terms = Terms(settings)
    catalog = Catalog(db=db, clock=clock, terms=terms, page_tokens=page_tokens, cache=cache)
    admission = Admission(terms=terms)
    holds = Holds(db=db, clock=clock, terms=terms, admission=admission, dispatcher=dispatcher)
    bookings = Bookings(db=db, clock=clock, terms=terms, admission=admission, dispatcher=dispatcher,
                        changes=ChangeFeed(functools.partial(db.read, last_event_id),
                                           poll_seconds=settings.watch_poll_seconds),
                        page_tokens=page_tokens, cache=cache)
    return Components(
        settings=settings, clock=clock, metrics=metrics, tracer_provider=tracer_provider, db=db, listener=listener,
        hasher=hasher, dispatcher=dispatcher,
        accounts=Accounts(db=db, clock=clock, settings=settings, hasher=hasher, tokens=tokens, dispatcher=dispatcher,
                          sessions_changed=sessions.forget_user),
        users=UserAdmin(db=db, clock=clock, page_tokens=page_tokens, catalog_changed=cache.drop,
                        sessions_changed=sessions.forget_user),
        terms=terms,
        catalog=catalog,
        bookings=bookings,
        holds=holds,
        waitlist=Waitlist(db=db, clock=clock, page_tokens=page_tokens, admission=admission, holds=holds,
                          dispatcher=dispatcher),
        support=Support(db=db, clock=clock, page_tokens=page_tokens),
        conflicts=Conflicts(db=db, clock=clock, bookings=bookings, catalog=catalog, page_tokens=page_tokens),
        audit_log=AuditLog(db=db, page_tokens=page_tokens),
        reports=Reports(db=db, clock=clock),
        authenticator=Authenticator(tokens=tokens, db=db, clock=clock, sessions=sessions),
    )


class _GenericHandlersOnly:
    """Where the generated `add_*_to_server` functions put the servicers: only their generic handlers
    reach the server. grpc.aio's server keeps a pending call request per registered method and, for
    every call it accepts, waits on all of them (asyncio.wait over some 60 futures: a fifth of a
    GetService's instructions, docs/benchmarks.md part seventeen); with generic handlers alone it
    waits on one. Finding the method stays a dict lookup per service."""

    def __init__(self, server: aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        """Not registered: see the class docstring (the generic handlers serve the same methods)."""


class FoothillsServer:
    """A running server: `start()` binds and serves, `stop()` drains and releases everything."""

    def __init__(self, components: Components, *, reuse_port: bool = False) -> None:
        """`reuse_port`: share the port with sibling workers (SO_REUSEPORT); only under `serve --workers`."""
        self.components = components
        settings, metrics = components.settings, components.metrics
        pipeline = RpcPipeline(components.authenticator, metrics, max_in_flight=settings.max_in_flight,
                               max_call_seconds=settings.max_call_seconds)
        interceptors: list[aio.ServerInterceptor] = [pipeline]
        if components.tracer_provider is not tracing.NO_TRACING:
            # The span opens outside the pipeline, so the pipeline's log line and trailers carry its ids.
            interceptors.insert(0, aio_server_interceptor(tracer_provider=components.tracer_provider))
        # No bandwidth-delay probes: grpc sends them as PINGs after a request's data, often once the
        # call is over, and nginx drops a kept-alive upstream connection on which anything arrives
        # (nginx/nginx#929), so behind nginx most bursts of calls cost new connections. The probes
        # only size the window for what clients send us: a fixed window of two of our largest
        # requests lets one arrive in a single round trip, as the probes did.
        options: list[tuple[str, int]] = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                          ("grpc.max_send_message_length", 4 * MAX_MESSAGE_BYTES),
                                          ("grpc.so_reuseport", int(reuse_port)), ("grpc.http2.bdp_probe", 0),
                                          ("grpc.http2.lookahead_bytes", 2 * MAX_MESSAGE_BYTES)]
        if settings.max_connection_age_seconds:  # see docs/scaling.md: spreads long-lived channels again
            options += [("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
                        ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace_seconds * 1000))]
        self._server = aio.server(
            interceptors=interceptors,
            options=options,
        )
        self._health = health.aio.HealthServicer()
        self._serving = True
        self._missed_probes = 0
        self._stop_metrics: Callable[[], None] | None = None
        self._background = [
            Periodic("health-probe", self._probe_database, settings.health_probe_seconds, metrics),
            Periodic("slot-horizons", components.catalog.extend_horizons, settings.slot_horizon_seconds, metrics),
            Periodic("approval-expiry", components.bookings.expire_approvals, settings.sweep_seconds, metrics),
            Periodic("hold-expiry", components.holds.expire_holds, settings.sweep_seconds, metrics),
        ]
        handlers = _GenericHandlersOnly(self._server)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(components.accounts, trusted_proxies=settings.trusted_proxies), handlers)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(
            components.users, components.support, components.conflicts, components.audit_log, components.reports),
            handlers)
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(components.catalog), handlers)
        booking_pb2_grpc.add_BookingServiceServicer_to_server(
            BookingServicer(components.bookings, components.holds, components.waitlist), handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, handlers)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.aio.ReflectionServicer(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), pool=DocumentedPool()), handlers)

    async def start(self, listen: str) -> int:
        tls = self.components.settings.tls
        if tls is None:
            port = self._server.add_insecure_port(listen)
        else:
            files = tls.load()  # ConfigError before anything binds or starts
            port = self._server.add_secure_port(listen, grpc.ssl_server_credentials(
                [(files.private_key, files.cert_chain)], root_certificates=files.client_ca,
                require_client_auth=files.client_ca is not None))
            log.info("TLS on %s%s", listen, ": client certificates required" if files.client_ca else "")
        if port == 0:
            raise OSError(f"cannot listen on {listen}")
        await self._set_health(await self.components.db.ping())
        await self._server.start()
        if listen_metrics := self.components.settings.metrics_listen:
            self._stop_metrics = self.components.metrics.serve(listen_metrics)
            log.info("metrics on %s", listen_metrics)
        if self.components.settings.send_mail:
            self.components.dispatcher.start()
        self.components.listener.start()
        for task in self._background:
            task.start()
        return port

    async def stop(self, grace: float | None = None) -> None:
        grace = self.components.settings.shutdown_grace_seconds if grace is None else grace
        for task in self._background:
            await task.stop()
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
        await self.components.listener.stop()
        await self.components.bookings.changes.close()
        await self.components.dispatcher.stop()
        self.components.hasher.close()
        await self.components.db.dispose()
        if self._stop_metrics:
            self._stop_metrics()
        await asyncio.to_thread(tracing.close, self.components.tracer_provider)

    async def wait(self) -> None:
        await self._server.wait_for_termination()

    async def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, status)
            self.components.metrics.health.labels(name or "overall").set(int(serving))

    async def _probe_database(self) -> None:
        # One missed probe (a busy moment, a stalled event loop) is not an outage: turning NOT_SERVING
        # would make load balancers drain a healthy process. Two in a row are; one success recovers.
        answered = await self.components.db.ping()
        self._missed_probes = 0 if answered else self._missed_probes + 1
        serving = self._missed_probes < PROBES_MISSED_FOR_NOT_SERVING
        if serving != self._serving:
            log.warning("database %s", "reachable again: SERVING" if serving else "unreachable: NOT_SERVING")
            self._serving = serving
        await self._set_health(serving)


async def serve(settings: Settings, listen: str, *, reuse_port: bool = False) -> None:
    """Runs until SIGTERM or SIGINT, then stops accepting and lets in-flight calls finish."""
    server = FoothillsServer(build_components(settings), reuse_port=reuse_port)
    port = await server.start(listen)
    host = listen.rsplit(":", 1)[0]
    log.info("serving on %s:%d database=%s%s", host, port, make_url(settings.database_url).render_as_string(),
             f" mail {destination(settings)}" if settings.send_mail else " (mail left to send-mail)")
    await _until_stopped()
    log.info("shutting down: draining in-flight calls for up to %.0fs", settings.shutdown_grace_seconds)
    await server.stop()
    log.info("stopped")


async def send_mail(settings: Settings) -> None:
    """Sends the outbox's mail until SIGTERM or SIGINT, for servers run with FOOTHILLS_SEND_MAIL=false:
    polls every second, so mail leaves within about a second of its commit. Any number may run; each
    mail is claimed by one of them (and by no server that sends mail too)."""
    db = Database(settings.database_url, pool_size=2)
    provider = tracer_provider_for(settings, "foothills-send-mail")
    dispatcher = Dispatcher(db, mailer_for(settings), clock_for(settings), sender=settings.mail_sender,
                            tracer_provider=provider, composers=booking_news.composers(settings.default_reminders))
    dispatcher.start()
    stop_metrics = db.metrics.serve(settings.metrics_listen) if settings.metrics_listen else None
    log.info("sending mail database=%s %s%s", make_url(settings.database_url).render_as_string(), destination(settings),
             f" metrics on {settings.metrics_listen}" if settings.metrics_listen else "")
    try:
        await _until_stopped()
    finally:
        await dispatcher.stop()
        await db.dispose()
        if stop_metrics:
            stop_metrics()
        await asyncio.to_thread(tracing.close, provider)
    log.info("stopped")


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


__all__ = ["FoothillsServer", "build_components", "grpc", "send_mail", "serve"]
