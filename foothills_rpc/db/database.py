"""Engine, connections and transactions, for SQLite (embedded default) and PostgreSQL.

`Database.run(work)` is how data changes: it runs `work(session)` in a transaction, commits,
retries a bounded number of times on serialization failures and deadlocks, and turns database
errors into domain errors by SQLSTATE / SQLite error code, never by message text (`write_alone`
below, for a change that is one statement, does all of that but the transaction).

`Database.read(work)` is for work that only reads. On PostgreSQL it runs on an AUTOCOMMIT
connection (the pool's connections rest in AUTOCOMMIT; `run` switches its own to READ COMMITTED):
no BEGIN and no COMMIT, so a one-statement read costs one round trip instead of three.
That changes nothing a caller can see: under READ COMMITTED (the default, which `run` uses too)
every statement takes its own snapshot inside a transaction as well, and a read takes no locks. On
SQLite it is `run`. `Database.read_rows(statement, params)` (and `read_row`, its one-row form) is
the same for one Core query, on a connection with no ORM session around it: for the reads made most
often (the session check every call makes, a week of slots, a search). On PostgreSQL those reads and
the booking writes' CTEs run on psycopg itself (`rows_on_driver`).

`Database.write_alone(work)` is for work whose one change is its last statement, atomic on its own
(a CTE that checks and writes): on PostgreSQL it runs on the same AUTOCOMMIT connection, so that
statement is its own transaction and the call saves BEGIN and COMMIT. Its reads before the write
take their own snapshots, as they would inside a READ COMMITTED transaction. On SQLite it is `run`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import Executable, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from foothills_rpc.domain.errors import Aborted, DomainError, ResourceExhausted, Unavailable
from foothills_rpc.observability.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]

MAX_ATTEMPTS = 5
PING_TIMEOUT_SECONDS = 2.0
_RETRYABLE_SQLSTATES = {"40001": "serialization_failure", "40P01": "deadlock_detected"}
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
EXCLUSION_VIOLATION = "23P01"
# SQLite extended result codes for the same families.
_SQLITE_CODES = {
    2067: UNIQUE_VIOLATION,  # SQLITE_CONSTRAINT_UNIQUE
    1555: UNIQUE_VIOLATION,  # SQLITE_CONSTRAINT_PRIMARYKEY
    787: FOREIGN_KEY_VIOLATION,  # SQLITE_CONSTRAINT_FOREIGNKEY
    275: CHECK_VIOLATION,  # SQLITE_CONSTRAINT_CHECK
}
_SQLITE_BUSY = {5, 6, 261, 517}  # SQLITE_BUSY, SQLITE_LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT


class RetryTransaction(Exception):
    """Raised by work whose transaction must start over (a new snapshot and a new transaction id),
    as after a serialization failure; `run` retries it the same way."""


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for an ordinary `sqlite:///` or `postgresql://` URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:// or postgresql://")


def sync_url(url: str) -> str:
    """The SQLAlchemy sync URL (for Alembic) for the same database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def insert_on_conflict(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` that takes `on_conflict_do_nothing` / `_do_update`: both databases spell
    them alike, each through its own dialect's construct."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLite codes mapped onto the same names), or None."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None)
    if state:
        return str(state)
    if isinstance(orig, sqlite3.Error):
        return _SQLITE_CODES.get(getattr(orig, "sqlite_errorcode", -1))
    return None


def constraint_name(exc: DBAPIError) -> str | None:
    """The violated constraint's name on PostgreSQL (SQLite does not report it)."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _is_sqlite_busy(exc: DBAPIError) -> bool:
    return isinstance(exc.orig, sqlite3.Error) and getattr(exc.orig, "sqlite_errorcode", -1) in _SQLITE_BUSY


def _is_disconnect(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    state = sqlstate(exc) or ""
    # 08: connection exception; 57P: operator intervention (shutdown, crash); 53: insufficient resources.
    return state.startswith(("08", "57P", "53")) or (
        state == "" and type(exc.orig).__name__ == "OperationalError" and not isinstance(exc.orig, sqlite3.Error)
    )


class _Rehearsed(Exception):
    """Leaves a rehearsal's transaction, so that the session rolls it back."""


def _timed_pool(observe: Callable[[float], None]) -> type[AsyncAdaptedQueuePool]:
    """SQLAlchemy's pool, timing each checkout (the wait for a free connection, or for a new one).
    A class of its own per database: the pool is rebuilt from its class when the engine is disposed."""

    class TimedPool(AsyncAdaptedQueuePool):
        def _do_get(self) -> Any:
            started = time.perf_counter()
            try:
                return super()._do_get()
            finally:
                observe(time.perf_counter() - started)

    # SQLAlchemy names a pool's logger after its class; keep it as quiet as its own pools' (WARNING).
    logging.getLogger(f"{TimedPool.__module__}.{TimedPool.__name__}").setLevel(logging.WARNING)
    return TimedPool


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, metrics: Metrics | None = None) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.metrics = metrics = metrics or Metrics()
        options: dict[str, Any] = {"poolclass": _timed_pool(metrics.pool_wait.observe)}
        if not self.is_sqlite:
            options |= {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": 5.0,
                       # UTC sessions: psycopg then returns `datetime.UTC` itself, which the UTC columns
                       # pass through as is instead of converting every value from `Etc/UTC`.
                       "connect_args": {"connect_timeout": 5, "options": "-c TimeZone=UTC"},
                       # Reads and lone writes, most round trips, take a connection as it rests.
                       "isolation_level": "AUTOCOMMIT"}
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        # On PostgreSQL a transaction switches its connection to READ COMMITTED on checkout and back on
        # return: client-side flags in psycopg, no round trip, but SQLAlchemy's own work costs about as
        # much as a one-row read's (docs/benchmarks.md part fifteen), so only transactions pay it.
        self.transactions: AsyncEngine = self.engine if self.is_sqlite else self.engine.execution_options(
            isolation_level="READ COMMITTED")
        self._sessions = async_sessionmaker(self.transactions, expire_on_commit=False, autoflush=False)
        self._readers = None if self.is_sqlite else async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False)
        self._probe: asyncio.Future[bool] | None = None  # the outstanding `ping` query, if any
        pool = self.engine.pool
        assert isinstance(pool, AsyncAdaptedQueuePool)
        metrics.watch(metrics.pool_size, pool.size)
        metrics.watch(metrics.pool_in_use, pool.checkedout)
        self._outcomes = {(kind, outcome): metrics.transactions.labels(kind, outcome)
                          for kind in ("write", "read") for outcome in ("ok", "refused", "conflict", "failed")}

    async def run(self, work: Work[T]) -> T:
        """Runs `work` in one transaction and commits; see the module docstring."""
        return await self._attempt(self._in_session(work, transaction=True), write=True)

    async def write_alone(self, work: Work[T]) -> T:
        """Runs `work`, which reads and then changes data with at most one statement, without a
        transaction around it on PostgreSQL; see the module docstring. Counted as a write, or as a read
        when `work` returns None: it changed nothing, and the caller goes another way."""
        return await self._attempt(self._in_session(work, transaction=False), write=True, alone=True)

    async def read(self, work: Work[T]) -> T:
        """Runs `work`, which must only read (it is never committed, and on PostgreSQL each statement
        commits on its own); see the module docstring."""
        return await self._attempt(self._in_session(work, transaction=False), write=False)

    async def read_rows(self, statement: Executable, params: Mapping[str, object]) -> Sequence[Sequence[Any]]:
        """The rows of `statement`, a Core query, as tuple-like rows (index them by position), for the
        reads made most often: the session check every call makes, a week of slots. As `read`, but on a
        connection with no ORM session; on PostgreSQL psycopg runs the statement itself
        (`rows_on_driver`)."""
        async def all_rows() -> Sequence[Sequence[Any]]:
            conn = await self.engine.connect()
            try:
                return await rows_on(conn, statement, params)
            finally:
                await _hand_back(conn.close())

        return await self._attempt(all_rows, write=False)

    async def read_row(self, statement: Executable, params: Mapping[str, object]) -> Sequence[Any] | None:
        """The first row of `statement`, if any: `read_rows` for a query of at most one row."""
        rows = await self.read_rows(statement, params)
        return rows[0] if rows else None

    async def rehearse(self, work: Work[T]) -> T:
        """Runs `work` in one transaction and rolls it back: what a change would do, and nothing done
        (AIP-163's validate_only). The objects `work` returns are detached first, so they keep the state
        it left them in."""
        results: list[T] = []

        async def rolled_back(session: AsyncSession) -> None:
            results.append(await work(session))
            await session.flush()  # constraint violations surface here, as they would on commit
            session.expunge_all()
            raise _Rehearsed  # leaves the transaction, which the session rolls back

        try:
            await self._attempt(self._in_session(rolled_back, transaction=True), write=True)
        except _Rehearsed:
            return results[-1]
        raise AssertionError("unreachable")

    def _in_session(self, work: Work[T], *, transaction: bool) -> Callable[[], Awaitable[T]]:
        """`work` on a session of its own: in a transaction, or (on PostgreSQL) on the autocommit
        connection."""
        commits = transaction or self._readers is None
        sessions = self._sessions if commits else self._readers
        assert sessions is not None

        async def once() -> T:
            session = sessions()  # it begins its transaction with its first statement
            try:
                result = await work(session)
                if commits:
                    await session.commit()
                return result
            finally:
                await _hand_back(session.close())  # rolls back what was not committed

        return once

    async def _attempt(self, once: Callable[[], Awaitable[T]], *, write: bool, alone: bool = False) -> T:
        """Runs `once` until it is not told to retry, counted by kind and outcome."""
        kind = "write" if write else "read"
        try:
            result = await self._retrying(once)
        except BaseException as error:
            self._outcomes[kind, _outcome_of(error)].inc()
            raise
        self._outcomes["read" if alone and result is None else kind, "ok"].inc()
        return result

    async def _retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await once()
            except RetryTransaction as exc:
                if attempt < MAX_ATTEMPTS:
                    self.metrics.transaction_retries.labels("restart").inc()
                    continue
                raise Aborted("a concurrent change won; retry the call") from exc
            except DBAPIError as exc:
                if (cause := _RETRYABLE_SQLSTATES.get(sqlstate(exc) or "")) and attempt < MAX_ATTEMPTS:
                    self.metrics.transaction_retries.labels(cause).inc()
                    await asyncio.sleep(0.005 * 2**attempt)  # back off; the other transaction finishes
                    continue
                raise translate(exc) from exc
            except PoolTimeout as exc:
                raise ResourceExhausted("the server is busy; retry shortly", reason="DATABASE_BUSY") from exc
            except OSError as exc:
                raise Unavailable("the database cannot be reached") from exc
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        """True if the database answers `SELECT 1` within PING_TIMEOUT_SECONDS.

        A database that accepts connections but never answers (hung, frozen, cut off by the network)
        counts as down. The unanswered probe is not cancelled mid-query (see background.py); it stays
        the one outstanding probe, which later pings wait for, until the database answers or the
        connection fails."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._select_one())
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), PING_TIMEOUT_SECONDS)
        except Exception:  # any failure, a timeout included, means: not serving
            return False

    async def _select_one(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self.engine.dispose()


_HANDING_BACK: set[asyncio.Future[None]] = set()  # closes running on in the background (see below)


async def _hand_back(closing: Coroutine[Any, Any, None]) -> None:
    """Awaits `closing`, the close of a session or connection (which rolls back what is left and
    returns the connection to the pool). A call already being cancelled (its deadline, the server's
    stop) may be cancelled again: interrupted halfway, that close would leave SQLAlchemy to discard
    the connection with an error logged, or psycopg's own query cancellation interrupted. So for such
    a call the close runs on in a task of its own while the call goes; any other call awaits it
    directly, as a task per call costs about 20 us."""
    task = asyncio.current_task()
    if task is None or not task.cancelling():
        await closing
        return
    closer = asyncio.ensure_future(closing)
    _HANDING_BACK.add(closer)  # a task only the loop refers to may be collected before it ends
    closer.add_done_callback(_HANDING_BACK.discard)
    await asyncio.shield(closer)


def translate(exc: DBAPIError) -> Exception:
    """A domain error for a database error the caller should hear about, else the error itself."""
    state = sqlstate(exc)
    if state in _RETRYABLE_SQLSTATES:
        return Aborted("a concurrent change won; retry the call")
    if _is_sqlite_busy(exc):
        return Aborted("the database is busy with another write; retry the call", reason="DATABASE_BUSY")
    if _is_disconnect(exc):
        return Unavailable("the database cannot be reached")
    if state == "57014":  # query_canceled: statement timeout
        return Unavailable("the database did not answer in time", reason="DATABASE_TIMEOUT")
    return exc


@dataclass(frozen=True)
class _DriverStatement:
    """A Core statement as psycopg runs it: its SQL (named parameters, casts written in), the values it
    carries itself, and its parameters' type conversions (SQLAlchemy's own, run here)."""

    sql: str
    constants: dict[str, object]
    conversions: tuple[tuple[str, Callable[[Any], Any]], ...]

    def params(self, given: Mapping[str, object]) -> dict[str, object]:
        values = {**self.constants, **given}
        for name, convert in self.conversions:
            if name in values:
                values[name] = convert(values[name])
        return values


_ON_DRIVER: dict[Executable, _DriverStatement] = {}  # compiled for psycopg, the one driver this runs on


def _on_driver(statement: Executable, dialect: Dialect) -> _DriverStatement:
    on_driver = _ON_DRIVER.get(statement)
    if on_driver is None:
        on_driver = _ON_DRIVER[statement] = _compiled_for_driver(statement, dialect)
    return on_driver


def _compiled_for_driver(statement: Executable, dialect: Dialect) -> _DriverStatement:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if any(bind.expanding and not bind.literal_execute for bind in compiled.binds.values()):
        raise ValueError("a statement run on the driver takes no IN (...) parameter list")
    # The SQL with the values written into it that SQLAlchemy writes at execution (`literal_execute`);
    # the others stay named parameters, whatever values stand in for them here.
    sql = compiled.construct_expanded_state({name: None for name, bind in compiled.binds.items()
                                             if bind.required}).statement
    conversions = tuple((name, convert) for name, bind in compiled.binds.items()
                        if (convert := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None)
    constants = {name: bind.value for name, bind in compiled.binds.items() if bind.value is not None}
    return _DriverStatement(sql, constants, conversions)


async def rows_on(conn: AsyncConnection, statement: Executable,
                  params: Mapping[str, object]) -> Sequence[Sequence[Any]]:
    """The rows of `statement` (a Core query) on `conn`, in whatever transaction it is in: run by
    psycopg itself on PostgreSQL (`rows_on_driver`), by SQLAlchemy on SQLite."""
    if conn.dialect.name != "postgresql":
        return (await conn.execute(statement, params)).all()
    return await rows_on_driver(conn, statement, params)


async def first_row_on_driver(conn: AsyncConnection, statement: Executable,
                              params: Mapping[str, object]) -> Sequence[Any] | None:
    """The first row `statement` gives, if any, run as `rows_on_driver` runs it."""
    rows = await rows_on_driver(conn, statement, params)
    return rows[0] if rows else None


async def rows_on_driver(conn: AsyncConnection, statement: Executable,
                         params: Mapping[str, object]) -> list[Sequence[Any]]:
    """The rows `statement` (a Core statement that returns rows) gives, run by psycopg itself on
    `conn`'s PostgreSQL connection, in whatever transaction it is in: for the hottest statements, where
    SQLAlchemy's work around one execution cost more CPU than psycopg's (docs/benchmarks.md parts
    sixteen and seventeen). Each statement is compiled once and kept, so pass statements built once
    (module constants, cached builders); its parameters are converted as SQLAlchemy would; the rows'
    values are psycopg's, which for UUIDs, numbers, strings, booleans and (the sessions being in UTC)
    timestamps are what the columns' types return. Errors are raised as SQLAlchemy raises them, so
    callers and `Database` read them alike; a lost connection leaves the pool."""
    on_driver = _on_driver(statement, conn.dialect)
    driver = cast(psycopg.AsyncConnection[Any], (await conn.get_raw_connection()).driver_connection)
    try:
        return await (await driver.execute(on_driver.sql, on_driver.params(params))).fetchall()
    except psycopg.Error as exc:
        gone = conn.dialect.is_disconnect(cast(Any, exc), cast(Any, driver), None)
        if gone:
            await conn.invalidate(exc)
        raise DBAPIError.instance(on_driver.sql, None, exc, psycopg.Error, hide_parameters=True,
                                  connection_invalidated=gone) from exc


def _outcome_of(error: BaseException) -> str:
    """How a transaction that raised `error` ended, as foothills_db_transactions_total counts it."""
    if isinstance(error, _Rehearsed):
        return "ok"  # a rehearsal ends by rolling back, as it should
    if isinstance(error, Aborted):
        return "conflict"  # still losing a race after every retry
    if isinstance(error, DomainError) and not isinstance(error, Unavailable | ResourceExhausted):
        return "refused"  # the work's own refusal (a rule, a constraint): the transaction did its job
    return "failed"


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL for concurrent readers; writes take the lock at BEGIN so they queue instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        # SQLite's own lower() folds ASCII only; case-insensitive search must match PostgreSQL's.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=10000", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
