"""The local store: the platform's synced tables and regsync's own sync tables (design.md, "Data model").

Conventions, for every table here:

* Local ids are integers assigned by the local database. Registry ids live only in :class:`Link`.
* Timestamps are stored **naive, in UTC** (SQLite has no time zone type); the registry adapter turns them
  into RFC 3339 with ``+08:00`` on the wire (registry-api.md §1).
* Dates (``established_on``, ``birth_date``, ``service_date``…) are calendar dates in Asia/Shanghai.
* Service hours are whole hundredths of an hour (``250`` is 2.50 h), never floats.
* List-valued fields (``service_categories``, ``skills``) are JSON arrays stored as text, so that the
  outbox triggers can compare them on both engines.

The outbox triggers that queue every change of a synced column are in :mod:`regsync.db.triggers`; the
columns they watch are :data:`SYNCED_COLUMNS`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from regsync.db.coltypes import MYSQL_TABLE, BigId, Timestamp, only_on
from regsync.db.own import own
from regsync.db.session import current_worker
from regsync.domain.kinds import KINDS

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every regsync table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every regsync model is mapped to a Table, never another FromClause; SQLAlchemy types it wider.
        __table__: ClassVar[Table]


# --------------------------------------------------------------------------------------------------
# The platform's records (省级平台的数据)
# --------------------------------------------------------------------------------------------------


class Organization(Base):
    """志愿服务组织: a unit of either line of the dual structure (registry-api.md §4.1).

    ``level`` is one of the eight levels of §4.1; ``org_type`` is ``REGIONAL`` or ``SPECIALIZED``.
    ``parent_id`` is null exactly for the top levels; ``station_id`` is set for ``GRASSROOTS_TEAM`` only
    (the ``COMMUNITY_STATION`` that also manages the team).
    """

    __tablename__ = own("organization")
    # an id is never handed out twice (migration 0006)
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    org_type: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(24))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    uscc: Mapped[str | None] = mapped_column(String(40))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    street_code: Mapped[str | None] = mapped_column(String(12))
    service_categories: Mapped[str] = mapped_column(Text, default="[]")
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    established_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    remark: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Volunteer(Base):
    """注册志愿者: a registered person as the platform holds them (registry-api.md §4.2).

    ``id_number`` is the platform's raw value (dirt included); ``id_number_norm`` is regsync's normalized
    form (:func:`regsync.domain.normalize.normalize_id_number`), kept and indexed for matching one person across
    rows and sides. It is maintained by regsync (generator, relay), not by the platform, and is not synced.
    ``registered_at`` (UTC) decides which of two rows of one person is the primary: the older.
    """

    __tablename__ = own("volunteer")
    # an id is never handed out twice (migration 0006)
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    id_type: Mapped[str] = mapped_column(String(32), default="RESIDENT_ID")
    id_number: Mapped[str] = mapped_column(String(64), index=True)
    id_number_norm: Mapped[str | None] = mapped_column(String(64), index=True)
    gender: Mapped[str | None] = mapped_column(String(4))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(40))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    skills: Mapped[str] = mapped_column(Text, default="[]")
    home_province: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    registered_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    remark: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Membership(Base):
    """志愿者加入组织: one volunteer's membership of one org (registry-api.md §4.3).

    Deleting the row, or setting ``left_on``, is a leave.
    """

    __tablename__ = own("membership")
    __table_args__ = (UniqueConstraint("volunteer_id", "org_id"), {"sqlite_autoincrement": True, **MYSQL_TABLE})

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    joined_on: Mapped[dt.date] = mapped_column(Date)
    left_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Activity(Base):
    """志愿服务活动: a published activity (registry-api.md §4.4). Times are naive UTC."""

    __tablename__ = own("activity")
    # an id is never handed out twice (migration 0006)
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(12))
    starts_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    ends_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    planned_headcount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="PUBLISHED")
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class ServiceRecord(Base):
    """志愿服务记录: one volunteer's hours at one activity on one day (registry-api.md §4.5).

    ``hours`` is in hundredths of an hour (``250`` = 2.50 h). ``service_date`` is a date in +08:00;
    ``starts_at``/``ends_at`` are naive UTC. ``status`` is ``ACCEPTED`` or ``REVOKED``.
    """

    __tablename__ = own("service_record")
    # an id is never handed out twice (migration 0006)
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    service_date: Mapped[dt.date] = mapped_column(Date)
    starts_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    ends_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    hours: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="ACCEPTED")
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Training(Base):
    """志愿者培训: a training an org holds for volunteers (registry-api.md §4.6, v1.1).

    ``class_hours`` (培训学时) is in hundredths of an hour (``150`` = 1.50 h); ``starts_at``/``ends_at`` are naive
    UTC. ``status`` is ``SCHEDULED``, ``COMPLETED`` or ``CANCELLED`` (an ending).
    """

    __tablename__ = own("training")
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    training_type: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(12))
    address: Mapped[str | None] = mapped_column(String(400))
    starts_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    ends_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    class_hours: Mapped[int] = mapped_column(Integer)
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="SCHEDULED")
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class TrainingRecord(Base):
    """培训记录: one volunteer's attendance of one training (registry-api.md §4.7, v1.1).

    ``class_hours`` in hundredths of an hour; ``completed_on`` a date in +08:00; ``result`` ``PASSED`` or
    ``ATTENDED``; ``status`` ``ACCEPTED`` or ``REVOKED``. Immutable once accepted, like a service record: an edit is
    sent as a correction (``:correct``, §4.5).
    """

    __tablename__ = own("training_record")
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("training.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    completed_on: Mapped[dt.date] = mapped_column(Date)
    class_hours: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="ACCEPTED")
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Commendation(Base):
    """表彰奖励 / 嘉许: a commendation of one volunteer or one org (registry-api.md §4.8, v1.1).

    The subject is ``volunteer_id`` or ``org_id``, exactly one of them (the registry's ``subjectType`` and
    ``subjectId``, made by the client's adapter). ``scheme`` is ``PROVINCIAL_ANNUAL`` (年度嘉许, with ``tier`` and
    ``year``) or null. ``status`` is ``ACTIVE`` or ``REVOKED`` (撤销表彰, an ending).
    """

    __tablename__ = own("commendation")
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteer.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    scheme: Mapped[str | None] = mapped_column(String(32))
    tier: Mapped[str | None] = mapped_column(String(24))
    year: Mapped[int | None] = mapped_column(Integer)
    awarded_on: Mapped[dt.date] = mapped_column(Date)
    issuer: Mapped[str] = mapped_column(String(200))
    document_name: Mapped[str] = mapped_column(String(200))
    document_number: Mapped[str] = mapped_column(String(100))
    content: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Evaluation(Base):
    """评价: an org's scoring of a volunteer's service at a completed activity (registry-api.md §4.9, v1.1).

    Scores are whole numbers 1–5 (守时程度, 服务态度, 专业水平); ``evaluated_on`` a date in +08:00; ``status``
    ``ACTIVE`` or ``REVOKED`` (an ending).
    """

    __tablename__ = own("evaluation")
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    evaluator_org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    punctuality: Mapped[int] = mapped_column(Integer)
    attitude: Mapped[int] = mapped_column(Integer)
    competence: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    evaluated_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


# --------------------------------------------------------------------------------------------------
# regsync's sync tables (同步状态)
# --------------------------------------------------------------------------------------------------

#: Entity names used in the outbox and the link table, in the order creates are sent.
ENTITIES: tuple[str, ...] = KINDS

#: Each kind's table in the reference schema.
TABLES: dict[str, str] = {"org": "organization", "volunteer": "volunteer", "membership": "membership",
                          "activity": "activity", "service_record": "service_record", "training": "training",
                          "training_record": "training_record", "commendation": "commendation",
                          "evaluation": "evaluation"}

#: How a link marks a record that is the registry's (the portal's or another client's): never pushed.
REGISTRY_OWNED = "registry_owned"

#: How a link marks a volunteer who transferred to another province (registry-api.md §4.2 ``homeProvince``): another
#: province manages the person now, so nothing of the record is pushed again, and the demo counts the person as moved
#: out. Recorded on every platform, also where the platform keeps no home province of its own (a mapping's ``const``).
TRANSFERRED_OUT = "transferred_out"

#: How a link marks a volunteer who transferred out and came back (the province's again): synced as before.
TRANSFERRED_BACK = "transferred_back"

#: How a link was made, for the links of a person's second local row and what hangs on it (never pushed).
DUPLICATE_HOWS = {"duplicate_person", "duplicate_pair"}

#: The columns of each synced table whose change is queued in the outbox (design.md, "Data model").
SYNCED_COLUMNS: dict[str, tuple[str, ...]] = {
    "organization": (
        "name", "org_type", "level", "parent_id", "station_id", "uscc", "region_code", "street_code",
        "service_categories", "contact_name", "contact_phone", "established_on", "status",
    ),
    "volunteer": (
        "name", "id_type", "id_number", "gender", "birth_date", "phone", "region_code", "skills",
        "home_province", "status",
    ),
    "membership": ("volunteer_id", "org_id", "joined_on", "left_on"),
    "activity": (
        "org_id", "title", "category", "region_code", "starts_at", "ends_at", "planned_headcount", "status",
    ),
    "service_record": (
        "volunteer_id", "activity_id", "org_id", "service_date", "starts_at", "ends_at", "hours", "status",
        "revoke_reason",
    ),
    "training": (
        "org_id", "title", "training_type", "mode", "region_code", "address", "starts_at", "ends_at", "class_hours",
        "contact_name", "contact_phone", "status",
    ),
    "training_record": ("training_id", "volunteer_id", "completed_on", "class_hours", "result", "status",
                        "revoke_reason"),
    "commendation": (
        "volunteer_id", "org_id", "title", "scheme", "tier", "year", "awarded_on", "issuer", "document_name",
        "document_number", "content", "status", "revoke_reason",
    ),
    "evaluation": ("activity_id", "volunteer_id", "evaluator_org_id", "punctuality", "attitude", "competence",
                   "comment", "evaluated_on", "status", "revoke_reason"),
}

#: The reference tables of registry-api.md v1 (the ones migrations 0001 to 0015 know).
V1_TABLES: tuple[str, ...] = ("organization", "volunteer", "membership", "activity", "service_record")

#: Local table name → outbox/link entity name.
TABLE_ENTITY: dict[str, str] = {
    "organization": "org",
    "volunteer": "volunteer",
    "membership": "membership",
    "activity": "activity",
    "service_record": "service_record",
    "training": "training",
    "training_record": "training_record",
    "commendation": "commendation",
    "evaluation": "evaluation",
}


_WAITING, _REUSED = "state IN ('pending', 'deferred')", "op = 'reuse' AND state <> 'sent'"


class Outbox(Base):
    """发件箱表: one row per local change, written by a trigger in the change's own transaction.

    ``op`` is ``insert``, ``update`` or ``delete``, or ``reuse``: an insert under an id that has a link, i.e. a
    key deleted and used again for another record (:mod:`regsync.db.triggers`); the relay turns it into an
    ``insert`` once the new record is in the registry. ``priority`` orders the work (what a record refers to
    first, endings the other way; :mod:`regsync.db.triggers`). ``state`` is one of ``pending`` (to send),
    ``deferred`` (to send once ``available_at`` has passed), ``blocked`` (waits for a record it refers to;
    code ``PARENT_FAILED``, or ``PARENT_DISCARDED`` when an operator discarded it), ``failed`` (refused by the registry on its data; waits for the data to change
    or an operator), ``sent`` (done, kept for pruning). ``claimed_by``/``claimed_until`` are a lease (UTC).
    ``blocked_entity``/``blocked_local_id`` name the record a ``blocked`` row waits for.
    """

    __tablename__ = own("outbox")
    __table_args__ = (
        Index("ix_outbox_claim", "state", "priority", "id"),
        Index("ix_outbox_record", "entity", "local_id"),
        # the claim's order (priority, id) over the rows that wait, read straight off the index however many
        # rows are waiting or done (a partial index; the claim's WHERE names the same states). MySQL/MariaDB have
        # no partial index: there a plain one would hold every row, sent ones too, and the claim's order would walk
        # them; their claim reads ix_outbox_claim one state at a time (regsync.db.outbox.claim)
        only_on(Index("ix_outbox_waiting", "priority", "id", postgresql_where=text(_WAITING),
                      sqlite_where=text(_WAITING)), "postgresql", "sqlite"),
        # the keys used again for another record whose new record is not in the registry yet (migration 0007;
        # regsync.flows.outbound.reused_keys): a few rows, looked up for every record the relay plans (on
        # MySQL/MariaDB, as a plain index, it would be ix_outbox_record again: none)
        only_on(Index("ix_outbox_reuse", "entity", "local_id", postgresql_where=text(_REUSED),
                      sqlite_where=text(_REUSED)), "postgresql", "sqlite"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    local_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    available_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_code: Mapped[str | None] = mapped_column(String(48))
    last_error: Mapped[str | None] = mapped_column(Text)
    blocked_entity: Mapped[str | None] = mapped_column(String(24))
    blocked_local_id: Mapped[int | None] = mapped_column(BigInteger)
    done_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class OutboxHold(Base):
    """A record an operator discarded (``regsync outbox discard``, design.md "Operator commands"): it stays out of
    sync until an operator restores it (``regsync outbox restore``). Its later changes are still captured, as
    outbox rows that the relay sets aside as ``discarded`` instead of sending (:mod:`regsync.db.holds`); a restore
    puts them back to ``pending``, so the relay then sends the record's current state. ``held_at`` is UTC;
    ``reason`` is the operator's, masked; ``audit_id`` the discard's audit row."""

    __tablename__ = own("outbox_hold")
    __table_args__ = (UniqueConstraint("entity", "local_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    local_id: Mapped[int] = mapped_column(BigInteger)
    held_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    audit_id: Mapped[int | None] = mapped_column(BigInteger)


class OutboxSuppress(Base):
    """A marker row that regsync inserts while it applies the registry's changes, so the outbox
    triggers skip those writes (no echo loop). Uncommitted, it is visible to its own transaction only;
    it is deleted before commit (:func:`regsync.db.session.suppress_outbox`)."""

    __tablename__ = own("outbox_suppress")
    __table_args__ = MYSQL_TABLE

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class Link(Base):
    """关联: one local record ↔ its registry record, with the base snapshot (基线).

    ``base`` is a JSON object of the synced fields as both sides last agreed on them, in wire names;
    sensitive values (ID number, phones) are kept as keyed hashes (:func:`regsync.domain.masking.keyed_hash`).
    ``is_duplicate`` marks the second local row of one person (design.md, "One person, two local
    records"). ``revision`` counts corrections of a service record (revoke + new record; the new
    record's ``clientRef`` is ``<local id>-r<revision>``).
    """

    __tablename__ = own("link")
    __table_args__ = (
        UniqueConstraint("entity", "local_id"),
        Index("ix_link_registry", "entity", "registry_id"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    local_id: Mapped[int] = mapped_column(BigInteger)
    registry_id: Mapped[str] = mapped_column(String(32))
    registry_version: Mapped[int] = mapped_column(Integer, default=1)
    base: Mapped[str] = mapped_column(Text, default="{}")
    is_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    how: Mapped[str] = mapped_column(String(32), default="created")
    linked_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class CreateSent(Base):
    """创建记录: the creates this store has sent, by ``clientRef``, recorded before the call left.

    A record the registry holds under this client's ``clientRef`` (``DUPLICATE_CLIENT_REF``, ``GET
    ?clientRef=``, registry-api.md §5.1–§5.2) is this store's own earlier create, whose answer was lost, only
    when a row here says this store sent a create under that ``clientRef`` before (and the registry's record is
    not older than that first send): otherwise another store under the same client credentials made it, and it
    is never linked or written over without an operator (:mod:`regsync.flows.outbound`, ``CLIENT_REF_TAKEN``).

    ``how``: ``sent`` (recorded by the relay before the call), ``backfill`` (migration 0009, from the outbox and
    links of a store that predates this table), ``other_store`` (the relay found the registry's record under it
    to be another store's: no longer this store's create) or ``operator`` (an operator declared the registry's
    record this store's own). ``first_sent_at`` is naive UTC, local clock; ``NULL`` for no age check.
    """

    __tablename__ = own("create_sent")
    __table_args__ = MYSQL_TABLE

    entity: Mapped[str] = mapped_column(String(24), primary_key=True)
    client_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    local_id: Mapped[int] = mapped_column(BigInteger)
    first_sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    how: Mapped[str] = mapped_column(String(16), default="sent")


class FeedCursor(Base):
    """The change-feed cursor (registry-api.md §5.3), saved with the changes applied from it."""

    __tablename__ = own("feed_cursor")
    __table_args__ = MYSQL_TABLE

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class Run(Base):
    """A sync, reconcile or demo run: when, how it ended (``success``, ``partial``, ``failed``, or
    ``abandoned`` when the process running it ended first: SIGKILL, power loss), and its summary as JSON text.

    ``worker`` is the process that runs it (``host:pid``, filled in at insert from
    :func:`regsync.db.session.current_worker`); while the run is ``running``, that process renews its lease in
    :class:`Heartbeat` (:mod:`regsync.db.liveness`), and a run whose worker's lease has run out is abandoned.
    """

    __tablename__ = own("run")
    __table_args__ = (
        # the runs still going on, read at every heartbeat to find those whose process is gone
        only_on(Index("ix_run_running", "worker", postgresql_where=text("status = 'running'"),
                      sqlite_where=text("status = 'running'")), "postgresql", "sqlite"),
        only_on(Index("ix_run_status", "status", "worker"), "mysql"),  # MySQL/MariaDB: no partial index
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(12), default="running")
    summary: Mapped[str] = mapped_column(Text, default="{}")
    worker: Mapped[str | None] = mapped_column(String(64), default=current_worker)


class Audit(Base):
    """An operator action: who, when (UTC), what, on what, why; ``details`` is JSON text (masked)."""

    __tablename__ = own("audit")
    __table_args__ = MYSQL_TABLE

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="{}")


class DirtLog(Base):
    """What the data generator made dirty on purpose, and how (``kind``: ``id_lowercase_x``,
    ``id_legacy_15``, ``id_fullwidth``, ``name_lookalike_dot``, ``name_non_bmp``, ``duplicate_person``,
    ``phone_bad``, ``phone_blank``, …; ``fixable``: whether a standard lets the client fix it), so tests
    can tell an expected failure from a bug."""

    __tablename__ = own("generator_dirt")
    __table_args__ = (Index("ix_generator_dirt_record", "entity", "local_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    local_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    fixable: Mapped[bool] = mapped_column(Boolean)
    expected_code: Mapped[str | None] = mapped_column(String(48))


class Conflict(Base):
    """A conflict that policy sends to a person (design.md, "Conflict policy"): one field of one record, changed
    on both sides to different values, whose group's policy is ``manual``.

    Values are JSON text. ``base_value`` is the link's base value (canonical: a keyed hash for a personal
    field). ``local_value`` and ``remote_value`` are canonical clear values for ordinary fields and the masked
    forms for personal ones (ID numbers, phones), with their keyed hashes in ``local_hash``/``remote_hash``
    (design.md, "Personal data"); the live values are read from the platform or the registry only on an
    operator's explicit request. ``registry_version`` is the version the registry's value was read at.

    ``state``: ``open`` (waits for an operator; at most one open conflict per record and field, kept up to date
    by later merges), ``resolved`` (``resolution`` says how: ``registry``, ``local`` or ``value``; by whom in
    ``resolved_by``), ``superseded`` (both sides came to agree, or the record ended, before anyone decided).
    ``run_id`` is the run that found it last. Times are UTC.
    """

    __tablename__ = own("conflict")
    __table_args__ = (Index("ix_conflict_record", "entity", "local_id", "state"),
                      Index("ix_conflict_state", "state", "id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    local_id: Mapped[int] = mapped_column(BigInteger)
    registry_id: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(48))
    field_group: Mapped[str] = mapped_column(String(24))
    base_value: Mapped[str | None] = mapped_column(Text)
    local_value: Mapped[str | None] = mapped_column(Text)
    remote_value: Mapped[str | None] = mapped_column(Text)
    local_hash: Mapped[str | None] = mapped_column(String(80))
    remote_hash: Mapped[str | None] = mapped_column(String(80))
    registry_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="open")
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    detected_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(16))


class Discrepancy(Base):
    """One difference a reconcile found between the platform and the registry (design.md, flow 3).

    ``kind`` is one of ``missing_in_registry``, ``missing_locally``, ``field_mismatch``, ``stale_link``,
    ``broken_link``, ``hours_mismatch``, ``duplicate_person``, ``orphan`` (and ``ambiguous_match`` for adopt).
    ``entity`` is the record kind (``org``, ``volunteer``, ``membership``, ``activity``, ``service_record``).
    ``fields`` is a JSON array of the synced field names that differ (registry-api.md names); ``details`` is
    JSON text with masked values only (design.md, "Personal data"). ``city_code`` (the 4-digit GB/T 2260
    prefix) and ``org_line`` (``regional`` or ``specialized``, when the record belongs to an organization)
    serve the report's breakdowns. ``action`` is the repair policy allows (``push``, ``pull``, ``relink``,
    ``unlink``, ``none``) and ``action_state`` what became of it (``queued``, ``done``, ``held``,
    ``not_allowed``, ``failed``), both ``NULL`` when the run only reported.
    """

    __tablename__ = own("discrepancy")
    __table_args__ = (Index("ix_discrepancy_run", "run_id", "kind"),
                      Index("ix_discrepancy_record", "entity", "local_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    entity: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(32))
    local_id: Mapped[int | None] = mapped_column(BigInteger)
    registry_id: Mapped[str | None] = mapped_column(String(32))
    fields: Mapped[str] = mapped_column(Text, default="[]")
    details: Mapped[str] = mapped_column(Text, default="{}")
    city_code: Mapped[str | None] = mapped_column(String(6))
    org_line: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str | None] = mapped_column(String(16))
    action_state: Mapped[str | None] = mapped_column(String(16))
    detected_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class RunSlot(Base):
    """A scheduled job's run slot, claimed once (issue 6: neither a second daemon nor a manual command runs the
    same slot twice). ``scheduled_at`` is the slot's planned time (UTC, naive); ``run_id`` the run it made (if it
    did work); ``state`` ``running``, ``done``, ``failed``, ``idle`` or ``abandoned`` (its worker, ``claimed_by``,
    ended without finishing it; the slot may be claimed again: :func:`regsync.service.daemon.claim_slot`)."""

    __tablename__ = own("run_slot")
    __table_args__ = (UniqueConstraint("job", "scheduled_at", name="uq_run_slot_job_scheduled_at"),
                      only_on(Index("ix_run_slot_running", "claimed_by", postgresql_where=text("state = 'running'"),
                                    sqlite_where=text("state = 'running'")), "postgresql", "sqlite"),
                      only_on(Index("ix_run_slot_state", "state", "claimed_by"), "mysql"),  # no partial index
                      MYSQL_TABLE)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32))
    scheduled_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    state: Mapped[str] = mapped_column(String(12), default="running")
    run_id: Mapped[int | None] = mapped_column(BigInteger)


class FlowState(Base):
    """The state of one flow (``outbound``, ``inbound``, ``reconcile``): paused or not (by whom, why, since when,
    UTC, and until when: ``paused_until``, ``NULL`` for a pause without an expiry), the last success, and since
    when it has been failing and with what code (``failing_since`` is ``NULL`` while it works), so that
    ``regsync status`` can tell a stale or refused flow (issue 6)."""

    __tablename__ = own("flow_state")
    __table_args__ = MYSQL_TABLE

    flow: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_by: Mapped[str | None] = mapped_column(String(64))
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    paused_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    failing_since: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)


class Heartbeat(Base):
    """A regsync process that works on the store, and its lease (:mod:`regsync.db.liveness`): a daemon for its whole
    life, a command while it runs a run. The process renews ``lease_until`` every few seconds; once the lease has
    run out (or ``stopped_at`` is set) the process is gone, and the runs and run slots it left ``running`` are
    abandoned. ``worker`` is ``host:pid``; ``node`` names the host and PID namespace, so that a process on the same
    node can tell at once that a PID no longer exists. ``next_runs`` (a daemon's) is JSON: job → next run time
    (ISO, UTC), as its scheduler holds them. Times are naive UTC."""

    __tablename__ = own("heartbeat")
    __table_args__ = MYSQL_TABLE

    worker: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(160))
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    beat_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    lease_until: Mapped[dt.datetime] = mapped_column(Timestamp)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    next_runs: Mapped[str] = mapped_column(Text, default="{}")


class StoreMeta(Base):
    """A fact about the store itself, by name. ``hash_key_fingerprint``: an HMAC of a fixed label under the hash key
    the links' base snapshots and the conflicts' hashes were made with (never the key), so that a process with
    another key refuses to run a flow (:mod:`regsync.db.hashkey`; design.md, "Personal data"). Times are UTC."""

    __tablename__ = own("store_meta")
    __table_args__ = MYSQL_TABLE

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, server_default=func.current_timestamp())


class PlatformKey(Base):
    """平台主键: the integer local id of a record whose platform key is a string (an org code, a volunteer number;
    issue 14). The outbox, the links, the conflicts and the discrepancies name a record by this ``local_id``; the
    platform's own key is ``key_value`` (as text). Rows are added by the triggers made from the mapping at a key's
    first insert, and by ``regsync platform install`` for the rows already there; never deleted (a key used again
    is the same local id, queued as ``reuse``: :mod:`regsync.db.triggers`)."""

    __tablename__ = own("platform_key")
    __table_args__ = (UniqueConstraint("entity", "key_value", name="uq_platform_key_entity_key_value"),
                      {"sqlite_autoincrement": True, **MYSQL_TABLE})

    local_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    key_value: Mapped[str] = mapped_column(String(64))


class PersonNorm(Base):
    """The normalized ID number (GB 11643-1999) of a mapped platform's volunteer, kept by regsync beside the platform's
    table, which it does not change (issue 14); the reference schema keeps it in ``volunteer.id_number_norm``.
    ``local_id`` is the volunteer's local id; ``id_number_norm`` ``None`` when the number cannot be normalized."""

    __tablename__ = own("person_norm")
    __table_args__ = MYSQL_TABLE

    local_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id_number_norm: Mapped[str | None] = mapped_column(String(64), index=True)


class WorklistItem(Base):
    """待办清单条目: one work item of the worklists (issue 15, point 2) across their runs: a discrepancy of the
    latest reconcile or a failed record, kept under a stable ``item_id`` (a hash of the record's kind, local id,
    registry id, source and code: :func:`regsync.db.worklist.item_id`), so that a list can say whether an item is
    new, carried over or resolved since the last list (:mod:`regsync.db.worklist`).

    ``gen`` numbers the worklist runs (1, 2, …): ``seen_gen`` is the last run that found the item, ``opened_gen``
    the run that found it new (or open again), ``resolved_gen`` the run that no longer found it. The place columns
    are who must fix it (:class:`regsync.db.attribution.Responsible`: city, county, org line, the responsible org
    and its county-, city-level units and station, local ids) as the last run found; ``sort_key`` orders a list by
    city → line → org → record. ``detail`` is masked (field names, the refusal's text). ``waiting`` counts the
    records blocked behind the item's record (not items of their own), ``outbox_state`` is a failure's row state
    (``failed``/``blocked``), ``related`` a JSON ``{"entity", "ids"}`` (the record a blocked item waits for, a
    duplicate person's other rows) and ``seen_pass`` the worklist call that last found it. A *period* (``gen``) is
    one reconcile run (migration 0015). No personal data: names,
    ID numbers and phones are read from the platform when a list is written. Times are naive UTC.
    """

    __tablename__ = own("worklist_item")
    __table_args__ = (Index("ix_worklist_item_state_seen", "state", "seen_gen"),
                      Index("ix_worklist_item_sort_key", "sort_key"), MYSQL_TABLE)

    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    entity: Mapped[str] = mapped_column(String(24))
    local_id: Mapped[int | None] = mapped_column(BigInteger)
    registry_id: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(48))
    detail: Mapped[str | None] = mapped_column(Text)
    city_code: Mapped[str | None] = mapped_column(String(6))
    county_code: Mapped[str | None] = mapped_column(String(6))
    org_line: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int | None] = mapped_column(BigInteger)
    county_org_id: Mapped[int | None] = mapped_column(BigInteger)
    city_org_id: Mapped[int | None] = mapped_column(BigInteger)
    station_id: Mapped[int | None] = mapped_column(BigInteger)
    region_code: Mapped[str | None] = mapped_column(String(12))
    sort_key: Mapped[str] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(12))
    first_seen_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    last_seen_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    opened_gen: Mapped[int] = mapped_column(Integer)
    seen_gen: Mapped[int] = mapped_column(Integer)
    resolved_gen: Mapped[int | None] = mapped_column(Integer)
    waiting: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    outbox_state: Mapped[str | None] = mapped_column(String(12))
    related: Mapped[str | None] = mapped_column(Text)
    seen_pass: Mapped[int] = mapped_column(Integer, server_default=text("0"))
