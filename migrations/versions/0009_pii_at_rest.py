"""pii_at_rest: mobiles and ID numbers sealed (AES-GCM), blind-indexed and masked; access log

Revision ID: 0009
Revises: 0008

Existing numbers are encrypted here, with the keys the configuration names (keys.file or the
variable keys.env names); with numbers stored and no keys, the upgrade stops and says so.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0009_leases'
branch_labels = None
depends_on = None

_BATCH = 1000


def _keyring() -> object:
    from bot import crypto

    try:
        return crypto.current()
    except crypto.MissingKeyError:
        from bot.config import load_settings

        ring = crypto.load(load_settings().keys)
        crypto.use(ring)
        return ring


def upgrade() -> None:
    for name, length in (('mobile', 16), ('id_number', 24)):
        op.add_column('person', sa.Column(f'{name}_enc', sa.Text(), nullable=True))
        op.add_column('person', sa.Column(f'{name}_bidx', sa.String(length=64), nullable=True))
        op.add_column('person', sa.Column(f'{name}_mask', sa.String(length=length),
                                          nullable=True))
        op.create_index(op.f(f'ix_person_{name}_bidx'), 'person', [f'{name}_bidx'],
                        unique=False)
    op.create_table(
        'access_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('who', sa.String(length=128), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=16), nullable=True),
        sa.Column('why', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'],
                                name=op.f('fk_access_log_person_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_log')),
    )
    op.create_index(op.f('ix_access_log_at'), 'access_log', ['at'], unique=False)
    op.create_index(op.f('ix_access_log_person_id'), 'access_log', ['person_id'], unique=False)

    _encrypt_existing()

    # Native DROP COLUMN (SQLite >= 3.35): a batch copy of `person` would have to drop a table
    # that other tables' foreign keys point at.
    op.drop_index('ix_person_mobile', table_name='person')
    op.execute('ALTER TABLE person DROP COLUMN mobile')
    op.execute('ALTER TABLE person DROP COLUMN id_number')


def _encrypt_existing() -> None:
    from bot.services import personal

    conn = op.get_bind()
    person = sa.table('person', sa.column('id', sa.Integer), sa.column('mobile', sa.String),
                      sa.column('id_number', sa.String),
                      *(sa.column(f'{k}_{part}', sa.String) for k in ('mobile', 'id_number')
                        for part in ('enc', 'bidx', 'mask')))
    plain = sa.or_(person.c.mobile.is_not(None), person.c.id_number.is_not(None))
    if conn.execute(sa.select(sa.func.count()).select_from(person).where(plain)).scalar_one():
        _keyring()  # stops here, saying what to do, when there are numbers but no keys
    after = 0
    while True:
        rows = conn.execute(sa.select(person.c.id, person.c.mobile, person.c.id_number)
                            .where(plain, person.c.id > after).order_by(person.c.id)
                            .limit(_BATCH)).all()
        if not rows:
            return
        for person_id, mobile, id_number in rows:
            mobile, id_number = mobile or None, id_number or None
            values = (personal.index_columns(mobile=mobile, id_number=id_number)
                      | personal.sealed_columns(person_id, mobile=mobile, id_number=id_number))
            conn.execute(sa.update(person).where(person.c.id == person_id)
                         .values(mobile=None, id_number=None, **values))
        after = rows[-1][0]


def downgrade() -> None:
    # Going back would put the numbers in the clear again: only an empty set of numbers
    # goes back (forget or restore from a backup taken before 0009 instead).
    conn = op.get_bind()
    sealed = conn.execute(sa.text(
        'SELECT count(*) FROM person WHERE mobile_enc IS NOT NULL OR id_number_enc IS NOT NULL'
    )).scalar_one()
    if sealed:
        raise RuntimeError(f"0009 downgrade: {sealed} people have sealed numbers; restore the "
                           "backup taken before 0009 instead of downgrading")
    op.add_column('person', sa.Column('mobile', sa.String(length=11), nullable=True))
    op.add_column('person', sa.Column('id_number', sa.String(length=18), nullable=True))
    op.create_index('ix_person_mobile', 'person', ['mobile'], unique=False)
    op.drop_index(op.f('ix_access_log_person_id'), table_name='access_log')
    op.drop_index(op.f('ix_access_log_at'), table_name='access_log')
    op.drop_table('access_log')
    for name in ('mobile', 'id_number'):
        op.drop_index(op.f(f'ix_person_{name}_bidx'), table_name='person')
        for part in ('enc', 'bidx', 'mask'):
            op.execute(f'ALTER TABLE person DROP COLUMN {name}_{part}')
