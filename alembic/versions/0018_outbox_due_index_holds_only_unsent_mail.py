"""ix_outbox_due holds only the mail still to send, in the order the dispatcher takes it

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 01:40:00

The dispatcher claims the next 200 due messages, oldest due first. The old index, (sent_at,
available_at), also held every message ever sent (sent_at NULL sorts apart, but the planner still
fetched every unsent row and sorted them to take 200): with a backlog of 10,000 unsent messages, which
a busy hour or an SMTP outage leaves behind, each claim read about 13,000 buffers and sorted 10,000
rows, half of PostgreSQL's work in the write benchmark, and more the further mail fell behind. A
partial index of exactly the unsent, not abandoned messages, ordered by available_at, gives the
claim's 200 in order and stops there; it stays as small as the backlog.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text('sent_at IS NULL AND abandoned_at IS NULL')


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_due')
        batch.create_index('ix_outbox_due', ['available_at'], unique=False, postgresql_where=UNSENT,
                           sqlite_where=UNSENT)


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_due')
        batch.create_index('ix_outbox_due', ['sent_at', 'available_at'], unique=False)
