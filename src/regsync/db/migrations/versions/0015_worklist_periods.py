"""worklist_item: one item per thing to fix, and periods (issue 15, point 2, a manager's trial): ``waiting`` (records
blocked behind the item's record, counted on it instead of listed), ``outbox_state`` (``failed`` or ``blocked``: a
failure's row state, so that only the registry's refusals are quoted as its answer), ``related`` (JSON: the record a
blocked item waits for, or a duplicate person's other rows) and ``seen_pass`` (the worklist call that last found the
item, within a period: one reconcile run)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 21:40:00.000000

Name regsync's tables with ``own("outbox")`` (not ``"outbox"``) in every ``op`` call and raw statement
(``own_sql(op.get_bind(), "outbox")``): beside a mapped SQLite platform they carry a prefix (regsync.db.own).
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.own import own

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table(own('worklist_item')) as batch:
        batch.add_column(sa.Column('waiting', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch.add_column(sa.Column('outbox_state', sa.String(length=12), nullable=True))
        batch.add_column(sa.Column('related', sa.Text(), nullable=True))
        batch.add_column(sa.Column('seen_pass', sa.Integer(), nullable=False, server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table(own('worklist_item')) as batch:
        batch.drop_column('seen_pass')
        batch.drop_column('related')
        batch.drop_column('outbox_state')
        batch.drop_column('waiting')
