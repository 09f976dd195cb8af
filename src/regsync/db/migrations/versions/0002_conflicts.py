"""The conflict table: fields held for an operator by the merge policy

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conflict',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('registry_id', sa.String(length=32), nullable=False),
    sa.Column('field', sa.String(length=48), nullable=False),
    sa.Column('field_group', sa.String(length=24), nullable=False),
    sa.Column('base_value', sa.Text(), nullable=True),
    sa.Column('local_value', sa.Text(), nullable=True),
    sa.Column('remote_value', sa.Text(), nullable=True),
    sa.Column('local_hash', sa.String(length=80), nullable=True),
    sa.Column('remote_hash', sa.String(length=80), nullable=True),
    sa.Column('registry_version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('detected_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('resolved_at', Timestamp, nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conflict')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('conflict', schema=None) as batch_op:
        batch_op.create_index('ix_conflict_record', ['entity', 'local_id', 'state'], unique=False)
        batch_op.create_index('ix_conflict_state', ['state', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conflict', schema=None) as batch_op:
        batch_op.drop_index('ix_conflict_state')
        batch_op.drop_index('ix_conflict_record')

    op.drop_table('conflict')
