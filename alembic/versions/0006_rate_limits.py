"""rate limits: registrations per client address, password resets per email

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    op.create_table(
        'rate_limits',
        sa.Column('scope', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_rate_limits')),
    )

def downgrade() -> None:
    op.drop_table('rate_limits')
