"""store_meta: facts about the store itself, first the fingerprint of the hash key its snapshots were hashed with

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-20 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'store_meta',
        sa.Column('name', sa.String(length=48), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_store_meta')),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table('store_meta')
