"""Records an operator discarded stay out of sync until restored (issue 12 item 8): the outbox_hold table

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-07 03:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_hold',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('held_at', Timestamp, nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('audit_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_hold')),
    sa.UniqueConstraint('entity', 'local_id', name=op.f('uq_outbox_hold_entity')),
    **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table('outbox_hold')
