"""account_watch: the watchdog's durable state per sending account

Revision ID: 0016_chan_health
Revises: 0016_chan_receive
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_chan_health'
down_revision = '0016_chan_receive'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account_watch',
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('health', sa.String(length=16), nullable=False),
        sa.Column('problems', sa.JSON(), nullable=False),
        sa.Column('since', sa.DateTime(), nullable=True),
        sa.Column('down_since', sa.DateTime(), nullable=True),
        sa.Column('ok_since', sa.DateTime(), nullable=True),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('alerted', sa.JSON(), nullable=False),
        sa.Column('last_inbound_at', sa.DateTime(), nullable=True),
        sa.Column('probe_text', sa.String(length=200), nullable=False),
        sa.Column('probe_at', sa.DateTime(), nullable=True),
        sa.Column('probe_row_id', sa.Integer(), nullable=True),
        sa.Column('probe_ok_at', sa.DateTime(), nullable=True),
        sa.Column('probe_failed', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account', name=op.f('pk_account_watch')),
    )


def downgrade() -> None:
    op.drop_table('account_watch')
