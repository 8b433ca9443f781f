"""booking events on PostgreSQL are positioned by their transaction id: no lock, row or NOTIFY every booking shares

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:00:00

Until now a deferred trigger numbered each event at COMMIT under the one `event_sequence` row lock and
queued a NOTIFY (migration 0011): every booking write in the deployment passed through that lock, and
through the NOTIFY queue's lock, each held across its commit's WAL flush. An event's position is now
its transaction's id shifted left by 20 bits, plus its ordinal inside that transaction
(`db/bookings.py::append_event`), written with the row. Readers take only positions below the oldest
transaction still running (`pg_snapshot_xmin`), so a position they have passed is never later filled
in: the high-water-mark technique of PostgreSQL event stores. Watchers poll that mark instead of
being notified.

SQLite is untouched: its writers are serialised whole, and the application numbers events itself.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER booking_events_numbered_at_commit ON booking_events")
    op.execute("DROP FUNCTION number_booking_event()")
    op.execute("DROP SEQUENCE booking_event_drafts")
    # Positions already given out (1..N) stay below every new one as long as no transaction wrote more
    # than 2**20 events on average; refuse rather than reorder history.
    op.execute("""
        DO $$ BEGIN
            IF (SELECT COALESCE(MAX(id), 0) FROM booking_events)
               >= (pg_current_xact_id()::text::bigint << 20) THEN
                RAISE EXCEPTION 'booking event numbers run past the transaction-id positions';
            END IF;
        END $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # 0011's numbering resumes above every position given out meanwhile.
    op.execute("UPDATE event_sequence SET last_value = (SELECT COALESCE(MAX(id), 0) FROM booking_events)")
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
    op.execute("""
        CREATE CONSTRAINT TRIGGER booking_events_numbered_at_commit AFTER INSERT ON booking_events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id < 0) EXECUTE FUNCTION number_booking_event()""")
