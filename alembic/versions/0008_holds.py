"""slot holds: seats reserved for a customer until an expiry, and each service's hold duration

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 14:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('hold_seconds', sa.Integer(), nullable=True))
    op.create_table(
        'holds',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('service_id', sa.Uuid(), nullable=False),
        sa.Column('slot_id', sa.Uuid(), nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('seats', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
        sa.Column('total_price_minor', sa.BigInteger(), nullable=False),
        sa.Column('price_breakdown', sa.JSON(), nullable=False),
        sa.Column('booking_id', sa.Uuid(), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'used', 'released', 'expired')", name=op.f('ck_holds_status')),
        sa.CheckConstraint('seats >= 1', name=op.f('ck_holds_seats_positive')),
        sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_holds_booking_id_bookings')),
        sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_holds_customer_id_users')),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_holds_service_id_services')),
        sa.ForeignKeyConstraint(['slot_id'], ['slots.id'], name=op.f('fk_holds_slot_id_slots')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_holds')),
        sa.UniqueConstraint('customer_id', 'request_id', name='uq_holds_customer_request'),
    )
    op.create_index('ix_holds_status_expires', 'holds', ['status', 'expires_at'], unique=False)
    op.create_index('ix_holds_slot_status', 'holds', ['slot_id', 'status', 'expires_at'], unique=False)
    op.create_index('ix_holds_customer_status', 'holds', ['customer_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_holds_customer_status', table_name='holds')
    op.drop_index('ix_holds_slot_status', table_name='holds')
    op.drop_index('ix_holds_status_expires', table_name='holds')
    op.drop_table('holds')
    with op.batch_alter_table('services') as batch:
        batch.drop_column('hold_seconds')
