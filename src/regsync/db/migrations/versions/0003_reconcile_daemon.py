"""Discrepancies of reconcile runs, run slots of scheduled jobs, and the state of each flow (issues 5, 6)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 23:12:23.333738
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('discrepancy',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=True),
    sa.Column('registry_id', sa.String(length=32), nullable=True),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=True),
    sa.Column('org_line', sa.String(length=16), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('action_state', sa.String(length=16), nullable=True),
    sa.Column('detected_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discrepancy')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('discrepancy', schema=None) as batch_op:
        batch_op.create_index('ix_discrepancy_record', ['entity', 'local_id'], unique=False)
        batch_op.create_index('ix_discrepancy_run', ['run_id', 'kind'], unique=False)

    op.create_table('flow_state',
    sa.Column('flow', sa.String(length=16), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_by', sa.String(length=64), nullable=True),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('paused_at', Timestamp, nullable=True),
    sa.Column('last_success_at', Timestamp, nullable=True),
    sa.Column('last_attempt_at', Timestamp, nullable=True),
    sa.Column('failing_since', Timestamp, nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('flow', name=op.f('pk_flow_state')),
    **MYSQL_TABLE,
    )
    op.create_table('run_slot',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=32), nullable=False),
    sa.Column('scheduled_at', Timestamp, nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=False),
    sa.Column('claimed_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('finished_at', Timestamp, nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_slot')),
    sa.UniqueConstraint('job', 'scheduled_at', name='uq_run_slot_job_scheduled_at'),
    **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table('run_slot')
    op.drop_table('flow_state')
    with op.batch_alter_table('discrepancy', schema=None) as batch_op:
        batch_op.drop_index('ix_discrepancy_run')
        batch_op.drop_index('ix_discrepancy_record')

    op.drop_table('discrepancy')
