"""Whether a migration run keeps regsync's reference tables of the platform's records (issue 14).

``False`` when the platform's own tables are mapped (``database.mapping`` is not ``reference``): a migration
that creates or changes a reference table (``organization``, ``volunteer``, ``membership``, ``activity``,
``service_record``) or its outbox triggers does so only when :func:`reference_tables` is true.
"""

from __future__ import annotations

from alembic import context


def reference_tables() -> bool:
    """Whether the store's platform records are the reference tables (the caller's ``reference_tables``)."""
    return bool(context.config.attributes.get("reference_tables", True))
