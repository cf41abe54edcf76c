"""console: web console logins, sessions, set-up links and failed attempts

Revision ID: 0016_console
Revises: 0016_chan_health
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_console'
down_revision = '0016_chan_health'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_login',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('superuser', sa.Boolean(), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('disabled_at', sa.DateTime(), nullable=True),
        sa.Column('last_login_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'],
                                name=op.f('fk_console_login_person_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_login')),
        sa.UniqueConstraint('username', name=op.f('uq_console_login_username')),
    )
    op.create_index(op.f('ix_console_login_person_id'), 'console_login', ['person_id'],
                    unique=False)
    op.create_table(
        'console_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sid_hash', sa.String(length=64), nullable=False),
        sa.Column('login_id', sa.Integer(), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['login_id'], ['console_login.id'],
                                name=op.f('fk_console_session_login_id_console_login')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_session')),
        sa.UniqueConstraint('sid_hash', name=op.f('uq_console_session_sid_hash')),
    )
    op.create_index(op.f('ix_console_session_login_id'), 'console_session', ['login_id'],
                    unique=False)
    op.create_table(
        'console_invite',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('login_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['login_id'], ['console_login.id'],
                                name=op.f('fk_console_invite_login_id_console_login')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_invite')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_console_invite_token_hash')),
    )
    op.create_index(op.f('ix_console_invite_login_id'), 'console_invite', ['login_id'],
                    unique=False)
    op.create_table(
        'console_attempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_attempt')),
    )
    op.create_index(op.f('ix_console_attempt_at'), 'console_attempt', ['at'], unique=False)
    op.create_index(op.f('ix_console_attempt_username'), 'console_attempt', ['username'],
                    unique=False)
    op.create_index(op.f('ix_console_attempt_address'), 'console_attempt', ['address'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_attempt_address'), table_name='console_attempt')
    op.drop_index(op.f('ix_console_attempt_username'), table_name='console_attempt')
    op.drop_index(op.f('ix_console_attempt_at'), table_name='console_attempt')
    op.drop_table('console_attempt')
    op.drop_index(op.f('ix_console_invite_login_id'), table_name='console_invite')
    op.drop_table('console_invite')
    op.drop_index(op.f('ix_console_session_login_id'), table_name='console_session')
    op.drop_table('console_session')
    op.drop_index(op.f('ix_console_login_person_id'), table_name='console_login')
    op.drop_table('console_login')
