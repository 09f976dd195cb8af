"""SQLite: the synced tables never hand out an id again (AUTOINCREMENT)

A plain SQLite ``INTEGER PRIMARY KEY`` gives the next row the largest id in use plus one, so a row inserted
after the newest row was deleted takes the deleted row's id. Its link still names the deleted record's registry
record, so the new row was pushed as an update of it: one person's registry record took another's name and ID
number (or, after the ending went through, failed for ever as ``INVALID_STATE``). With ``AUTOINCREMENT`` SQLite
keeps the largest id ever used in ``sqlite_sequence``, as PostgreSQL's sequences do.

SQLite cannot add ``AUTOINCREMENT`` to a table, so each synced table is rebuilt (a copy, in the migration's
transaction; at the province's scale this takes minutes on the largest tables). Its outbox triggers and indexes
are re-created from their own DDL as it stood. The sequence starts above every id the table, the links and the
outbox have known, so an id deleted before this migration is not handed out again either. PostgreSQL: nothing
to do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 13:50:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# table → outbox and link entity name
SYNCED = {'organization': 'org', 'volunteer': 'volunteer', 'membership': 'membership', 'activity': 'activity',
          'service_record': 'service_record'}


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    for table, entity in SYNCED.items():
        ddl = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"),
                           {'t': table}).scalar_one()
        if ('AUTOINCREMENT' in ddl.upper()) == autoincrement:
            continue
        # the table's triggers and named indexes go with it; keep their DDL to create them again
        kept = bind.execute(sa.text(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :t AND type IN ('index', 'trigger') "
            "AND sql IS NOT NULL ORDER BY type, name"), {'t': table}).all()
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass
        for kind, name, sql in kept:
            op.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
            op.execute(sql)
        if autoincrement:
            top = bind.execute(sa.text(
                f"SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM {table} "
                "UNION ALL SELECT MAX(local_id) FROM link WHERE entity = :e "
                "UNION ALL SELECT MAX(local_id) FROM outbox WHERE entity = :e)"), {'e': entity}).scalar()
            bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {'t': table})
            bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :s)"),
                         {'t': table, 's': top or 0})


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
