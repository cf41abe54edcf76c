"""group bindings: a fallback channel per group, and where failover moved it from

Revision ID: 0015_bindings
Revises: 0014_units
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_bindings'
down_revision = '0014_units'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chat_group') as batch:
        batch.add_column(sa.Column('fallback_account', sa.String(length=64), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('moved_from', sa.String(length=64), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('chat_group') as batch:
        batch.drop_column('moved_from')
        batch.drop_column('fallback_account')
