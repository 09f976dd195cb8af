"""The ``discrepancy`` rows a reconcile, resync or adopt writes: one per difference found (design.md, flow 3).

A finding becomes a row by :func:`discrepancy_row` (its field names and details as JSON text, masked already by
the flow) and rows are written in batches by :func:`insert_discrepancies`, so that a run's memory stays flat
however many it finds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from regsync.db.models import Discrepancy
from regsync.db.session import utcnow

_INSERT = Discrepancy.__table__.insert()


def discrepancy_row(run_id: int, *, entity: str, kind: str, local_id: int | None, registry_id: str | None,
                    fields: Sequence[str], details: dict[str, Any], city_code: str | None, org_line: str | None,
                    action: str | None, action_state: str | None) -> dict[str, Any]:
    """One ``discrepancy`` row, detected now, ready for :func:`insert_discrepancies`.

    Args:
        run_id: the ``run`` row the finding belongs to.
        entity: the record kind (``org``, ``volunteer``, ...).
        kind: the kind of difference (``missing_in_registry``, ``field_mismatch``, ...).
        local_id: the local record's id, or ``None``.
        registry_id: the registry record's id, or ``None``.
        fields: the synced field names that differ (registry-api.md names), stored as a JSON array.
        details: masked values only, stored as JSON text (keys sorted; values JSON cannot hold as their text).
        city_code: the 4-digit GB/T 2260 prefix, or ``None``.
        org_line: ``regional`` or ``specialized``, or ``None``.
        action: the repair policy allows, or ``None`` (the run only reported).
        action_state: what became of it, or ``None``.

    Returns:
        Column → value (``detected_at`` naive UTC).
    """
    return {"run_id": run_id, "entity": entity, "kind": kind, "local_id": local_id, "registry_id": registry_id,
            "fields": json.dumps(fields),
            "details": json.dumps(details, ensure_ascii=False, default=str, sort_keys=True),
            "city_code": city_code, "org_line": org_line, "action": action, "action_state": action_state,
            "detected_at": utcnow()}


def insert_discrepancies(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (from :func:`discrepancy_row`; not empty) in one transaction."""
    with engine.begin() as conn:
        conn.execute(_INSERT, list(rows))


__all__ = ["discrepancy_row", "insert_discrepancies"]
