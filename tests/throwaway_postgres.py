"""A PostgreSQL server of a test's own, which the test may stop and start (fault injection).

`ThrowawayPostgres.create()` runs Debian's `initdb` from `pg_config --bindir` in a fresh directory under
/tmp (short, for the Unix socket's path limit) and starts the server with `pg_ctl` on a free port,
listening on 127.0.0.1 only. initdb refuses to run as root, so as root every server command runs as the
`postgres` OS user (`runuser -u postgres --`) in a directory that user owns. Local (Unix socket)
connections are trusted, which is how the test administers it; TCP connections need a password
(scram-sha-256), which is how the server under test connects.

`stop()` (`pg_ctl stop -m fast`: sessions are terminated, the server shuts down cleanly) and `start()`
can be called any number of times; the port, data and roles stay. `freeze()` and `thaw()` stop and
continue its processes (SIGSTOP, SIGCONT). `configure()` changes a server setting at run time (ALTER
SYSTEM and a reload). `remove()` stops it immediately and deletes the directory.

It runs with `fsync=off` for speed on shared machines: safe here, since the tests stop it cleanly and
never crash it or its machine (what they kill is the booking server).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support import free_port

ROLE = "foothills_faults"
ROLE_PASSWORD = "throwaway-postgres-passphrase"
COMMAND_TIMEOUT = 60.0


class Unavailable(Exception):
    """This machine cannot run a PostgreSQL server of the test's own; the message says why."""


def _bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise Unavailable("pg_config is not on PATH (Debian: apt-get install postgresql)")
    found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                           check=False)
    bindir = Path(found.stdout.strip())
    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if not (bindir / tool).is_file()]
    if found.returncode != 0 or missing:
        raise Unavailable(f"no PostgreSQL server binaries in {bindir!s} (missing: {', '.join(missing)})")
    return bindir


def _as_server_user() -> tuple[list[str], str | None]:
    """The command prefix that runs a server command (and the OS user to own the directory, as root)."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise Unavailable("running as root, but runuser (util-linux) is missing to drop to the postgres user")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root, but there is no postgres OS user for initdb") from None
    return [runuser, "-u", "postgres", "--"], "postgres"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class ThrowawayPostgres:
    bindir: Path
    folder: Path
    port: int
    prefix: list[str]
    _frozen: list[int] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgresql.log"

    @classmethod
    def create(cls) -> ThrowawayPostgres:
        """initdb and start; raises Unavailable when the machine cannot, AssertionError when it fails."""
        bindir = _bindir()
        prefix, owner = _as_server_user()
        # Under /tmp itself, whatever TMPDIR says: the postgres user must reach it, and a Unix socket's
        # path is limited to about 100 bytes.
        folder = Path(tempfile.mkdtemp(prefix="foothills-pg-", dir="/tmp"))
        if owner is not None:
            shutil.chown(folder, user=owner, group=owner)
        folder.chmod(0o700)
        server = cls(bindir=bindir, folder=folder, port=free_port(), prefix=prefix)
        try:
            server._run("initdb", "-D", str(server.data), "-U", "postgres", "-E", "UTF8", "--no-sync",
                        "--auth-local=trust", "--auth-host=scram-sha-256")
            server.start()
            server.admin_execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)))
        except BaseException:
            server.remove()
            raise
        return server

    def _run(self, tool: str, *args: str) -> str:
        command = [*self.prefix, str(self.bindir / tool), *args]
        done = subprocess.run(command, cwd=self.folder, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
        assert done.returncode == 0, f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: ends every session (their transactions roll back) and shuts down cleanly."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def running(self) -> bool:
        command = [*self.prefix, str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)]
        return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT,
                              check=False).returncode == 0

    def remove(self) -> None:
        """Stops the server at once (if it runs) and deletes its directory."""
        self.thaw()
        try:
            if self.data.exists() and self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def admin_execute(self, statement: sql.Composable) -> None:
        """One statement as the superuser, over the Unix socket."""
        with psycopg.connect(host=str(self.folder), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(statement)

    def freeze(self) -> None:
        """SIGSTOP to the postmaster, then to each of its children: connections stay open, nothing answers
        (a hung server, or a network that drops every packet)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)  # first, so that it forks no new child meanwhile
        self._frozen = [postmaster, *_children(postmaster)]
        for pid in self._frozen[1:]:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT to every process `freeze` stopped."""
        for pid in reversed(self._frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def configure(self, setting: str, value: str | None) -> None:
        """`ALTER SYSTEM SET setting = value` (RESET for None), then a configuration reload."""
        name = sql.Identifier(setting)
        self.admin_execute(sql.SQL("ALTER SYSTEM RESET {}").format(name) if value is None else
                           sql.SQL("ALTER SYSTEM SET {} = {}").format(name, sql.Literal(value)))
        self.admin_execute(sql.SQL("SELECT pg_reload_conf()"))

    def count(self, query: str) -> int:
        """The single integer `query` returns, as the superuser."""
        with psycopg.connect(host=str(self.folder), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            row = conn.execute(query).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])

    def create_database(self, name: str) -> str:
        """A new empty database owned by the test role; its URL for the server under test (TCP, password)."""
        self.admin_execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(ROLE)))
        return f"postgresql://{ROLE}:{ROLE_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


__all__ = ["ROLE", "ThrowawayPostgres", "Unavailable"]
