"""A partial index on the outbox rows that wait, in the claim's order (priority, id)

MySQL/MariaDB have no partial index, and a plain one on (priority, id) would hold the sent rows too: none there (the
claim reads ix_outbox_claim).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WAITING = "state IN ('pending', 'deferred')"


def upgrade() -> None:
    if op.get_bind().dialect.name in ('mysql', 'mariadb'):
        return
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_waiting', ['priority', 'id'], unique=False,
                              postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def downgrade() -> None:
    if op.get_bind().dialect.name in ('mysql', 'mariadb'):
        return
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_waiting', postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
