"""The sandbox registry's own database (SQLAlchemy 2 Core, its own :data:`metadata`).

Each record table keeps the full wire record (registry-api.md §4) as JSON in ``doc`` — so reads, lookups and
exports send it as stored — beside the columns the registry queries: ``province`` (exports and the feed,
§1 "scope"), ``owner`` (``ownerClientId``), ``ref_key`` (``owner`` + ``clientRef``, unique: §5.1
``DUPLICATE_CLIENT_REF``) and per-kind keys (``id_key`` = idType:idNumber unique nationwide, ``uscc_live`` =
the USCC while the org is not DISSOLVED, unique; ``pair_key`` of memberships; ``day_key`` =
volunteerId:serviceDate of service records for the daily total, and their ``org_id``, ``station_id`` and
``service_date`` for an org's count of the annual scheme, v1.1 §4.8). A store made by an older regsync gets the
columns added since when it is opened (:meth:`Store.upgrade`). On PostgreSQL the id columns use
``COLLATE "C"`` so ``ORDER BY id`` is by bytes.

Writes go through :class:`UnitOfWork`: it loads the records a call needs in few queries, keeps them and the
records it changes in memory (with in-memory secondary indexes, so later operations of a batch see earlier
ones), and writes everything back at the end with one ``executemany`` per table — one transaction per call
or batch. SQLite runs in WAL mode with explicit ``BEGIN`` (``BEGIN IMMEDIATE`` for writes), so an export's
read transaction is one consistent snapshot while writes go on; ``synchronous=NORMAL`` (crash-consistent, a
power loss may drop the last commits) and checkpoints every 10 000 pages. ``sqlite://`` (in memory) is served
from a throw-away file (under ``/dev/shm`` when there is one), because WAL snapshots need a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.schema import CreateColumn

metadata = MetaData()


def _id_type(length: int = 32) -> String:
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def _record_table(name: str, *extra: Column[Any] | Index) -> Table:
    return Table(
        name,
        metadata,
        Column("id", _id_type(), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("province", String(2), nullable=False),
        Column("owner", String(64), nullable=False),
        Column("ref_key", _id_type(140), nullable=True, unique=True),
        Column("status", String(16), nullable=False),
        *extra,
        Column("doc", Text, nullable=False),
        Index(f"ix_{name}_province_id", "province", "id"),
    )


orgs = _record_table(
    "sbx_orgs",
    Column("parent_id", _id_type(), nullable=True, index=True),
    Column("uscc_live", String(18), nullable=True, unique=True),
)
volunteers = _record_table(
    "sbx_volunteers",
    Column("id_key", String(80), nullable=False, unique=True),
)
memberships = _record_table(
    "sbx_memberships",
    Column("org_id", _id_type(), nullable=False),
    Column("pair_key", _id_type(80), nullable=False, unique=True),
    Index("ix_sbx_memberships_org_id", "org_id", "id"),
)
activities = _record_table("sbx_activities", Column("org_id", _id_type(), nullable=False))
# ``org_id``, ``station_id`` (the team's community station, §4.1) and ``service_date``: an org's count of §4.8's
# annual scheme (``NOT_EARNED``) is an indexed count of the records whose orgId or stationId is the org. Added after
# the table's first release, so nullable: :meth:`Store.upgrade` adds and fills them in a store made before.
service_records = _record_table(
    "sbx_service_records",
    Column("day_key", _id_type(80), nullable=False, index=True),
    Column("org_id", _id_type(), nullable=True),
    Column("station_id", _id_type(), nullable=True),
    Column("service_date", String(10), nullable=True),
    Index("ix_sbx_service_records_org_date", "org_id", "status", "service_date"),
    Index("ix_sbx_service_records_station_date", "station_id", "status", "service_date"),
)
# v1.1 (§4.6–§4.9): ``pair_key`` trainingId:volunteerId / activityId:volunteerId, ``dup_key`` of a commendation
# (subject|scheme|year, or subject|title|awardedOn), not unique (REVOKED ones keep theirs): 409 DUPLICATE_* is checked
# against the ACTIVE/ACCEPTED ones; ``subject_id`` moves a volunteer's commendations with a transfer (§1 "scope").
trainings = _record_table("sbx_trainings", Column("org_id", _id_type(), nullable=False))
training_records = _record_table(
    "sbx_training_records", Column("pair_key", _id_type(80), nullable=False, index=True)
)
commendations = _record_table(
    "sbx_commendations",
    Column("subject_id", _id_type(), nullable=False, index=True),
    Column("dup_key", String(400), nullable=False, index=True),
)
evaluations = _record_table("sbx_evaluations", Column("pair_key", _id_type(80), nullable=False, index=True))

#: Test support (not of registry-api.md): records of a type the sandbox does not implement (v1.1's
#: ``commendation`` before the sandbox has it, or an invented one), planted by ``POST /_sandbox/foreign`` to show
#: a client a feed entry, and optionally an export line, of a type it does not know (§1). ``collection``: the
#: export whose lines include this record (with its ``type``), or null for the feed only.
foreign = Table(
    "sbx_foreign",
    metadata,
    Column("id", _id_type(), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("province", String(2), nullable=False),
    Column("collection", String(32), nullable=True),
    Column("doc", Text, nullable=False),
    Index("ix_sbx_foreign_collection", "collection", "province", "id"),
)

#: Replayable answers of calls carried out (§5.1), 24 h.
idempotency = Table(
    "sbx_idempotency",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)
#: Nonces seen in the last 10 minutes (§2).
nonces = Table(
    "sbx_nonces",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False, index=True),
)
#: The change feed (§5.3): one row per (province fed, change); a change that moves a record between
#: provinces has a row for each, with the same ``seq``.
changes = Table(
    "sbx_changes",
    metadata,
    Column("province", String(2), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("id", _id_type(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("op", String(8), nullable=False),
    Column("changed_at", String(32), nullable=False),
    Column("changed_ts", Float, nullable=False, index=True),
    Column("by_client_id", String(64), nullable=True),
)
#: Client credentials (§2).
clients = Table(
    "sbx_clients",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret", String(200), nullable=False),
    Column("province", String(2), nullable=False),
    Column("enabled", Boolean, nullable=False),
)
#: Counters: ``id:<type>`` id allocation, ``seq`` the feed head, ``pruned`` the highest pruned seq.
counters = Table(
    "sbx_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: Record tables by batch type name (§5.1), with the collection path and the id prefix.
TABLES: dict[str, Table] = {
    "org": orgs,
    "volunteer": volunteers,
    "membership": memberships,
    "activity": activities,
    "serviceRecord": service_records,
    "training": trainings,
    "trainingRecord": training_records,
    "commendation": commendations,
    "evaluation": evaluations,
}
COLLECTIONS: dict[str, str] = {
    "orgs": "org",
    "volunteers": "volunteer",
    "memberships": "membership",
    "activities": "activity",
    "service-records": "serviceRecord",
    "trainings": "training",
    "training-records": "trainingRecord",
    "commendations": "commendation",
    "evaluations": "evaluation",
}
ID_PREFIX: dict[str, str] = {
    "org": "ORG",
    "volunteer": "VOL",
    "membership": "MEM",
    "activity": "ACT",
    "serviceRecord": "SVR",
    "training": "TRN",
    "trainingRecord": "TRR",
    "commendation": "CMD",
    "evaluation": "EVL",
}
#: Secondary keys the unit of work indexes in memory, per type: column → how to compute it.
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "org": ("ref_key", "parent_id", "uscc_live"),
    "volunteer": ("ref_key", "id_key"),
    "membership": ("pair_key",),
    "activity": ("ref_key",),
    "serviceRecord": ("ref_key", "day_key"),
    "training": ("ref_key",),
    "trainingRecord": ("ref_key", "pair_key"),
    "commendation": ("ref_key", "subject_id", "dup_key"),
    "evaluation": ("ref_key", "pair_key"),
}


#: The wire fields each kind's own columns are made from (:func:`record_columns`), beside the common ones: a record
#: without them cannot be stored. :data:`NULLABLE_KEYS` may be null.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "org": ("parentId", "uscc"),
    "volunteer": ("idType", "idNumber"),
    "membership": ("orgId", "volunteerId"),
    "activity": ("orgId",),
    "serviceRecord": ("volunteerId", "orgId", "serviceDate"),
    "training": ("orgId",),
    "trainingRecord": ("trainingId", "volunteerId"),
    "commendation": ("subjectType", "subjectId"),
    "evaluation": ("activityId", "volunteerId"),
}
NULLABLE_KEYS = frozenset({"parentId", "uscc"})


def misfits(table: Table, cols: dict[str, Any]) -> list[str]:
    """What the database would refuse in the row ``cols`` of ``table`` (or, on SQLite, keep without a word):
    ``"<column>: <why>"`` for a null in a NOT NULL column, a string longer than its column, or a value of another
    type than the column's (a string for ``String``, an integer for ``Integer``). Columns left out are not checked.
    """
    out = []
    for name, value in cols.items():
        col = table.c[name]
        if value is None:
            if not col.nullable:
                out.append(f"{name}: null in a column that is not")
        elif isinstance(col.type, String):
            if not isinstance(value, str):
                out.append(f"{name}: not a string")
            elif col.type.length is not None and len(value) > col.type.length:
                out.append(f"{name}: longer than {col.type.length} characters")
        elif isinstance(col.type, Integer) and (not isinstance(value, int) or isinstance(value, bool)):
            out.append(f"{name}: not an integer")
    return out


def ref_key(owner: str, client_ref: str | None) -> str | None:
    """The unique key of a client's ``clientRef`` (§5.1 ``DUPLICATE_CLIENT_REF``), or ``None``."""
    return None if client_ref is None else f"{owner}\x1f{client_ref}"


