"""identity: link requests awaiting confirmation, the removal record, ended tenant stays

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('claimant_id', sa.Integer(), nullable=False),
    sa.Column('transport', sa.String(length=32), nullable=False),
    sa.Column('contact_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['claimant_id'], ['person.id'], name=op.f('fk_link_request_claimant_id_person')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['person.id'], name=op.f('fk_link_request_decided_by_id_person')),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_link_request_node_id_node')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_link_request_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_request'))
    )
    with op.batch_alter_table('link_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_request_claimant_id'), ['claimant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_link_request_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_link_request_person_id'), ['person_id'], unique=False)

    op.create_table('removal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('contact_id', sa.String(length=128), nullable=True),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['person.id'], name=op.f('fk_removal_by_id_person')),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_removal_node_id_node')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_removal_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_removal'))
    )
    with op.batch_alter_table('removal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_removal_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('tenant_stay', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ended_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tenant_stay', schema=None) as batch_op:
        batch_op.drop_column('ended_at')
    with op.batch_alter_table('removal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_removal_person_id'))
    op.drop_table('removal')
    with op.batch_alter_table('link_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_request_person_id'))
        batch_op.drop_index(batch_op.f('ix_link_request_node_id'))
        batch_op.drop_index(batch_op.f('ix_link_request_claimant_id'))
    op.drop_table('link_request')
