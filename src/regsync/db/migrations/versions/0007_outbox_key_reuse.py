"""Outbox triggers: an insert under a linked id is queued as ``reuse`` (a key used again for another record)

A restore or import script that deletes a row and inserts another record with the same explicit id
(``DELETE FROM volunteer WHERE id = 643; INSERT INTO volunteer (id, …) VALUES (643, …)``) left the link of the
deleted record on the new one: the relay pushed the new person over the old person's registry record, or (the
delete pushed first) failed it ``INVALID_STATE`` for ever. The insert trigger now queues such a row with ``op``
``reuse``, so that the relay ends the old registry record and creates the new one under the next ``clientRef``
revision (design.md's mapping table, "a key deleted and inserted again"). The triggers are created again from
:func:`regsync.db.triggers.trigger_ddl`; a partial index finds the reused keys whose new record is not in the
registry yet (``ix_outbox_reuse``; none on MySQL/MariaDB, which have no partial index: there it would be
``ix_outbox_record`` again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.models import SYNCED_COLUMNS as ALL_SYNCED_COLUMNS
from regsync.db.models import V1_TABLES
from regsync.db.triggers import drop_trigger_ddl, trigger_ddl

#: The v1 reference tables this revision knows (later kinds have triggers of their own revisions).
SYNCED_COLUMNS = {t: ALL_SYNCED_COLUMNS[t] for t in V1_TABLES}

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

REUSED = "op = 'reuse' AND state <> 'sent'"


def _recreate(reuse: bool) -> None:
    bind = op.get_bind()
    for stmt in drop_trigger_ddl(bind.dialect.name, list(SYNCED_COLUMNS)):
        op.execute(stmt)
    for stmt in trigger_ddl(bind.dialect.name, SYNCED_COLUMNS, reuse=reuse):
        op.execute(stmt)


def _partial_indexes() -> bool:
    return op.get_bind().dialect.name not in ('mysql', 'mariadb')


def upgrade() -> None:
    _recreate(reuse=True)
    if not _partial_indexes():
        return
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_reuse', ['entity', 'local_id'], unique=False,
                              postgresql_where=sa.text(REUSED), sqlite_where=sa.text(REUSED))


def downgrade() -> None:
    if _partial_indexes():
        with op.batch_alter_table('outbox', schema=None) as batch_op:
            batch_op.drop_index('ix_outbox_reuse', postgresql_where=sa.text(REUSED), sqlite_where=sa.text(REUSED))
    _recreate(reuse=False)
    # rows queued as reuse become the inserts they were queued as before this revision
    op.execute("UPDATE outbox SET op = 'insert' WHERE op = 'reuse'")
