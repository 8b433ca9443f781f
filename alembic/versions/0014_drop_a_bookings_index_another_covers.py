"""drop ix_bookings_customer_id: ix_bookings_customer_created starts with the same column

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 18:45:00

Every booking write (a create inserts into each index; a status change is never a HOT update, since
status sits in the exclusion constraints' predicates) maintains every index on `bookings`. A
single-column index that is the prefix of another serves no query the longer one cannot.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bookings') as batch:
        batch.drop_index('ix_bookings_customer_id')


def downgrade() -> None:
    with op.batch_alter_table('bookings') as batch:
        batch.create_index('ix_bookings_customer_id', ['customer_id'], unique=False)
