"""enterprises and key projects: enterprise files, worker cards and readings, daily reports and
work cards

Revision ID: 0014_units
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_units'
down_revision = '0010_api_tokens'
branch_labels = None
depends_on = None


def _daily(name: str, *columns: sa.Column) -> None:
    """A table of one row per node and day, with who wrote it and from which message."""
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *columns,
        sa.Column('by_id', sa.Integer(), nullable=True),
        sa.Column('inbound_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['by_id'], ['person.id'], name=op.f(f'fk_{name}_by_id_person')),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'],
                                name=op.f(f'fk_{name}_inbound_id_inbound_message')),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f(f'fk_{name}_node_id_node')),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
        sa.UniqueConstraint('node_id', 'day', name=op.f(f'uq_{name}_node_id_day')),
    )
    op.create_index(op.f(f'ix_{name}_day'), name, ['day'], unique=False)


def upgrade() -> None:
    op.create_table(
        'enterprise',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=200), nullable=False),
        sa.Column('liaison_id', sa.Integer(), nullable=True),
        sa.Column('headcount', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reopened_on', sa.Date(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['liaison_id'], ['person.id'],
                                name=op.f('fk_enterprise_liaison_id_person')),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_enterprise_node_id_node')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprise')),
        sa.UniqueConstraint('node_id', name=op.f('uq_enterprise_node_id')),
    )
    _daily('enterprise_report',
           sa.Column('on_duty', sa.Integer(), nullable=False),
           sa.Column('returned', sa.Integer(), nullable=False),
           sa.Column('isolated', sa.Integer(), nullable=False),
           sa.Column('anomalies', sa.Integer(), nullable=False))
    _daily('work_card',
           sa.Column('on_site', sa.Integer(), nullable=False),
           sa.Column('arrivals', sa.Integer(), nullable=False),
           sa.Column('anomalies', sa.Integer(), nullable=False),
           sa.Column('problems', sa.Text(), nullable=False))
    op.create_table(
        'worker_card',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_node_id', sa.Integer(), nullable=False),
        sa.Column('workgroup_node_id', sa.Integer(), nullable=True),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('origin', sa.String(length=100), nullable=True),
        sa.Column('returned_on', sa.Date(), nullable=True),
        sa.Column('watch_until', sa.DateTime(), nullable=True),
        sa.Column('health', sa.String(length=16), nullable=False),
        sa.Column('registered_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['enterprise_node_id'], ['node.id'],
                                name=op.f('fk_worker_card_enterprise_node_id_node')),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'],
                                name=op.f('fk_worker_card_person_id_person')),
        sa.ForeignKeyConstraint(['registered_by_id'], ['person.id'],
                                name=op.f('fk_worker_card_registered_by_id_person')),
        sa.ForeignKeyConstraint(['workgroup_node_id'], ['node.id'],
                                name=op.f('fk_worker_card_workgroup_node_id_node')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_card')),
        sa.UniqueConstraint('enterprise_node_id', 'person_id',
                            name=op.f('uq_worker_card_enterprise_node_id_person_id')),
    )
    op.create_index(op.f('ix_worker_card_enterprise_node_id'), 'worker_card',
                    ['enterprise_node_id'], unique=False)
    op.create_index(op.f('ix_worker_card_person_id'), 'worker_card', ['person_id'],
                    unique=False)
    op.create_table(
        'worker_reading',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('card_id', sa.Integer(), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('taken_at', sa.DateTime(), nullable=False),
        sa.Column('by_id', sa.Integer(), nullable=False),
        sa.Column('inbound_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['by_id'], ['person.id'], name=op.f('fk_worker_reading_by_id_person')),
        sa.ForeignKeyConstraint(['card_id'], ['worker_card.id'],
                                name=op.f('fk_worker_reading_card_id_worker_card')),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'],
                                name=op.f('fk_worker_reading_inbound_id_inbound_message')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_reading')),
    )
    op.create_index(op.f('ix_worker_reading_card_id'), 'worker_reading', ['card_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_worker_reading_card_id'), table_name='worker_reading')
    op.drop_table('worker_reading')
    op.drop_index(op.f('ix_worker_card_person_id'), table_name='worker_card')
    op.drop_index(op.f('ix_worker_card_enterprise_node_id'), table_name='worker_card')
    op.drop_table('worker_card')
    for name in ('work_card', 'enterprise_report'):
        op.drop_index(op.f(f'ix_{name}_day'), table_name=name)
        op.drop_table(name)
    op.drop_table('enterprise')
