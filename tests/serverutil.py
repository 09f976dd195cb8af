"""What the helpers of the database servers share (:mod:`pgutil`: private PostgreSQL schemas; :mod:`myutil`: private
MySQL/MariaDB databases): whether the test server answers, and a statement run on it as its administrator."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def server_available(url: str) -> bool:
    """Whether the database server at ``url`` answers (the tests that need it are skipped when not)."""
    try:
        eng = create_engine(url)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def admin_execute(url: str, statement: str) -> None:
    """Run ``statement`` (``CREATE SCHEMA …``, ``DROP DATABASE …``) on the server at ``url``, committed."""
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(statement))
    admin.dispose()
