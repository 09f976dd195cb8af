"""An index on the platform's raw ID numbers, for finding a person by natural key (adopt, the poller)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:50:00.000000
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volunteer_id_number'), ['id_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('volunteer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volunteer_id_number'))
