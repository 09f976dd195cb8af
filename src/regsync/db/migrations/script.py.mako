"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Name regsync's tables with ``own("outbox")`` (not ``"outbox"``) in every ``op`` call and raw statement
(``own_sql(op.get_bind(), "outbox")``): beside a mapped SQLite platform they carry a prefix (regsync.db.own).
"""
from alembic import op
import sqlalchemy as sa

from regsync.db.own import own, own_sql  # noqa: F401 — for the operations below
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
