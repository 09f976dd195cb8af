"""What the registry checks against its own records (registry-api.md v1.1, issue 16): a record is sent only once the
registry can accept it, never to be refused and then retried.

* A commendation of the annual scheme (``PROVINCIAL_ANNUAL``, §4.8) is checked on create against the registry's
  ACCEPTED service records of the subject in its ``year``: it waits (:data:`RECORDS_PENDING`, deferred) while a local service
  record of that year that the scheme counts still has rows to send; once they are accepted or have failed it is sent.
  A ``NOT_EARNED`` refusal is taken up again when a service record of that subject and year is written
  (:func:`after_writes`), not on every pass.
* An evaluation (§4.9) needs its activity ``COMPLETED`` and the volunteer's service record there ``ACCEPTED`` in the
  registry: it is blocked on its activity (:data:`AWAITS_COMPLETION`) or its service record
  (:data:`AWAITS_SERVICE_RECORD`; deferred as :data:`RECORDS_PENDING` while those are being sent), listed for
  operators (the platform has to complete the activity, or record the service), and taken up again when either is
  written.

The registry's state is read from the links' bases (the state both sides last agreed on); the statements are the
store's (:mod:`regsync.db.outbox`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from regsync.db import links, outbox
from regsync.flows.relay_items import AWAITS_COMPLETION, AWAITS_SERVICE_RECORD, RECORDS_PENDING, Item

#: Seconds a record that waits for records being sent in this pass is put off (taken again at the pass's end).
SHORT_WAIT_S = 2.0

#: The registry's refusal of a scheme commendation whose figure falls short (§4.8, field ``tier``).
NOT_EARNED = "NOT_EARNED"


@dataclass(frozen=True)
class Wait:
    """Why a record is not sent yet: its outbox ``code``, the ``message`` operators read, and ``seconds`` to wait
    (deferred, taken again within the pass), or ``None``: blocked until what it waits for is written (a change the
    platform has to make: listed for operators, counted with the failed)."""

    code: str
    message: str
    seconds: float | None


class Waits:
    """Decides which creates of a chunk wait for the registry's own records.

    Args:
        engine: the local store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check(self, kind: str, planned: list[tuple[Item, dict[str, Any]]]) -> dict[int, Wait]:
        """The waits of the creates among ``planned`` (items with their ``desired`` state) of ``kind``.

        Returns:
            local id → :class:`Wait`, for the records that must not be sent yet.
        """
        if kind not in ("commendation", "evaluation"):
            return {}
        wanted = [(it, d) for it, d in planned if it.link is None and it.row is not None and d is not None]
        if kind == "commendation":
            wanted = [(it, d) for it, d in wanted if d.get("scheme") and d.get("year") is not None]
        if not wanted:
            return {}
        out: dict[int, Wait] = {}
        with self.engine.connect() as conn:
            replaced = self._being_replaced(conn) if kind == "commendation" else set()
            for it, desired in wanted:
                if kind == "commendation" and _scheme_key(desired) in replaced:
                    out[it.local_id] = Wait(RECORDS_PENDING, "the subject's commendation of this scheme and year in "
                                            "the registry is to be revoked first (registry-api.md §4.8: a higher "
                                            "tier replaces a lower one by revoking the lower first)", SHORT_WAIT_S)
                    continue
                row = it.row
                assert row is not None
                wait = (self._scheme(conn, row, int(desired["year"])) if kind == "commendation"
                        else self._evaluation(conn, row))
                if wait is not None:
                    out[it.local_id] = wait
        return out

    @staticmethod
    def _being_replaced(conn: Connection) -> set[tuple[Any, ...]]:
        """The (subject, scheme, year) of the registry's ACTIVE scheme commendations linked here whose local records
        have rows still to send (revoked or deleted on the platform: their revoke is on its way)."""
        keys = set()
        for _, raw in outbox.linked_bases_waiting(conn, "commendation"):
            base = json.loads(raw or "{}")
            if base.get("scheme") and base.get("status") == "ACTIVE":
                keys.add(_scheme_key(base))
        return keys

    @staticmethod
    def _scheme(conn: Connection, row: dict[str, Any], year: int) -> Wait | None:
        if outbox.service_records_unsettled(conn, year=year, volunteer_id=row.get("volunteer_id"),
                                            org_id=row.get("org_id")):
            return Wait(RECORDS_PENDING, f"the registry checks this commendation against the subject's service "
                        f"records of {year}, some of which are still to be sent", SHORT_WAIT_S)
        return None

    @staticmethod
    def _evaluation(conn: Connection, row: dict[str, Any]) -> Wait | None:
        activity = links.links_of(conn, "activity", [row["activity_id"]]).get(row["activity_id"])
        status = json.loads(activity["base"] or "{}").get("status") if activity else None
        if status != "COMPLETED":
            if outbox.waiting(conn, [("activity", row["activity_id"])]):
                return Wait(RECORDS_PENDING, "its activity's completion is still to be sent", SHORT_WAIT_S)
            return Wait(AWAITS_COMPLETION, f"an activity is evaluated once it is COMPLETED in the registry; activity "
                        f"{row['activity_id']} is {status or 'not in the registry'}", None)
        statuses, waiting = outbox.participation(conn, row["activity_id"], row["volunteer_id"])
        if "ACCEPTED" in statuses:
            return None
        if waiting:
            return Wait(RECORDS_PENDING, "the volunteer's service record at the activity is still to be sent",
                        SHORT_WAIT_S)
        return Wait(AWAITS_SERVICE_RECORD, f"volunteer {row['volunteer_id']} has no accepted service record in the "
                    f"registry at activity {row['activity_id']}", None)


def _scheme_key(fields: dict[str, Any]) -> tuple[Any, ...]:
    """What the registry keeps one ACTIVE commendation of (registry-api.md §4.8): subject, scheme and year."""
    return (fields.get("volunteer_id"), fields.get("org_id"), fields.get("scheme"), fields.get("year"))


def after_writes(conn: Connection, kind: str, items: list[Item], now: dt.datetime) -> None:
    """Take up again what waits for the registry's records written in this transaction: evaluations of an activity
    written or of a service record's activity, and commendations refused ``NOT_EARNED`` for the subject and year of
    a service record written (accepted, corrected or revoked: the registry's figure moved)."""
    if kind == "activity":
        outbox.wake_evaluations(conn, [it.local_id for it in items], (AWAITS_COMPLETION, RECORDS_PENDING), now)
    elif kind == "service_record":
        rows = [it.row for it in items if it.row is not None]
        outbox.wake_evaluations(conn, [r["activity_id"] for r in rows],
                                (AWAITS_SERVICE_RECORD, RECORDS_PENDING), now)
        outbox.retry_not_earned(conn, [(r["volunteer_id"], r["org_id"], _year(r["service_date"])) for r in rows
                                       if r.get("service_date") is not None], NOT_EARNED, now)


def _year(value: Any) -> int:
    """The year of a service date (a date, or ISO text as SQLite aggregates may give it)."""
    return value.year if isinstance(value, dt.date) else int(str(value)[:4])


__all__ = ["NOT_EARNED", "SHORT_WAIT_S", "Wait", "Waits", "after_writes"]
