"""Liveness: process heartbeats, the worker of each run, pauses with an expiry (issue 12, items 10 and 11)

A process killed with SIGKILL left its run and run slot ``running`` for ever, and ``regsync status`` could not
tell whether a daemon ran at all. Each process that works on the store now renews a lease in ``heartbeat``;
``run.worker`` names the process running a run, so a run whose process is gone is shown as abandoned and its slot
can be claimed again. ``flow_state.paused_until`` is a pause's expiry (``regsync pause --for/--until``).

The running runs and slots are found by partial indexes; MySQL/MariaDB have none, and get an index on (state, worker)
instead.

Revision ID: 0011
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('heartbeat',
    sa.Column('worker', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('node', sa.String(length=160), nullable=False),
    sa.Column('started_at', Timestamp, nullable=False),
    sa.Column('beat_at', Timestamp, nullable=False),
    sa.Column('lease_until', Timestamp, nullable=False),
    sa.Column('stopped_at', Timestamp, nullable=True),
    sa.Column('next_runs', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('worker', name=op.f('pk_heartbeat')),
    **MYSQL_TABLE,
    )
    mysql = op.get_bind().dialect.name in ('mysql', 'mariadb')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('worker', sa.String(length=64), nullable=True))
        if mysql:
            batch_op.create_index('ix_run_status', ['status', 'worker'], unique=False)
        else:
            batch_op.create_index('ix_run_running', ['worker'], unique=False,
                                  postgresql_where=sa.text("status = 'running'"),
                                  sqlite_where=sa.text("status = 'running'"))
    with op.batch_alter_table('run_slot', schema=None) as batch_op:
        if mysql:
            batch_op.create_index('ix_run_slot_state', ['state', 'claimed_by'], unique=False)
        else:
            batch_op.create_index('ix_run_slot_running', ['claimed_by'], unique=False,
                                  postgresql_where=sa.text("state = 'running'"),
                                  sqlite_where=sa.text("state = 'running'"))
    with op.batch_alter_table('flow_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_until', Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flow_state', schema=None) as batch_op:
        batch_op.drop_column('paused_until')
    mysql = op.get_bind().dialect.name in ('mysql', 'mariadb')
    with op.batch_alter_table('run_slot', schema=None) as batch_op:
        if mysql:
            batch_op.drop_index('ix_run_slot_state')
        else:
            batch_op.drop_index('ix_run_slot_running', sqlite_where=sa.text("state = 'running'"))
    with op.batch_alter_table('run', schema=None) as batch_op:
        if mysql:
            batch_op.drop_index('ix_run_status')
        else:
            batch_op.drop_index('ix_run_running', sqlite_where=sa.text("status = 'running'"))
        batch_op.drop_column('worker')
    op.drop_table('heartbeat')
