"""MySQL/MariaDB helpers of the tests: the test server's URL and private databases (``t_<hex>``), as
:mod:`pgutil` makes private PostgreSQL schemas."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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
    """A fresh, private, empty database on the MySQL/MariaDB test server: ``(url, name)``. It has the server's
    default collation (a case-insensitive one, as a province's DBA would make it): regsync's tables say their own."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    admin.dispose()
    return my_database_url(name), name


def drop_my_database(name: str) -> None:
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()
