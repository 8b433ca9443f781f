"""waitlist: customers in line for a full slot, offered holds as seats free up

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('waitlist_offer_seconds', sa.Integer(), nullable=True))
    op.create_table(
        'waitlist_entries',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('service_id', sa.Uuid(), nullable=False),
        sa.Column('slot_id', sa.Uuid(), nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('seats', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('hold_id', sa.Uuid(), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('waiting', 'offered', 'booked', 'left', 'expired', 'closed')",
                           name=op.f('ck_waitlist_entries_status')),
        sa.CheckConstraint('seats >= 1', name=op.f('ck_waitlist_entries_seats_positive')),
        sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_waitlist_entries_customer_id_users')),
        sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], name=op.f('fk_waitlist_entries_hold_id_holds')),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'],
                                name=op.f('fk_waitlist_entries_service_id_services')),
        sa.ForeignKeyConstraint(['slot_id'], ['slots.id'], name=op.f('fk_waitlist_entries_slot_id_slots')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entries')),
        sa.UniqueConstraint('hold_id', name='uq_waitlist_entries_hold'),
        sa.UniqueConstraint('slot_id', 'customer_id', name='uq_waitlist_entries_slot_customer'),
        sa.UniqueConstraint('slot_id', 'position', name='uq_waitlist_entries_slot_position'),
    )
    op.create_index('ix_waitlist_entries_line', 'waitlist_entries', ['slot_id', 'status', 'position'],
                    unique=False)
    op.create_index('ix_waitlist_entries_customer_joined', 'waitlist_entries', ['customer_id', 'joined_at', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_waitlist_entries_customer_joined', table_name='waitlist_entries')
    op.drop_index('ix_waitlist_entries_line', table_name='waitlist_entries')
    op.drop_table('waitlist_entries')
    with op.batch_alter_table('services') as batch:
        batch.drop_column('waitlist_offer_seconds')