def record_columns(kind: str, doc: dict[str, Any], province: str) -> dict[str, Any]:
    """The table columns of a wire record ``doc`` of ``kind`` (everything but ``doc`` itself)."""
    cols: dict[str, Any] = {
        "id": doc["id"],
        "version": doc["version"],
        "province": province,
        "owner": doc["ownerClientId"],
        "ref_key": ref_key(doc["ownerClientId"], doc.get("clientRef")),
        "status": doc.get("status") or ("LEFT" if doc.get("leftOn") else "ACTIVE"),
    }
    if kind == "org":
        cols["parent_id"] = doc["parentId"]
        cols["uscc_live"] = doc["uscc"] if doc["status"] != "DISSOLVED" else None
    elif kind == "volunteer":
        cols["id_key"] = f"{doc['idType']}:{doc['idNumber']}"
    elif kind == "membership":
        cols["org_id"] = doc["orgId"]
        cols["pair_key"] = f"{doc['orgId']}:{doc['volunteerId']}"
    elif kind == "activity":
        cols["org_id"] = doc["orgId"]
    elif kind == "serviceRecord":
        cols["day_key"] = f"{doc['volunteerId']}:{doc['serviceDate']}"
        cols["org_id"] = doc["orgId"]
        cols["station_id"] = doc.get("stationId")
        cols["service_date"] = doc["serviceDate"]
    elif kind == "training":
        cols["org_id"] = doc["orgId"]
    elif kind == "trainingRecord":
        cols["pair_key"] = f"{doc['trainingId']}:{doc['volunteerId']}"
    elif kind == "commendation":
        cols["subject_id"] = doc["subjectId"]
        cols["dup_key"] = commendation_key(doc)
    elif kind == "evaluation":
        cols["pair_key"] = f"{doc['activityId']}:{doc['volunteerId']}"
    return cols


