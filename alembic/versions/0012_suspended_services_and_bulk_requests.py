"""services suspended while their provider is disabled; the remembered results of bulk requests

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('suspended', sa.Boolean(), nullable=False, server_default=sa.false()))
    # Providers disabled before this release: their services stop taking bookings now too.
    op.execute("UPDATE services SET suspended = true, version = version + 1 "
               "WHERE provider_id IN (SELECT id FROM users WHERE disabled)")
    op.create_table(
        'bulk_requests',
        sa.Column('caller_id', sa.Uuid(), nullable=False),
        sa.Column('method', sa.String(length=64), nullable=False),
        sa.Column('request_id', sa.String(length=64), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('result', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('caller_id', 'method', 'request_id', name=op.f('pk_bulk_requests')),
    )


def downgrade() -> None:
    op.drop_table('bulk_requests')
    with op.batch_alter_table('services') as batch:
        batch.drop_column('suspended')
