"""A mapped platform (issue 14): the key table of string keys, the normalized ID numbers regsync keeps beside a
platform's volunteers, and no reference tables in a store whose platform is mapped

``platform_key`` gives each record whose platform key is a string (an org code, a volunteer number) an integer
local id, the one the outbox, the links, the conflicts and the discrepancies name; the triggers made from the mapping
add a row at the record's first insert, and ``regsync platform install`` adds the rows of the records already there.
``person_norm`` holds the normalized ID number (GB 11643-1999) of a mapped platform's volunteer, which regsync
cannot keep in the platform's own table (the reference schema keeps it in ``volunteer.id_number_norm``).

In a store whose platform is mapped (``database.mapping`` is not ``reference``), the reference tables that the
earlier revisions made are taken away with their outbox triggers: they must be empty (a reference store does not
become a mapped one by a migration). A downgrade makes them again, empty, so that the earlier revisions' own
downgrades find them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE
from regsync.db.migrations.reference import reference_tables
from regsync.db.models import SYNCED_COLUMNS as ALL_SYNCED_COLUMNS
from regsync.db.models import V1_TABLES, Base
from regsync.db.triggers import drop_trigger_ddl, trigger_ddl

#: The v1 reference tables this revision knows (later kinds have triggers of their own revisions).
SYNCED_COLUMNS = {t: ALL_SYNCED_COLUMNS[t] for t in V1_TABLES}

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

#: The reference tables, parents last (the order they are dropped in).
REFERENCE = ('service_record', 'activity', 'membership', 'volunteer', 'organization')


def upgrade() -> None:
    op.create_table(
        'platform_key',
        sa.Column('local_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('entity', sa.String(length=24), nullable=False),
        sa.Column('key_value', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('local_id', name=op.f('pk_platform_key')),
        sa.UniqueConstraint('entity', 'key_value', name='uq_platform_key_entity_key_value'),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    op.create_table(
        'person_norm',
        sa.Column('local_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('id_number_norm', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('local_id', name=op.f('pk_person_norm')),
        **MYSQL_TABLE,
    )
    op.create_index('ix_person_norm_id_number_norm', 'person_norm', ['id_number_norm'])
    if reference_tables():
        return
    bind = op.get_bind()
    for table in REFERENCE:
        if bind.execute(sa.text(f'SELECT 1 FROM {table}')).first() is not None:  # noqa: S608 — a fixed name
            raise RuntimeError(f'the store holds rows in the reference table {table}: a reference store does not '
                               'become a mapped one by a migration (database.mapping)')
    for stmt in drop_trigger_ddl(bind.dialect.name, list(SYNCED_COLUMNS)):
        op.execute(stmt)
    for table in REFERENCE:
        op.drop_table(table)


def downgrade() -> None:
    bind = op.get_bind()
    if not reference_tables():
        tables = [Base.metadata.tables[t] for t in reversed(REFERENCE)]
        Base.metadata.create_all(bind, tables=tables)
        for stmt in trigger_ddl(bind.dialect.name, SYNCED_COLUMNS):
            op.execute(stmt)
    op.drop_index('ix_person_norm_id_number_norm', table_name='person_norm')
    op.drop_table('person_norm')
    op.drop_table('platform_key')