def commendation_key(doc: dict[str, Any]) -> str:
    """The key of §4.8's one-ACTIVE-commendation rule: ``subjectId|scheme|year`` with a scheme, else
    ``subjectId|title|awardedOn`` (409 ``DUPLICATE_COMMENDATION``)."""
    if doc.get("scheme"):
        return f"{doc['subjectId']}|{doc['scheme']}|{doc.get('year')}"
    return f"{doc['subjectId']}|{doc.get('title')}|{doc.get('awardedOn')}"


@dataclass(slots=True)
class Record:
    """A record in a unit of work: its wire form and the province it belongs to (§1 "scope")."""

    kind: str
    doc: dict[str, Any]
    province: str

    @property
    def id(self) -> str:
        """The registry id."""
        return self.doc["id"]


@dataclass(slots=True)
class ChangeItem:
    """A change to feed (§5.3): the provinces it reaches (before and after) and its data."""

    type: str
    id: str
    version: int
    op: str
    provinces: set[str]
    by_client_id: str | None


# ------------------------------------------------------------------------------------------------- engine

_MEMORY_URLS = {"sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://", "sqlite+pysqlite:///:memory:"}


class Store:
    """The sandbox database: an engine, its tables, and a process-wide write lock.

    Args:
        db_url: a SQLAlchemy URL: ``sqlite:///path``, ``sqlite://`` (a throw-away file), or
            ``postgresql+psycopg://…``.
        schema: on PostgreSQL, a schema to hold the tables (created if missing), e.g. one per test.

    The sandbox serves from one process; writes are serialized by :attr:`write_lock` (SQLite has one writer
    anyway; on PostgreSQL it keeps the in-memory uniqueness checks of a batch exact).
    """

    def __init__(self, db_url: str, *, schema: str | None = None) -> None:
        self._tmpdir: str | None = None
        if db_url in _MEMORY_URLS:
            shm = "/dev/shm"  # noqa: S108 - only the parent of a private mkdtemp directory
            base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
            self._tmpdir = tempfile.mkdtemp(prefix="regsync-sandbox-", dir=base)
            db_url = f"sqlite:///{self._tmpdir}/sandbox.db"
        url = make_url(db_url)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.schema = schema
        if self.is_sqlite:
            engine = create_engine(
                url, connect_args={"check_same_thread": False}, pool_size=8, max_overflow=8
            )
            _sqlite_setup(engine)
        else:
            engine = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=False)
            if schema:
                with engine.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                engine = engine.execution_options(schema_translate_map={None: schema})
        self.engine: Engine = engine
        self.write_lock = threading.RLock()
        metadata.create_all(self.engine)
        self.upgrade()
        with self.engine.begin() as conn:
            have = {r[0] for r in conn.execute(select(counters.c.name))}
            missing = [n for n in ["seq", "pruned", *(f"id:{t}" for t in TABLES)] if n not in have]
            if missing:
                conn.execute(counters.insert(), [{"name": n, "value": 0} for n in missing])

    def upgrade(self) -> None:
        """Bring the record tables of a store made by an older regsync up to :data:`metadata` (the sandbox's own
        schema upgrade; ``create_all`` makes the tables that are missing, not their new columns).

        A column a record table lacks is added (nullable), filled for every row from its ``doc`` by
        :func:`record_columns` (a page of 5 000 rows at a time, in id order), and the indexes over it are made.
        A store that has every column is left as it is.
        """
        found = inspect(self.engine)
        for kind, table in TABLES.items():
            have = {c["name"] for c in found.get_columns(table.name, schema=self._schema_name)}
            missing = [c for c in table.columns if c.name not in have]
            if missing:
                self._add_columns(kind, table, missing)

    @property
    def _schema_name(self) -> str | None:
        return self.schema if self.schema and not self.is_sqlite else None

    def _add_columns(self, kind: str, table: Table, missing: list[Column[Any]]) -> None:
        names = [c.name for c in missing]
        with self.engine.begin() as conn:
            prep = conn.dialect.identifier_preparer
            where = f"{prep.quote_schema(self._schema_name)}." if self._schema_name else ""
            for col in missing:
                spec = CreateColumn(col).compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {where}{prep.quote(table.name)} ADD COLUMN {spec}"))
            fill = table.update().where(table.c.id == bindparam("b_id")).values({n: bindparam(n) for n in names})
            last = ""
            while True:
                page = conn.execute(
                    select(table.c.id, table.c.province, table.c.doc)
                    .where(table.c.id > last)
                    .order_by(table.c.id)
                    .limit(5000)
                ).all()
                if not page:
                    break
                rows = []
                for row in page:
                    cols = record_columns(kind, orjson.loads(row.doc), row.province)
                    rows.append({"b_id": row.id, **{n: cols[n] for n in names}})
                conn.execute(fill, rows)
                last = page[-1].id
            for index in table.indexes:
                if any(c.name in names for c in index.columns):
                    index.create(conn)

    def write(self) -> _WriteTx:
        """A context manager: the write lock plus a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        return _WriteTx(self)

    def read(self) -> Connection:
        """A connection for reads; use ``with store.read() as conn, conn.begin(): …`` for a snapshot."""
        conn = self.engine.connect()
        if not self.is_sqlite:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

    def reset(self) -> None:
        """Erase every record, key, nonce, change and counter (not the clients)."""
        with self.write() as conn:
            for table in reversed(metadata.sorted_tables):
                if table is not clients:
                    conn.execute(table.delete())
            conn.execute(
                counters.insert(),
                [{"name": n, "value": 0} for n in ["seq", "pruned", *(f"id:{t}" for t in TABLES)]],
            )

    def drop_all(self) -> None:
        """Drop the sandbox tables (and the schema, if the store made one)."""
        metadata.drop_all(self.engine)
        if self.schema and not self.is_sqlite:
            with self.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))

    def close(self) -> None:
        """Dispose of the engine; remove the throw-away file of ``sqlite://``."""
        self.engine.dispose()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


