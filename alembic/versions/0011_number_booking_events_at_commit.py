"""booking events are numbered at commit on PostgreSQL, so the numbering lock is held for no round trip

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 23:40:00

An event is inserted with a draft id (negative, from a lock-free sequence). A deferred constraint
trigger gives it its number at COMMIT: it takes the next value under the `event_sequence` row lock,
which is then held only while PostgreSQL finishes that commit, never across a round trip to a busy
client. Numbers still follow commit order (the lock is released after the commit is visible), and the
watchers' wake-up is queued there too, so the writer sends no statement of its own for it.

SQLite is untouched: its writers are serialised whole, and the application numbers events itself.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE booking_event_drafts")
    op.execute("""
        CREATE FUNCTION number_booking_event() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            number bigint;
        BEGIN
            UPDATE event_sequence SET last_value = last_value + 1 WHERE id = 1 RETURNING last_value INTO number;
            UPDATE booking_events SET id = number WHERE id = NEW.id;
            PERFORM pg_notify('foothills_booking_events', '');
            RETURN NULL;
        END
        $$""")
    # Deferred triggers fire in the order their rows were inserted: one transaction's events keep theirs.
    op.execute("""
        CREATE CONSTRAINT TRIGGER booking_events_numbered_at_commit AFTER INSERT ON booking_events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id < 0) EXECUTE FUNCTION number_booking_event()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER booking_events_numbered_at_commit ON booking_events")
    op.execute("DROP FUNCTION number_booking_event()")
    op.execute("DROP SEQUENCE booking_event_drafts")
