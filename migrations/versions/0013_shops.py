"""shops: daily check-ins per row and per shop, reopening registrations

Revision ID: 0013_shops
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_shops'
down_revision = '0012_speed2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'shop_patrol',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('checked', sa.Integer(), nullable=False),
        sa.Column('opened', sa.Integer(), nullable=False),
        sa.Column('staff', sa.Integer(), nullable=False),
        sa.Column('disinfected', sa.Boolean(), nullable=False),
        sa.Column('fevers', sa.Integer(), nullable=False),
        sa.Column('problems', sa.Text(), nullable=False),
        sa.Column('by_id', sa.Integer(), nullable=True),
        sa.Column('inbound_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'],
                                name=op.f('fk_shop_patrol_node_id_node')),
        sa.ForeignKeyConstraint(['by_id'], ['person.id'],
                                name=op.f('fk_shop_patrol_by_id_person')),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'],
                                name=op.f('fk_shop_patrol_inbound_id_inbound_message')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_patrol')),
        sa.UniqueConstraint('node_id', 'day', name=op.f('uq_shop_patrol_node_id_day')),
    )
    op.create_index(op.f('ix_shop_patrol_node_id'), 'shop_patrol', ['node_id'])
    op.create_index(op.f('ix_shop_patrol_day'), 'shop_patrol', ['day'])
    op.create_table(
        'shop_checkin',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('is_open', sa.Boolean(), nullable=True),
        sa.Column('staff', sa.Integer(), nullable=True),
        sa.Column('readings', sa.String(length=200), nullable=False),
        sa.Column('max_reading', sa.Float(), nullable=True),
        sa.Column('fever', sa.Boolean(), nullable=False),
        sa.Column('disinfected', sa.Boolean(), nullable=True),
        sa.Column('by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shop.id'],
                                name=op.f('fk_shop_checkin_shop_id_shop')),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'],
                                name=op.f('fk_shop_checkin_node_id_node')),
        sa.ForeignKeyConstraint(['by_id'], ['person.id'],
                                name=op.f('fk_shop_checkin_by_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_checkin')),
        sa.UniqueConstraint('shop_id', 'day', name=op.f('uq_shop_checkin_shop_id_day')),
    )
    op.create_index(op.f('ix_shop_checkin_shop_id'), 'shop_checkin', ['shop_id'])
    op.create_index(op.f('ix_shop_checkin_node_id'), 'shop_checkin', ['node_id'])
    op.create_index(op.f('ix_shop_checkin_day'), 'shop_checkin', ['day'])
    op.create_table(
        'shop_reopening',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('staff', sa.Integer(), nullable=False),
        sa.Column('staff_from_elsewhere', sa.Integer(), nullable=False),
        sa.Column('supplies', sa.String(length=200), nullable=False),
        sa.Column('committed', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('registered_by_id', sa.Integer(), nullable=True),
        sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('inbound_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shop.id'],
                                name=op.f('fk_shop_reopening_shop_id_shop')),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'],
                                name=op.f('fk_shop_reopening_node_id_node')),
        sa.ForeignKeyConstraint(['owner_id'], ['person.id'],
                                name=op.f('fk_shop_reopening_owner_id_person')),
        sa.ForeignKeyConstraint(['registered_by_id'], ['person.id'],
                                name=op.f('fk_shop_reopening_registered_by_id_person')),
        sa.ForeignKeyConstraint(['confirmed_by_id'], ['person.id'],
                                name=op.f('fk_shop_reopening_confirmed_by_id_person')),
        sa.ForeignKeyConstraint(['reviewed_by_id'], ['person.id'],
                                name=op.f('fk_shop_reopening_reviewed_by_id_person')),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'],
                                name=op.f('fk_shop_reopening_inbound_id_inbound_message')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_reopening')),
    )
    op.create_index(op.f('ix_shop_reopening_shop_id'), 'shop_reopening', ['shop_id'])
    op.create_index(op.f('ix_shop_reopening_node_id'), 'shop_reopening', ['node_id'])
    op.create_index(op.f('ix_shop_reopening_status'), 'shop_reopening', ['status'])


def downgrade() -> None:
    op.drop_table('shop_reopening')
    op.drop_table('shop_checkin')
    op.drop_table('shop_patrol')
