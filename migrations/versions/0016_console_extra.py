"""access log of exports: an export covers a subtree (node_id), not one person

Revision ID: 0016_console_extra
Revises: 0016_console (0015_bindings before console-core was merged)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_console_extra'
down_revision = '0016_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('access_log') as batch:
        batch.alter_column('person_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('node_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f('fk_access_log_node_id_node'), 'node', ['node_id'],
                                 ['id'])


def downgrade() -> None:
    op.execute("DELETE FROM access_log WHERE person_id IS NULL")
    with op.batch_alter_table('access_log') as batch:
        batch.drop_constraint(batch.f('fk_access_log_node_id_node'), type_='foreignkey')
        batch.drop_column('node_id')
        batch.alter_column('person_id', existing_type=sa.Integer(), nullable=False)
