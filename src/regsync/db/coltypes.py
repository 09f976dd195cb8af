"""The column types and table options that differ by engine, shared by the models and the migrations.

* :data:`BigId`: a 64-bit id, auto-incrementing (``BIGINT`` with a sequence on PostgreSQL, ``BIGINT AUTO_INCREMENT``
  on MySQL/MariaDB), that is still SQLite's ``INTEGER PRIMARY KEY``.
* :data:`Timestamp`: a naive UTC timestamp to the microsecond: ``DATETIME(6)`` on MySQL/MariaDB, whose plain
  ``DATETIME`` drops the fraction (a lease's end, a slot's scheduled time and the feed's times are compared to the
  microsecond).
* :data:`MYSQL_TABLE`: every regsync table on MySQL/MariaDB is InnoDB (transactions, row locks, ``SKIP LOCKED``),
  utf8mb4 with a binary collation (:data:`regsync.db.session.MYSQL_COLLATION`), whatever the database's defaults.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer
from sqlalchemy.dialects import mysql

from regsync.db.session import MYSQL_CHARSET, MYSQL_COLLATION

#: A big integer id that is still SQLite's auto-incrementing ``INTEGER PRIMARY KEY``.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: A naive UTC timestamp with microseconds on every engine (``DATETIME(6)`` on MySQL/MariaDB).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

#: The table options of every regsync table on MySQL/MariaDB (ignored by the other engines).
MYSQL_TABLE: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": MYSQL_CHARSET,
                               "mysql_collate": MYSQL_COLLATION}



def only_on(index: Index, *dialects: str) -> Index:
    """``index``, made only on the engines named (``"postgresql"``, ``"sqlite"``, ``"mysql"``): a partial index
    (``postgresql_where``/``sqlite_where``) has no MySQL/MariaDB form, and an engine may need another index in its
    stead. ``CREATE``/``DROP`` skip it elsewhere (:meth:`~sqlalchemy.schema.Index.ddl_if`), and the engines it is
    made on are kept in ``index.info["dialects"]`` for the comparison of the models with a migrated store
    (:func:`regsync.db.migrate.include_object`).
    """
    names = tuple(dialects) + (("mariadb",) if "mysql" in dialects else ())
    index.info["dialects"] = names
    return index.ddl_if(dialect=names)  # type: ignore[arg-type]  # a tuple of names is documented; the stub says str


__all__ = ["MYSQL_TABLE", "BigId", "Timestamp", "only_on"]
