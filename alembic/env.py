"""Alembic environment: the same migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from foothills_rpc.config import Settings
from foothills_rpc.db.database import sync_url
from foothills_rpc.db.models import Base

config = context.config
url = config.attributes.get("database_url") or Settings.from_env().database_url


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """PostgreSQL-only indexes (named ix_pg_*) live in migrations, not in the models."""
    return not (type_ == "index" and (name or "").startswith("ix_pg_"))


def run_migrations() -> None:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite rebuilds tables to alter them
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
