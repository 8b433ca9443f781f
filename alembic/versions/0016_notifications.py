"""notifications: the reader's locale and preferences, multipart outbox rows with a unique key, reminders

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 23:10:00

Mail is rendered from templates in the recipient's terms (their time zone and `locale`), may carry an
HTML part and an iCalendar attachment, and each notification has a key (event, kind, recipient) that
the outbox holds once: composing the same event twice queues nothing new. Users may turn off
reminders and notices that are not about their own bookings' terms (`reminders_enabled`,
`notices_enabled`). Reminders are rows due at a time, planned from the booking events and claimed
once across processes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=35), nullable=False, server_default='en'))
        batch.add_column(sa.Column('reminders_enabled', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('notices_enabled', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('html', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('calendar', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('notice_key', sa.String(length=200), nullable=True))
        batch.create_unique_constraint(op.f('uq_outbox_notice_key'), ['notice_key'])
    op.create_table(
        'reminders',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('booking_id', sa.Uuid(), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('offset_seconds', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_reminders_booking_id_bookings')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reminders')),
        sa.UniqueConstraint('booking_id', 'start_at', 'offset_seconds', name=op.f('uq_reminders_booking_id')),
    )
    op.create_index('ix_reminders_due', 'reminders', ['sent_at', 'due_at'])


def downgrade() -> None:
    op.drop_index('ix_reminders_due', table_name='reminders')
    op.drop_table('reminders')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_constraint(op.f('uq_outbox_notice_key'), type_='unique')
        batch.drop_column('notice_key')
        batch.drop_column('calendar')
        batch.drop_column('html')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('notices_enabled')
        batch.drop_column('reminders_enabled')
        batch.drop_column('locale')
