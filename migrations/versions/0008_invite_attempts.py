"""invite_attempt: wrong invite codes per contact, to limit guessing

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'invite_attempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('transport', sa.String(length=32), nullable=False),
        sa.Column('contact_id', sa.String(length=128), nullable=False),
        sa.Column('message_id', sa.String(length=128), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invite_attempt')),
        sa.UniqueConstraint('transport', 'message_id',
                            name=op.f('uq_invite_attempt_transport_message_id')),
    )
    op.create_index('ix_invite_attempt_contact_at', 'invite_attempt',
                    ['transport', 'contact_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invite_attempt_contact_at', table_name='invite_attempt')
    op.drop_table('invite_attempt')
