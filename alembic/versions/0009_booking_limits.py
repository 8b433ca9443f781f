"""booking limits per customer and period, reschedule limits, and each booking's original start

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIMITS = ['max_bookings_per_day', 'max_bookings_per_week', 'max_bookings_per_month', 'max_reschedules',
          'max_reschedule_distance_seconds']


def upgrade() -> None:
    with op.batch_alter_table('services') as batch:
        for column in LIMITS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
    with op.batch_alter_table('bookings') as batch:
        batch.add_column(sa.Column('original_start_at', sa.DateTime(timezone=True), nullable=True))
    # Counting a customer's bookings of a service per period reads only this index.
    op.create_index('ix_bookings_customer_service_start', 'bookings', ['customer_id', 'service_id', 'start_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_bookings_customer_service_start', table_name='bookings')
    with op.batch_alter_table('bookings') as batch:
        batch.drop_column('original_start_at')
    with op.batch_alter_table('services') as batch:
        for column in reversed(LIMITS):
            batch.drop_column(column)
