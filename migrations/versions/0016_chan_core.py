"""channel_credential: official channels' secrets, sealed at rest; a group invite's channel
and fallback

Revision ID: 0016_chan_core
Revises: 0015_bindings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_chan_core'
down_revision = '0015_bindings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'channel_credential',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('secret_enc', sa.Text(), nullable=True),
        sa.Column('mask', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_credential')),
        sa.UniqueConstraint('name', name=op.f('uq_channel_credential_name')),
    )
    with op.batch_alter_table('invite_code') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=64), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('fallback', sa.String(length=64), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('invite_code') as batch:
        batch.drop_column('fallback')
        batch.drop_column('channel')
    op.drop_table('channel_credential')
