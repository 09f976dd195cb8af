"""MySQL/MariaDB helpers of the tests: the test server's URL and private databases (``t_<hex>``), as
:mod:`pgutil` makes private PostgreSQL schemas."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from regsync.db.session import make_engine

#: The server the tests use: root on loopback may create and drop databases (``.ci/services.sh`` starts it).
MY_URL = os.environ.get("REGSYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4")


def _my_available() -> bool:
    try:
        eng = create_engine(MY_URL)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


_MY = _my_available()


def my_database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return make_url(MY_URL).set(database=name).render_as_string(hide_password=False)


def make_my_database() -> tuple[str, str]:
    """A fresh, private, empty database on the MySQL/MariaDB test server: ``(url, name)``. Its defaults are those of
    a long-lived platform's database, ``utf8mb3`` and a case-insensitive collation, which can hold no character
    outside the BMP and finds ``x`` equal to ``X``: regsync's tables and temporary tables name their own
    (utf8mb4_bin), and the tests show it."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"))
    admin.dispose()
    return my_database_url(name), name


def drop_my_database(name: str) -> None:
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def make_my_engine() -> tuple[Engine, str]:
    """An engine on a fresh, private database of the MySQL/MariaDB test server (:func:`make_my_database`), and the
    database's name (for :func:`drop_my_database`)."""
    url, name = make_my_database()
    return make_engine(url), name
