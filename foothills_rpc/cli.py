"""`foothills-rpc`: serve, send-mail, migrate, create-admin, seed-demo, preview-mail."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

# Every command runs on uvloop, as the tests do: grpc.aio's per-call callbacks and psycopg's waits
# cost about a tenth less CPU on it than on asyncio's own loop (docs/benchmarks.md, part twenty-one).
import uvloop
from sqlalchemy.exc import DBAPIError

from foothills_rpc.config import ConfigError, Settings
from foothills_rpc.db.migrations import missing, upgrade
from foothills_rpc.domain.errors import DomainError, InvalidArgument
from foothills_rpc.domain.users import Role
from foothills_rpc.observability import logs


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from foothills_rpc import supervisor

    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.supervisor_pid is None and _lacks_migrations(settings):
        return 2
    if args.workers > 1:  # a supervisor of fresh worker processes (it never loads gRPC); refuses SQLite
        return supervisor.run(settings, args.listen, args.workers)
    from foothills_rpc.server import serve

    if args.supervisor_pid is not None:  # one of those workers: shares the port, never migrates
        supervisor.become_worker(args.supervisor_pid, settings.log_format)
    else:
        _migrate_embedded(settings)
    uvloop.run(serve(settings, args.listen, reuse_port=args.supervisor_pid is not None))
    return 0


def _send_mail(settings: Settings, args: argparse.Namespace) -> int:
    from foothills_rpc.server import send_mail

    if _lacks_migrations(settings):
        return 2
    _migrate_embedded(settings)
    uvloop.run(send_mail(settings))
    return 0


def _migrate_embedded(settings: Settings) -> None:
    """Migrates an embedded SQLite database: the default needs no set-up step, so whichever command
    opens it first brings it up to date. PostgreSQL is migrated only by `migrate`."""
    if settings.is_sqlite:
        upgrade(settings.database_url)


def _lacks_migrations(settings: Settings) -> bool:
    """True (and why, on stderr) for a PostgreSQL database behind this release; SQLite migrates itself."""
    if settings.is_sqlite or not (lacking := _unapplied(settings)):
        return False
    print(f"error: the database lacks migration(s) {', '.join(lacking)} of this release: run "
          "`foothills-rpc migrate` first", file=sys.stderr)
    return True


def _unapplied(settings: Settings) -> list[str]:
    """Migrations the database lacks. A server on an older schema would fail calls one by one with
    INTERNAL, so it does not start; a database that cannot be reached yet is the health check's
    business (the server starts NOT_SERVING and recovers)."""
    try:
        return missing(settings.database_url)
    except (DBAPIError, OSError) as exc:
        logging.getLogger(__name__).warning("cannot check the database's migrations (%s); starting anyway",
                                            type(exc).__name__)
        return []


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    logging.getLogger(__name__).info("database is at the latest migration")
    return 0


def _create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from foothills_rpc.server import build_components

    password = os.environ.get("FOOTHILLS_ADMIN_PASSWORD") or getpass.getpass("Password for the admin: ")

    async def create() -> None:
        components = build_components(settings)
        try:
            user = await components.accounts.register(email=args.email, password=password,
                                                      display_name=args.display_name, role=Role.ADMIN)
            print(f"created admin users/{user.id.hex} <{user.email}>")
        finally:
            components.hasher.close()
            await components.db.dispose()

    _migrate_embedded(settings)
    try:
        uvloop.run(create())
    except InvalidArgument as error:
        for v in error.violations:
            print(f"error: {v.field} {v.description} ({v.reason})", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"error: {error.message} ({error.reason})", file=sys.stderr)
        return 1
    return 0


def _seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from foothills_rpc.seed import DEMO_PASSWORD, seed_demo
    from foothills_rpc.server import build_components

    async def seed() -> dict[str, object]:
        components = build_components(settings)
        try:
            return await seed_demo(components, services=args.services, users=args.users, bookings=args.bookings)
        finally:
            components.hasher.close()
            await components.db.dispose()

    if min(args.services, args.users, args.bookings) < 0:
        print("error: --services, --users and --bookings must not be negative", file=sys.stderr)
        return 2
    if args.bookings and not (args.services and args.users):
        print("error: --bookings needs at least one service and one user", file=sys.stderr)
        return 2
    _migrate_embedded(settings)
    counts = uvloop.run(seed())
    sign_in_as: list[str] = counts.pop("sign_in_as")  # type: ignore[assignment]
    customer, provider, admin = sign_in_as
    if counts.get("bookings", args.bookings) != args.bookings:
        print(f"warning: only {counts['bookings']} of {args.bookings} bookings fit the catalog's diaries; "
              "add services or users", file=sys.stderr)
    print("seeded " + ", ".join(f"{value} {key}" for key, value in counts.items())
          + f"; every demo account's password is {DEMO_PASSWORD!r} (try {customer}, the provider {provider} "
            f"or the admin {admin})")
    return 0


def _preview_mail(settings: Settings, args: argparse.Namespace) -> int:
    from foothills_rpc.notifications.notices import every_notice
    from foothills_rpc.notifications.preview import write_samples

    known = sorted({told.kind for told in every_notice()})
    if unknown := sorted(set(args.kinds) - set(known)):
        print(f"error: no such kind: {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    if args.doc is not None:  # docs/notifications.md: its renderings brought up to date
        from foothills_rpc.notifications.preview import with_samples

        args.doc.write_text(with_samples(args.doc.read_text()))
        print(args.doc)
        return 0
    for path in write_samples(args.out, args.kinds or None):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foothills-rpc", description="Foothills booking backend (gRPC).")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server (migrates an embedded SQLite database)")
    serve.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT (default %(default)s)")
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the port through "
                       "SO_REUSEPORT, under a supervisor (default %(default)s; more than 1 needs PostgreSQL)")
    serve.add_argument("--supervisor-pid", type=int, help=argparse.SUPPRESS)  # set for the supervisor's workers
    serve.set_defaults(run=_serve)
    commands.add_parser("send-mail", help="send the outbox's mail, for servers run with FOOTHILLS_SEND_MAIL=false "
                        "(until SIGTERM)").set_defaults(run=_send_mail)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    admin = commands.add_parser("create-admin", help="create an admin account (password from "
                                "FOOTHILLS_ADMIN_PASSWORD or a prompt)")
    admin.add_argument("email")
    admin.add_argument("--display-name", default="Administrator")
    admin.set_defaults(run=_create_admin)
    seed = commands.add_parser("seed-demo", help="fill the database with a realistic demo catalog")
    seed.add_argument("--services", type=int, default=40, help="services to create (default %(default)s)")
    seed.add_argument("--users", type=int, default=50, help="customers to create (default %(default)s)")
    seed.add_argument("--bookings", type=int, default=300, help="bookings to create, past and future, obeying every "
                      "booking rule (default %(default)s; 0 for a catalog only)")
    seed.set_defaults(run=_seed_demo)
    preview = commands.add_parser("preview-mail", help="render a sample of each notice kind (or those named) to "
                                  "text, HTML and calendar files")
    preview.add_argument("kinds", nargs="*", metavar="KIND")
    preview.add_argument("--out", type=Path, default=Path("mail-preview"), help="folder (default %(default)s)")
    preview.add_argument("--doc", type=Path, help="instead, rewrite the renderings at the end of this markdown "
                         "file (docs/notifications.md)")
    preview.set_defaults(run=_preview_mail)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return int(args.run(settings, args))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
