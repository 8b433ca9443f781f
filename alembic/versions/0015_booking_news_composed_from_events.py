"""booking mail is composed from the booking events after they commit: what each event said, and a cursor

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:40:00

A booking change used to read the customer's address and write the mail row inside its own
transaction. Now it writes only its event, carrying what the mail must tell as it was then (`details`:
the status, time, seats, price and the reason given), and the mail dispatcher composes the mail of
every event past `event_cursors.mail`, moving the cursor in the same transaction (each event mailed
once). The cursor starts at the last event already written, which was mailed the old way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('booking_events') as batch:
        batch.add_column(sa.Column('details', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.create_table(
        'event_cursors',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_event_cursors')),
    )
    op.execute("INSERT INTO event_cursors (name, position) SELECT 'mail', COALESCE(MAX(id), 0) FROM booking_events")


def downgrade() -> None:
    op.drop_table('event_cursors')
    with op.batch_alter_table('booking_events') as batch:
        batch.drop_column('details')
