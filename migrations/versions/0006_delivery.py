"""delivery: replies in the outbox (rows for rooms not bound to a group), the reply claim
index, and each account's last send

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None

REPLY_WHERE = "status = 'pending' AND source = 'reply'"


def upgrade() -> None:
    # An expression index (urgent DESC) cannot go through SQLite's batch table copy.
    op.drop_index('ix_outbox_message_claim', table_name='outbox_message')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.alter_column('group_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('room_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('transport', sa.String(length=32), nullable=True))
    op.create_index('ix_outbox_message_claim', 'outbox_message',
                    ['status', 'account', sa.text('urgent DESC'), 'id'], unique=False)
    op.create_index('ix_outbox_message_reply', 'outbox_message', ['account', 'id'],
                    unique=False, sqlite_where=sa.text(REPLY_WHERE),
                    postgresql_where=sa.text(REPLY_WHERE))
    with op.batch_alter_table('bot_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_sent_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bot_account', schema=None) as batch_op:
        batch_op.drop_column('last_sent_at')
    op.drop_index('ix_outbox_message_reply', table_name='outbox_message')
    op.drop_index('ix_outbox_message_claim', table_name='outbox_message')
    op.execute("DELETE FROM outbox_message WHERE group_id IS NULL")
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('transport')
        batch_op.drop_column('room_id')
        batch_op.alter_column('group_id', existing_type=sa.Integer(), nullable=False)
    op.create_index('ix_outbox_message_claim', 'outbox_message',
                    ['status', 'account', sa.text('urgent DESC'), 'id'], unique=False)