class _WriteTx:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        self.store.write_lock.acquire()
        try:
            conn = self.store.engine.connect()
            if self.store.is_sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            self.conn = conn
            self._tx = conn.begin()
        except BaseException:
            self.store.write_lock.release()
            raise
        return conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            assert self.conn is not None
            self.conn.close()
            self.store.write_lock.release()


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's own is late and partial)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL: crash-consistent; only the fsync at checkpoints
        # a batch of 500 creates dirties ~1 000 pages (random keys: idempotency keys, ID numbers), so at the
        # default 1 000 pages nearly every commit ran a checkpoint; at 10 000 (40 MiB of WAL) a page changed by
        # several batches is copied back once (commit of a batch: ~8 → ~5.5 ms wall)
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# --------------------------------------------------------------------------------------------- unit of work


class UnitOfWork:
    """The records one call or batch reads and writes, kept in memory and written back once.

    Args:
        conn: a connection inside a write transaction (:meth:`Store.write`).
        now: the registry's clock, Unix seconds.

    Use :meth:`get`/:meth:`prefetch` to load records by id, :meth:`find` for secondary keys
    (:data:`INDEX_COLUMNS`), :meth:`put` to store a new or changed record, :meth:`feed` to queue a change,
    and :meth:`flush` at the end.
    """

    def __init__(self, conn: Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self._cache: dict[str, dict[str, Record | None]] = {t: {} for t in TABLES}
        self._index: dict[tuple[str, str], dict[str, set[str]]] = {
            (t, c): defaultdict(set) for t, cols in INDEX_COLUMNS.items() for c in cols
        }
        self._index_values: dict[tuple[str, str], dict[str, Any]] = {key: {} for key in self._index}
        self._loaded_keys: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._new: dict[str, list[str]] = {t: [] for t in TABLES}
        self._dirty: dict[str, set[str]] = {t: set() for t in TABLES}
        self._id_blocks: dict[str, list[int]] = {}
        self.changes: dict[tuple[str, str], ChangeItem] = {}
        self.idem_rows: list[dict[str, Any]] = []

    # --- loading
    def _load_rows(self, kind: str, column: str, values: list[str]) -> None:
        cache = self._cache[kind]
        for row in select_in(self.conn, TABLES[kind], ("id", "province", "doc"), column, values):
            if cache.get(row.id) is not None:
                continue  # the in-memory one is as new or newer
            self._index_record(Record(kind, orjson.loads(row.doc), row.province))

    def prefetch(self, kind: str, ids: Iterable[str]) -> None:
        """Load the records of ``kind`` with these ids (one query per 500), remembering misses."""
        cache = self._cache[kind]
        want = [i for i in set(ids) if isinstance(i, str) and i not in cache]
        for chunk in _chunks(want, 500):
            self._load_rows(kind, "id", chunk)
            for i in chunk:
                cache.setdefault(i, None)

    def prefetch_by(self, kind: str, column: str, values: Iterable[str]) -> None:
        """Load the records of ``kind`` whose ``column`` is one of ``values`` (for :meth:`find`)."""
        loaded = self._loaded_keys[(kind, column)]
        want = [v for v in set(values) if v is not None and v not in loaded]
        for chunk in _chunks(want, 500):
            self._load_rows(kind, column, chunk)
            loaded.update(chunk)

    def get(self, kind: str, record_id: Any) -> Record | None:
        """The record of ``kind`` with this id, as this unit of work sees it, or ``None``."""
        if not isinstance(record_id, str):
            return None
        cache = self._cache[kind]
        if record_id not in cache:
            self.prefetch(kind, [record_id])
        return cache.get(record_id)

    def find(self, kind: str, column: str, value: str) -> list[Record]:
        """Records of ``kind`` whose secondary key ``column`` equals ``value`` now (DB + in-memory)."""
        if value not in self._loaded_keys[(kind, column)]:
            self.prefetch_by(kind, column, [value])
        cache = self._cache[kind]
        return [
            r for i in sorted(self._index[(kind, column)].get(value, ())) if (r := cache.get(i)) is not None
        ]

    def scan(self, kind: str, where: Any, keep: Any) -> list[Record]:
        """Records of ``kind`` that the SQL clause ``where`` selects in the database, as this unit of work sees them
        now (a record it changed or created counts in its new state), filtered by ``keep(record) -> bool``.

        For the v1.1 rules that read a few records (§4.8 ``NOT_EARNED`` of a volunteer, §4.9
        ``NOT_A_PARTICIPANT``): ``where`` narrows the rows read through an index (a volunteer's ``day_key`` range),
        ``keep`` is the exact rule. To count many, :meth:`count`.
        """
        table = TABLES[kind]
        cache = self._cache[kind]
        seen: dict[str, Record] = {}
        for row in self.conn.execute(select(table.c.id, table.c.province, table.c.doc).where(where)):
            rec = cache.get(row.id)
            seen[row.id] = rec if rec is not None else Record(kind, orjson.loads(row.doc), row.province)
        for rid in (*self._new[kind], *self._dirty[kind]):
            rec = cache.get(rid)
            if rec is not None:
                seen[rid] = rec
        return [rec for _, rec in sorted(seen.items()) if keep(rec)]

    def count(self, kind: str, where: Any, keep: Callable[[Record], bool]) -> int:
        """How many records of ``kind`` match a rule, as this unit of work sees them now: counted by the database
        with the SQL clause ``where`` (one indexed ``COUNT``, no row read into Python), leaving out the records this
        unit of work changed, whose new state ``keep(record) -> bool`` judges, as it does the records it created.

        For §4.8's ``NOT_EARNED`` of an org (the records whose ``orgId`` or ``stationId`` it is, over the
        ``org_id``/``station_id`` indexes). ``where`` and ``keep`` state the same rule: the clause on the columns,
        ``keep`` on the wire record.
        """
        table = TABLES[kind]
        q = select(func.count()).select_from(table).where(where)
        changed = sorted(self._dirty[kind])  # the new ones are not in the database yet
        if changed:
            q = q.where(table.c.id.not_in(changed))
        cache = self._cache[kind]
        mine = (cache.get(rid) for rid in (*self._new[kind], *changed))
        return int(self.conn.execute(q).scalar_one()) + sum(1 for rec in mine if rec is not None and keep(rec))

    def _index_record(self, rec: Record) -> None:
        kind, rid = rec.kind, rec.doc["id"]
        self._cache[kind][rid] = rec
        cols = record_columns(kind, rec.doc, rec.province)
        for column in INDEX_COLUMNS[kind]:
            key = (kind, column)
            values = self._index_values[key]
            new = cols[column]
            if rid in values:
                old = values[rid]
                if old == new:
                    continue
                if old is not None:
                    self._index[key][old].discard(rid)
            if new is not None:
                self._index[key][new].add(rid)
            values[rid] = new

    # --- writing
    def reserve_ids(self, kind: str, count: int) -> None:
        """Reserve ``count`` ids of ``kind`` in one counter update (a batch's creates)."""
        if count <= 0:
            return
        name = f"id:{kind}"
        self.conn.execute(
            counters.update().where(counters.c.name == name).values(value=counters.c.value + count)
        )
        top = self.conn.execute(select(counters.c.value).where(counters.c.name == name)).scalar_one()
        block = self._id_blocks.setdefault(kind, [])
        block.extend(range(top - count + 1, top + 1))
        block.sort(reverse=True)

    def new_id(self, kind: str) -> str:
        """A fresh registry id: a type prefix and a zero-padded counter, ascending in creation order."""
        block = self._id_blocks.get(kind)
        if not block:
            self.reserve_ids(kind, 1)
            block = self._id_blocks[kind]
        return f"{ID_PREFIX[kind]}{block.pop():013d}"

    def put(self, rec: Record, *, new: bool) -> None:
        """Store a created (``new``) or changed record in this unit of work."""
        if new:
            self._new[rec.kind].append(rec.id)
        elif rec.id not in self._new[rec.kind]:
            self._dirty[rec.kind].add(rec.id)
        self._index_record(rec)

    def _columns(self, kind: str, record_id: str) -> dict[str, Any]:
        rec = self._cache[kind][record_id]
        assert rec is not None
        cols = record_columns(kind, rec.doc, rec.province)
        cols["doc"] = orjson.dumps(rec.doc).decode()
        return cols

    def feed(self, rec: Record, op: str, by_client_id: str | None, before_province: str | None) -> None:
        """Queue a change of ``rec`` for the feed (§5.3).

        Several changes of a record in one unit of work
        become one item with the last version, fed to every province the record was in.
        """
        key = (rec.kind, rec.id)
        item = self.changes.get(key)
        provinces = {rec.province} | ({before_province} if before_province else set())
        if item is None:
            self.changes[key] = ChangeItem(rec.kind, rec.id, rec.doc["version"], op, provinces, by_client_id)
        else:
            item.version, item.op, item.by_client_id = rec.doc["version"], op, by_client_id
            item.provinces |= provinces

    def flush(self, changed_at: str) -> None:
        """Write new and changed records, feed items and idempotency rows, one ``executemany`` each."""
        # updates before inserts, so that a key freed by an update (a USCC of a dissolved org) can be
        # taken by a record created in the same batch
        for kind, table in TABLES.items():
            if not self._dirty[kind]:
                continue
            rows = []
            for rid in sorted(self._dirty[kind]):
                cols = self._columns(kind, rid)
                cols["b_id"] = cols.pop("id")
                rows.append(cols)
            stmt = table.update().where(table.c.id == bindparam("b_id"))
            if kind == "org" and len(rows) > 1:
                # a USCC may also move between two updated orgs: free them all first
                self.conn.execute(stmt.values(uscc_live=None), [{"b_id": r["b_id"]} for r in rows])
            elif kind == "volunteer" and len(rows) > 1:
                # an ID number may move between two updated volunteers (an identity correction of one, the
                # other's number corrected in the same batch): the final state is unique, a row-by-row update
                # need not be; park each updated row's key on a value of its own first (id_key is NOT NULL)
                self.conn.execute(stmt.values(id_key=bindparam("b_park")),
                                  [{"b_id": r["b_id"], "b_park": f"~{r['b_id']}"} for r in rows])
            self.conn.execute(stmt.values({c: bindparam(c) for c in rows[0] if c != "b_id"}), rows)
        for kind, table in TABLES.items():
            if self._new[kind]:
                self._insert_many(table, [self._columns(kind, rid) for rid in self._new[kind]])
        if self.changes:
            count = len(self.changes)
            self.conn.execute(
                counters.update().where(counters.c.name == "seq").values(value=counters.c.value + count)
            )
            top = self.conn.execute(select(counters.c.value).where(counters.c.name == "seq")).scalar_one()
            rows = []
            for seq, item in enumerate(self.changes.values(), start=top - count + 1):
                for province in sorted(item.provinces):
                    rows.append(
                        {
                            "province": province,
                            "seq": seq,
                            "type": item.type,
                            "id": item.id,
                            "version": item.version,
                            "op": item.op,
                            "changed_at": changed_at,
                            "changed_ts": self.now,
                            "by_client_id": item.by_client_id,
                        }
                    )
            self._insert_many(changes, rows)
        if self.idem_rows:
            self._insert_many(idempotency, self.idem_rows)

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """``INSERT`` many rows.

        On SQLite straight through the driver (SQLAlchemy's per-row parameter
        processing is most of the cost of a 500-row batch there).
        """
        if self.conn.dialect.name != "sqlite":
            self.conn.execute(table.insert(), rows)
            return
        names = [c.name for c in table.columns]
        sql = _INSERT_SQL.get(table.name)
        if sql is None:
            sql = _INSERT_SQL[table.name] = (
                f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            )
        self.conn.exec_driver_sql(sql, [tuple(map(r.get, names)) for r in rows])


_INSERT_SQL: dict[str, str] = {}
_SELECT_IN_SQL: dict[tuple[str, tuple[str, ...], tuple[str, ...], str, int], str] = {}


def select_in(
    conn: Connection,
    table: Table,
    names: tuple[str, ...],
    column: str,
    values: list[Any],
    **equal: Any,
) -> Iterable[Any]:
    """The rows (``names`` as attributes) of ``table`` whose ``column`` is one of ``values`` and whose other
    columns equal ``equal``.

    On SQLite the statement goes straight to the driver (its text cached per shape): SQLAlchemy's compiling of
    an expanding ``IN`` of hundreds of values is most of such a query's cost there.
    """
    if conn.dialect.name != "sqlite":
        q = select(*(table.c[n] for n in names)).where(table.c[column].in_(values))
        for name, value in equal.items():
            q = q.where(table.c[name] == value)
        return conn.execute(q)
    shape = (table.name, names, tuple(equal), column, len(values))
    sql = _SELECT_IN_SQL.get(shape)
    if sql is None:
        where = "".join(f"{name} = ? AND " for name in equal)
        sql = _SELECT_IN_SQL[shape] = (
            f"SELECT {', '.join(names)} FROM {table.name} WHERE {where}{column} IN ({', '.join('?' * len(values))})"
        )
    return conn.exec_driver_sql(sql, (*equal.values(), *values))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class ClientCredential:
    """A registry client (§2): its id, secret, 2-digit province, and whether it may get tokens."""

    client_id: str
    client_secret: str = field(repr=False)
    province: str = "23"
    enabled: bool = True
