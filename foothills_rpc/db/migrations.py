"""Applies the Alembic migrations (the same scripts on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from foothills_rpc.db.database import sync_url

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str) -> None:
    # Alembic is synchronous; keep it off the event loop.
    await asyncio.to_thread(upgrade, database_url)


def missing(database_url: str) -> list[str]:
    """The migrations of this release that the database lacks, oldest first.

    Empty at the head, and also when a newer release has migrated the database already: during a
    rolling deploy the old servers keep running on the new schema (docs/scaling.md)."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    options = {} if database_url.startswith("sqlite") else {"connect_args": {"connect_timeout": 5}}
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool, **options)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    known = {revision.revision for revision in script.walk_revisions()}
    if current is not None and current not in known:
        return []  # a newer release's revision
    lacking = script.iterate_revisions(script.get_current_head(), current or "base")
    return [revision.revision for revision in reversed(list(lacking)) if revision.revision != current]
