"""Initial schema: the platform's synced tables, regsync's sync tables and the outbox triggers

Revision ID: 0001
Revises:
Create Date: 2026-11-29 20:51:56.869470
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.coltypes import MYSQL_TABLE, Timestamp
from regsync.db.triggers import drop_trigger_ddl, trigger_ddl

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# The synced columns as of this revision (frozen: a later change of the models gets its own migration).
SYNCED_COLUMNS = {'organization': ['name',
                  'org_type',
                  'level',
                  'parent_id',
                  'station_id',
                  'uscc',
                  'region_code',
                  'street_code',
                  'service_categories',
                  'contact_name',
                  'contact_phone',
                  'established_on',
                  'status'],
 'volunteer': ['name',
               'id_type',
               'id_number',
               'gender',
               'birth_date',
               'phone',
               'region_code',
               'skills',
               'home_province',
               'status'],
 'membership': ['volunteer_id', 'org_id', 'joined_on', 'left_on'],
 'activity': ['org_id',
              'title',
              'category',
              'region_code',
              'starts_at',
              'ends_at',
              'planned_headcount',
              'status'],
 'service_record': ['volunteer_id',
                    'activity_id',
                    'org_id',
                    'service_date',
                    'starts_at',
                    'ends_at',
                    'hours',
                    'status',
                    'revoke_reason']}


def upgrade() -> None:
    op.create_table('audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit')),
    **MYSQL_TABLE,
    )
    op.create_table('feed_cursor',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=False),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_feed_cursor')),
    **MYSQL_TABLE,
    )
    op.create_table('generator_dirt',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('fixable', sa.Boolean(), nullable=False),
    sa.Column('expected_code', sa.String(length=48), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generator_dirt')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('generator_dirt', schema=None) as batch_op:
        batch_op.create_index('ix_generator_dirt_record', ['entity', 'local_id'], unique=False)

    op.create_table('link',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('registry_id', sa.String(length=32), nullable=False),
    sa.Column('registry_version', sa.Integer(), nullable=False),
    sa.Column('base', sa.Text(), nullable=False),
    sa.Column('is_duplicate', sa.Boolean(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('how', sa.String(length=32), nullable=False),
    sa.Column('linked_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link')),
    sa.UniqueConstraint('entity', 'local_id', name=op.f('uq_link_entity')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('link', schema=None) as batch_op:
        batch_op.create_index('ix_link_registry', ['entity', 'registry_id'], unique=False)

    op.create_table('organization',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_type', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=24), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('station_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('uscc', sa.String(length=40), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=12), nullable=True),
    sa.Column('service_categories', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=100), nullable=True),
    sa.Column('contact_phone', sa.String(length=40), nullable=True),
    sa.Column('established_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('remark', sa.Text(), nullable=True),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['organization.id'], name=op.f('fk_organization_parent_id_organization')),
    sa.ForeignKeyConstraint(['station_id'], ['organization.id'], name=op.f('fk_organization_station_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organization')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organization_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_organization_region_code'), ['region_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_organization_station_id'), ['station_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=24), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('op', sa.String(length=8), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('available_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', Timestamp, nullable=True),
    sa.Column('last_code', sa.String(length=48), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('blocked_entity', sa.String(length=24), nullable=True),
    sa.Column('blocked_local_id', sa.BigInteger(), nullable=True),
    sa.Column('done_at', Timestamp, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_claim', ['state', 'priority', 'id'], unique=False)
        batch_op.create_index('ix_outbox_record', ['entity', 'local_id'], unique=False)

    op.create_table('outbox_suppress',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_suppress')),
    **MYSQL_TABLE,
    )
    op.create_table('run',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('started_at', Timestamp, nullable=False),
    sa.Column('finished_at', Timestamp, nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run')),
    **MYSQL_TABLE,
    )
    op.create_table('volunteer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('id_type', sa.String(length=32), nullable=False),
    sa.Column('id_number', sa.String(length=64), nullable=False),
    sa.Column('id_number_norm', sa.String(length=64), nullable=True),
    sa.Column('gender', sa.String(length=4), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('skills', sa.Text(), nullable=False),
    sa.Column('home_province', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('registered_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('remark', sa.Text(), nullable=True),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('volunteer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volunteer_id_number_norm'), ['id_number_norm'], unique=False)
        batch_op.create_index(batch_op.f('ix_volunteer_region_code'), ['region_code'], unique=False)

    op.create_table('activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('starts_at', Timestamp, nullable=False),
    sa.Column('ends_at', Timestamp, nullable=False),
    sa.Column('planned_headcount', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_activity_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_org_id'), ['org_id'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('joined_on', sa.Date(), nullable=False),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_membership_org_id_organization')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'], name=op.f('fk_membership_volunteer_id_volunteer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('volunteer_id', 'org_id', name=op.f('uq_membership_volunteer_id')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_membership_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('service_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('activity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('starts_at', Timestamp, nullable=False),
    sa.Column('ends_at', Timestamp, nullable=False),
    sa.Column('hours', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('revoke_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', Timestamp, server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_service_record_activity_id_activity')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_service_record_org_id_organization')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'], name=op.f('fk_service_record_volunteer_id_volunteer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_record')),
    **MYSQL_TABLE,
    )
    with op.batch_alter_table('service_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_record_activity_id'), ['activity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_record_volunteer_id'), ['volunteer_id'], unique=False)

    bind = op.get_bind()
    for stmt in trigger_ddl(bind.dialect.name, SYNCED_COLUMNS):
        op.execute(stmt)


def downgrade() -> None:
    bind = op.get_bind()
    mysql = bind.dialect.name in ('mysql', 'mariadb')
    for stmt in drop_trigger_ddl(bind.dialect.name, list(SYNCED_COLUMNS)):
        op.execute(stmt)
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('service_record', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_service_record_volunteer_id'))
            batch_op.drop_index(batch_op.f('ix_service_record_activity_id'))

    op.drop_table('service_record')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('membership', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_membership_volunteer_id'))
            batch_op.drop_index(batch_op.f('ix_membership_org_id'))

    op.drop_table('membership')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('activity', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_activity_org_id'))

    op.drop_table('activity')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('volunteer', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_volunteer_region_code'))
            batch_op.drop_index(batch_op.f('ix_volunteer_id_number_norm'))

    op.drop_table('volunteer')
    op.drop_table('run')
    op.drop_table('outbox_suppress')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('outbox', schema=None) as batch_op:
            batch_op.drop_index('ix_outbox_record')
            batch_op.drop_index('ix_outbox_claim')

    op.drop_table('outbox')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('organization', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_organization_station_id'))
            batch_op.drop_index(batch_op.f('ix_organization_region_code'))
            batch_op.drop_index(batch_op.f('ix_organization_parent_id'))

    op.drop_table('organization')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('link', schema=None) as batch_op:
            batch_op.drop_index('ix_link_registry')

    op.drop_table('link')
    if not mysql:  # MySQL/MariaDB: an index a foreign key needs goes only with its table
        with op.batch_alter_table('generator_dirt', schema=None) as batch_op:
            batch_op.drop_index('ix_generator_dirt_record')

    op.drop_table('generator_dirt')
    op.drop_table('feed_cursor')
    op.drop_table('audit')
