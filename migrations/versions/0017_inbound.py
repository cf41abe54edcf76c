"""membership: the holders of a role at a node by one index seek (node_id, role)

A tenant's return asks for the node's landlords (and their contact ids) on every return; with
~500 tenants per landlord node the node_id index alone visited every membership of the node.
The composite index also serves every query by node_id, so it replaces ix_membership_node_id.

Revision ID: 0017_inbound
Revises: 0016_console_extra
"""

from __future__ import annotations

from alembic import op

revision = '0017_inbound'
down_revision = '0017_points'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_membership_node_id_role', 'membership', ['node_id', 'role'])
    op.drop_index('ix_membership_node_id', table_name='membership')


def downgrade() -> None:
    op.create_index('ix_membership_node_id', 'membership', ['node_id'])
    op.drop_index('ix_membership_node_id_role', table_name='membership')
