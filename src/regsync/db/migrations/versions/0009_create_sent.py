"""The creates this store has sent, by clientRef (issue 12, item 4): a record under this client's clientRef is
this store's own only when this store sent a create under it

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-07 03:00:00.000000

A store that predates the table is given what its outbox and links prove: the clientRef of every record linked
by a create of its own or found under its clientRef (``first_sent_at`` NULL: no age check), and of every unlinked
record whose outbox rows were sent with no known outcome (``first_sent_at``: the oldest of its rows, at or before
the first send), so that a create whose answer was lost before the upgrade is still recovered after it.
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None

#: The kinds created with a clientRef (memberships are joined by their pair).
CREATABLE = "('org', 'volunteer', 'activity', 'service_record')"
#: Outbox codes of a deferral decided locally (regsync.flows.outbound.LOCAL_WAIT_CODES): nothing was sent.
LOCAL_WAIT = "('PARENT_PENDING', 'PRIMARY_PENDING', 'PARENT_FAILED', 'MERGED', 'CONFLICT_HELD')"


def upgrade() -> None:
    op.create_table('create_sent',
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('client_ref', sa.String(length=64), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('first_sent_at', Timestamp, nullable=True),
    sa.Column('how', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('entity', 'client_ref', name=op.f('pk_create_sent')),
    **MYSQL_TABLE,
    )
    # MySQL/MariaDB: no CAST … AS TEXT, and || is OR there
    mysql = op.get_bind().dialect.name in ('mysql', 'mariadb')
    lid, rev = ("CAST(l.local_id AS CHAR)", "CAST(l.revision AS CHAR)") if mysql else \
        ("CAST(l.local_id AS TEXT)", "CAST(l.revision AS TEXT)")
    revised = f"CONCAT({lid}, '-r', {rev})" if mysql else f"{lid} || '-r' || {rev}"
    op.execute(
        "INSERT INTO create_sent (entity, client_ref, local_id, first_sent_at, how) "
        f"SELECT l.entity, CASE WHEN l.revision > 0 THEN {revised} "
        f"ELSE {lid} END, l.local_id, NULL, 'backfill' FROM link l "
        f"WHERE l.entity IN {CREATABLE} AND l.how IN ('created', 'duplicate_client_ref', 'found_by_client_ref')")
    op.execute(
        "INSERT INTO create_sent (entity, client_ref, local_id, first_sent_at, how) "
        f"SELECT o.entity, CAST(o.local_id AS {'CHAR' if mysql else 'TEXT'}), o.local_id, MIN(o.created_at), "
        "'backfill' FROM outbox o "
        f"WHERE o.entity IN {CREATABLE} AND o.last_code IS NOT NULL AND o.last_code NOT IN {LOCAL_WAIT} "
        "AND NOT EXISTS (SELECT 1 FROM link l WHERE l.entity = o.entity AND l.local_id = o.local_id) "
        "GROUP BY o.entity, o.local_id")


def downgrade() -> None:
    op.drop_table('create_sent')
