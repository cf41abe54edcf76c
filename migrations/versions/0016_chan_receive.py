"""acknowledgements say how they came: in the group, by the signed link, by a WeChat reply

Revision ID: 0016_chan_receive
Revises: 0016_chan_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_chan_receive'
down_revision = '0016_chan_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message') as batch:
        batch.add_column(sa.Column('acked_via', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message') as batch:
        batch.drop_column('acked_via')
