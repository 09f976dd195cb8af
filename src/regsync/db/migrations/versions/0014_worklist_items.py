"""worklist_item: the worklists' items across their runs (issue 15, point 2), so that a list tells new, carried
over and resolved items apart, each with the date it was first seen

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:30:00.000000

Name regsync's tables with ``own("outbox")`` (not ``"outbox"``) in every ``op`` call and raw statement
(``own_sql(op.get_bind(), "outbox")``): beside a mapped SQLite platform they carry a prefix (regsync.db.own).
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp
from regsync.db.own import own

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        own('worklist_item'),
        sa.Column('item_id', sa.String(length=32), nullable=False),
        sa.Column('entity', sa.String(length=24), nullable=False),
        sa.Column('local_id', sa.BigInteger(), nullable=True),
        sa.Column('registry_id', sa.String(length=32), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=48), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('city_code', sa.String(length=6), nullable=True),
        sa.Column('county_code', sa.String(length=6), nullable=True),
        sa.Column('org_line', sa.String(length=16), nullable=False),
        sa.Column('org_id', sa.BigInteger(), nullable=True),
        sa.Column('county_org_id', sa.BigInteger(), nullable=True),
        sa.Column('city_org_id', sa.BigInteger(), nullable=True),
        sa.Column('station_id', sa.BigInteger(), nullable=True),
        sa.Column('region_code', sa.String(length=12), nullable=True),
        sa.Column('sort_key', sa.String(length=160), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('first_seen_at', Timestamp, nullable=False),
        sa.Column('last_seen_at', Timestamp, nullable=False),
        sa.Column('resolved_at', Timestamp, nullable=True),
        sa.Column('opened_gen', sa.Integer(), nullable=False),
        sa.Column('seen_gen', sa.Integer(), nullable=False),
        sa.Column('resolved_gen', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('item_id', name=op.f('pk_worklist_item')),
        **MYSQL_TABLE,
    )
    op.create_index('ix_worklist_item_state_seen', own('worklist_item'), ['state', 'seen_gen'])
    op.create_index('ix_worklist_item_sort_key', own('worklist_item'), ['sort_key'])


def downgrade() -> None:
    op.drop_index('ix_worklist_item_sort_key', table_name=own('worklist_item'))
    op.drop_index('ix_worklist_item_state_seen', table_name=own('worklist_item'))
    op.drop_table(own('worklist_item'))
