"""The reference tables of registry-api.md v1.1's kinds (issue 16): ``training`` (§4.6), ``training_record`` (§4.7),
``commendation`` (§4.8) and ``evaluation`` (§4.9), with their outbox triggers

Made only in a store whose platform records are the reference tables (``database.mapping`` is ``reference``): a
mapped platform keeps these records in its own tables, and its triggers are made by ``regsync platform install``.
Hours (``class_hours``) are whole hundredths; times naive UTC, as in the v1 tables.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 00:40:00.000000
"""
from typing import Any

import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp
from regsync.db.migrations.reference import reference_tables
from regsync.db.triggers import drop_trigger_ddl, trigger_ddl

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

#: The columns whose change is queued, frozen as this revision made them.
SYNCED_COLUMNS = {
    'training': ['org_id', 'title', 'training_type', 'mode', 'region_code', 'address', 'starts_at', 'ends_at',
                 'class_hours', 'contact_name', 'contact_phone', 'status'],
    'training_record': ['training_id', 'volunteer_id', 'completed_on', 'class_hours', 'result', 'status',
                        'revoke_reason'],
    'commendation': ['volunteer_id', 'org_id', 'title', 'scheme', 'tier', 'year', 'awarded_on', 'issuer',
                     'document_name', 'document_number', 'content', 'status', 'revoke_reason'],
    'evaluation': ['activity_id', 'volunteer_id', 'evaluator_org_id', 'punctuality', 'attitude', 'competence',
                   'comment', 'evaluated_on', 'status', 'revoke_reason'],
}


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _ref(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, _id(), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'))


def _common(table: str, *columns: sa.Column[Any], fks: tuple[sa.ForeignKeyConstraint, ...],
            indexed: tuple[str, ...]) -> None:
    op.create_table(
        table,
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        *columns,
        sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        *fks,
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    for column in indexed:
        op.create_index(op.f(f'ix_{table}_{column}'), table, [column], unique=False)


def upgrade() -> None:
    if not reference_tables():
        return
    _common(
        'training',
        _ref('org_id'),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('training_type', sa.String(length=16), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('region_code', sa.String(length=12), nullable=False),
        sa.Column('address', sa.String(length=400), nullable=True),
        sa.Column('starts_at', Timestamp, nullable=False),
        sa.Column('ends_at', Timestamp, nullable=False),
        sa.Column('class_hours', sa.Integer(), nullable=False),
        sa.Column('contact_name', sa.String(length=100), nullable=True),
        sa.Column('contact_phone', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        fks=(_fk('training', 'org_id', 'organization'),), indexed=('org_id',))
    _common(
        'training_record',
        _ref('training_id'),
        _ref('volunteer_id'),
        sa.Column('completed_on', sa.Date(), nullable=False),
        sa.Column('class_hours', sa.Integer(), nullable=False),
        sa.Column('result', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
        fks=(_fk('training_record', 'training_id', 'training'), _fk('training_record', 'volunteer_id', 'volunteer')),
        indexed=('training_id', 'volunteer_id'))
    _common(
        'commendation',
        _ref('volunteer_id', nullable=True),
        _ref('org_id', nullable=True),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('scheme', sa.String(length=32), nullable=True),
        sa.Column('tier', sa.String(length=24), nullable=True),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.Column('awarded_on', sa.Date(), nullable=False),
        sa.Column('issuer', sa.String(length=200), nullable=False),
        sa.Column('document_name', sa.String(length=200), nullable=False),
        sa.Column('document_number', sa.String(length=100), nullable=False),
        sa.Column('content', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
        fks=(_fk('commendation', 'org_id', 'organization'), _fk('commendation', 'volunteer_id', 'volunteer')),
        indexed=('org_id', 'volunteer_id'))
    _common(
        'evaluation',
        _ref('activity_id'),
        _ref('volunteer_id'),
        _ref('evaluator_org_id'),
        sa.Column('punctuality', sa.Integer(), nullable=False),
        sa.Column('attitude', sa.Integer(), nullable=False),
        sa.Column('competence', sa.Integer(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('evaluated_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
        fks=(_fk('evaluation', 'activity_id', 'activity'), _fk('evaluation', 'evaluator_org_id', 'organization'),
             _fk('evaluation', 'volunteer_id', 'volunteer')),
        indexed=('activity_id', 'volunteer_id'))
    bind = op.get_bind()
    for stmt in trigger_ddl(bind.dialect.name, SYNCED_COLUMNS):
        op.execute(stmt)


def downgrade() -> None:
    if not reference_tables():
        return
    bind = op.get_bind()
    for stmt in drop_trigger_ddl(bind.dialect.name, list(SYNCED_COLUMNS)):
        op.execute(stmt)
    for table in ('evaluation', 'commendation', 'training_record', 'training'):
        op.drop_table(table)
