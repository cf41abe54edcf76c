"""account_lease: one process drives each sending account, fenced by an epoch

Revision ID: 0009_leases
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_leases'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account_lease',
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=128), nullable=False),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account', name=op.f('pk_account_lease')),
    )


def downgrade() -> None:
    op.drop_table('account_lease')
