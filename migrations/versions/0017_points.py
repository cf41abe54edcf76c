"""points: standings indexed by (week, rank) in the order the close writes them, partial
indexes for the lists and rewards instead of (week, landlord) and (landlord, board)

Revision ID: 0017_points
Revises: 0016_console_extra

At 1,000,000 landlords the close wrote its rows in rank order into two indexes keyed by
landlord: a random page for each row, most of the close's time on PostgreSQL. Every week's
ranks are already unique (one ROW_NUMBER per scope and week).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017_points'
down_revision = '0017_pgreads'
branch_labels = None
depends_on = None

BOARD_WHERE = "board <> ''"
REWARD_WHERE = "reward_points > 0"


def upgrade() -> None:
    with op.batch_alter_table('points_standing') as batch:
        batch.drop_index('ix_points_standing_landlord_board')
        batch.drop_constraint('uq_points_standing_week_id_landlord_id', type_='unique')
        batch.create_unique_constraint(batch.f('uq_points_standing_week_id_rank'),
                                       ['week_id', 'rank'])
    op.create_index('ix_points_standing_board', 'points_standing', ['week_id', 'rank'],
                    sqlite_where=sa.text(BOARD_WHERE), postgresql_where=sa.text(BOARD_WHERE))
    op.create_index('ix_points_standing_reward', 'points_standing', ['landlord_id'],
                    sqlite_where=sa.text(REWARD_WHERE),
                    postgresql_where=sa.text(REWARD_WHERE))


def downgrade() -> None:
    op.drop_index('ix_points_standing_reward', table_name='points_standing')
    op.drop_index('ix_points_standing_board', table_name='points_standing')
    with op.batch_alter_table('points_standing') as batch:
        batch.drop_constraint('uq_points_standing_week_id_rank', type_='unique')
        batch.create_unique_constraint('uq_points_standing_week_id_landlord_id',
                                       ['week_id', 'landlord_id'])
        batch.create_index('ix_points_standing_landlord_board', ['landlord_id', 'board'],
                           unique=False)
