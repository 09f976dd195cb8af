"""A reconcile's repairs (``reconcile --repair``, ``resync``): each finding gets the fix policy allows, or (with
``plan``) is told which fix it would get.

* ``push``: an outbox row for the relay (:meth:`Repairs.queue`), unless an operator holds the record (``discarded``);
  a record the registry refused before on unchanged data is ``requeued`` (it fails again unless the data changed);
* ``pull``: a linked pair merged three-way with the link's base and the ``[merge]`` policies
  (:meth:`Repairs.repair_linked`: registry-winning fields written locally, local-winning ones pushed, ``manual``
  ones held as conflicts), or a registry record the platform lacks created or adopted locally
  (:meth:`Repairs.pull_new`, inbound's rules);
* ``relink``: a broken link dropped and the record queued for creation (:meth:`Repairs.relink`).

Repairs are DB transactions and outbox rows only (the store's :mod:`regsync.db.repairs`), safe while the daemon
runs. One record's failed repair is recorded with its finding (``failed``, ``repair_error``) and counted in
:attr:`Repairs.errors`; the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db.holds import held_keys
from regsync.db.models import REGISTRY_OWNED
from regsync.db.platform.scan import LocalItem
from regsync.db.reconcile import link_id
from regsync.db.repairs import mark_requeued, queue_repairs, refused_before, relink_as_new
from regsync.db.session import suppress_outbox
from regsync.domain.masking import mask_text
from regsync.domain.merge import take_registry, three_way
from regsync.domain.projection import IMMUTABLE_RECORDS, canonical
from regsync.flows.apply import LocalWriter, Unresolved
from regsync.flows.reconcile_findings import Finding
from regsync.settings import Settings

log = structlog.get_logger("regsync.flows.reconcile")  # the reconcile's log, as before its parts were modules


def made_here(writer: LocalWriter, rec: dict[str, Any]) -> bool:
    """Whether the registry record ``rec`` is owned by this client (its ``owner_client_id`` is the writer's)."""
    return bool(writer.own_client_id) and rec.get("owner_client_id") == writer.own_client_id


class Repairs:
    """The fixes of one run.

    Args:
        engine: the local store.
        settings: regsync's settings (``province``, ``hash_key``).
        writer: the writer of registry changes into local records (its ``[merge]`` policies, links, pushes).
        run_id: the run's ``run`` row (the conflicts a merge holds name it), or ``None``.
    """

    def __init__(self, engine: Engine, settings: Settings, writer: LocalWriter, run_id: int | None) -> None:
        self.engine = engine
        self.settings = settings
        self.key = settings.hash_key
        self.writer = writer
        self.run_id = run_id
        #: repairs that failed (each recorded with its finding)
        self.errors = 0

    def queue(self, kind: str, row: dict[str, Any], op: str, details: dict[str, Any] | None = None) -> str:
        """Queue an outbox row for the relay (``queued``), unless one waits already (``queued`` too).

        Returns ``requeued`` instead when the record's last push was refused on its data
        (:func:`~regsync.db.repairs.refused_before`; its code goes to ``details["refused_before"]``): the relay
        sends it again, and it fails again unless the data changed since (design.md, flow 1: a refused row waits
        until the data changes). Returns ``discarded`` and queues nothing for a record an operator discarded (held
        until ``outbox restore``)."""
        return self.queue_page(kind, [row], op, [details])[0]

    def queue_page(self, kind: str, rows: Sequence[dict[str, Any]], op: str,
                   details: Sequence[dict[str, Any] | None]) -> list[str]:
        """:meth:`queue` for a page of records (``rows``, each with its finding's ``details``), each as if alone, in
        one transaction of three statements however many records (:func:`regsync.db.repairs.queue_repairs`): a
        ``reconcile --repair`` of a province's records missing from the registry is not four statements a record.
        Returns each record's state, in order (``queued``, ``requeued``, ``discarded``)."""
        with self.engine.begin() as conn:
            done = queue_repairs(conn, kind, rows, op)
        out = []
        for (held, refused), d in zip(done, details, strict=True):
            if held:  # an operator keeps it out of sync until `outbox restore` (regsync.db.holds)
                out.append("discarded")
                continue
            if refused is not None and d is not None:
                d["refused_before"] = refused
            out.append("queued" if refused is None else "requeued")
        return out

    def repair_linked(self, kind: str, item: LocalItem, rec: dict[str, Any], local: dict[str, Any],
                      remote: dict[str, Any], f: Finding) -> None:
        """Merge a linked pair as policy says: registry-winning fields written locally (``pull``), local-winning
        ones queued (``push``), ``manual`` ones held as conflicts (``held``); ``f`` gets the action and its state.

        Args:
            kind: the record kind.
            item: the local item (its row and link).
            rec: the registry's record.
            local: the local row projected (:func:`regsync.domain.projection.project_local`).
            remote: the registry's record projected.
            f: the pair's finding.
        """
        writer = self.writer
        row = {k: v for k, v in item.row.items() if not k.startswith("_")}
        link = {"id": None, "entity": kind, "local_id": item.local_id, "registry_id": rec["id"],
                "registry_version": item.row["_ver"], "base": item.row["_base"], "how": item.row["_how"]}
        version = int(rec.get("version") or 1)
        try:
            with self.engine.begin() as conn, suppress_outbox(conn):
                link["id"] = link_id(conn, kind, item.local_id)
                transferred = writer.residence(conn, kind, link, remote)
                if item.row["_how"] == REGISTRY_OWNED or transferred or (
                        kind in IMMUTABLE_RECORDS and not made_here(writer, rec)):
                    result = take_registry(kind, local, remote, self.key, "reconcile", writer.read_only(kind))
                elif kind in IMMUTABLE_RECORDS:
                    # never merged: the platform's service or training record is pushed (a correction, :correct)
                    if held_keys(conn, [(kind, item.local_id)]):
                        f.action, f.action_state = "push", "discarded"  # held until `outbox restore`
                        return
                    refused = _note_refusal(conn, kind, item.local_id, f)
                    writer.save_link(link, version, canonical(remote, self.key))
                    writer.queue_push(conn, kind, row)
                    writer.flush(conn)  # the writer buffers its writes
                    mark_requeued(conn, kind, item.local_id, refused)
                    f.action, f.action_state = "push", "queued" if refused is None else "requeued"
                    return
                else:
                    base = json.loads(item.row["_base"] or "{}")
                    result = three_way(kind, base, local, remote, writer.policies, self.key, writer.read_only(kind))
                writer.write_local(conn, kind, row, result)
                pushed = bool(result.push) and item.row["_how"] != REGISTRY_OWNED and not transferred
                refused = None
                held = pushed and bool(held_keys(conn, [(kind, item.local_id)]))
                if held:  # an operator keeps it out of sync until `outbox restore`: nothing pushed
                    pushed = False
                if pushed:
                    refused = _note_refusal(conn, kind, item.local_id, f)
                    writer.queue_push(conn, kind, row)
                writer.record_conflicts(conn, kind, link, version, result, self.run_id)
                writer.save_link(link, version, result.new_base)
                writer.note(kind, item.local_id, rec["id"], result)
                writer.flush(conn)  # the writer buffers its writes
                mark_requeued(conn, kind, item.local_id, refused)
            f.action = "pull" if result.apply_local else "push" if pushed or held else "none"
            f.action_state = "held" if result.conflicts else "discarded" if held and not result.apply_local else (
                ("queued" if refused is None else "requeued") if pushed else "done")
            if result.conflicts:
                f.details["conflicts"] = sorted(c.field for c in result.conflicts)
        except Exception as exc:  # noqa: BLE001 — one record's repair fails alone, recorded
            self.errors += 1
            f.action = f.action or "pull"
            f.action_state = "failed"
            f.details["repair_error"] = mask_text(str(exc))[:300]
            log.warning("reconcile: repair failed", kind=kind, local_id=item.local_id, error=mask_text(str(exc)))

    def plan_linked(self, kind: str, item: LocalItem, rec: dict[str, Any], local: dict[str, Any],
                    remote: dict[str, Any], f: Finding) -> None:
        """What :meth:`repair_linked` would do, without doing it (``action_state`` ``planned``)."""
        transferred = kind == "volunteer" and remote.get("home_province") != self.settings.province
        f.action_state = "planned"
        if item.row["_how"] == REGISTRY_OWNED or transferred or (
                kind in IMMUTABLE_RECORDS and not made_here(self.writer, rec)):
            f.action = "pull"
        elif kind in IMMUTABLE_RECORDS:
            f.action = "push"
        else:
            result = three_way(kind, json.loads(item.row["_base"] or "{}"), local, remote, self.writer.policies,
                               self.key, self.writer.read_only(kind))
            f.action = "pull" if result.apply_local else "push" if result.push else "none"
            if result.conflicts:
                f.details["conflicts"] = sorted(c.field for c in result.conflicts)

    def pull_new(self, kind: str, rec: dict[str, Any], f: Finding) -> None:
        """Create (or adopt) the local row of a registry record the platform lacks (inbound's rules); ``f``'s
        ``action_state`` becomes ``done``, ``not_allowed`` (the rules made nothing) or ``failed``."""
        writer = self.writer
        before = sum(writer.stats.adopted.values()) + sum(writer.stats.created.values()) + sum(
            writer.stats.registry_owned.values())
        try:
            with self.engine.begin() as conn, suppress_outbox(conn):
                writer.apply_new(conn, kind, rec)
                writer.flush(conn)  # the writer buffers its writes
        except Unresolved as exc:
            f.action_state = "failed"
            f.details["repair_error"] = str(exc)[:300]
            self.errors += 1
            return
        except Exception as exc:  # noqa: BLE001 — recorded with the discrepancy
            f.action_state = "failed"
            f.details["repair_error"] = mask_text(str(exc))[:300]
            self.errors += 1
            log.warning("reconcile: pull failed", kind=kind, registry_id=rec["id"], error=mask_text(str(exc)))
            return
        after = sum(writer.stats.adopted.values()) + sum(writer.stats.created.values()) + sum(
            writer.stats.registry_owned.values())
        f.action_state = "done" if after > before else "not_allowed"

    def relink(self, kind: str, rid: str, items: list[LocalItem]) -> str:
        """A broken link: drop the links of ``rid`` and queue the records that still exist for creation (the relay
        links them to an existing registry record on ``DUPLICATE_*``). Returns ``queued``."""
        rows = [{k: v for k, v in it.row.items() if not k.startswith("_")} for it in items if it.exists]
        with self.engine.begin() as conn:
            relink_as_new(conn, kind, rid, rows)
        return "queued"


def _note_refusal(conn: Connection, kind: str, local_id: int, f: Finding) -> str | None:
    """:func:`~regsync.db.repairs.refused_before`, noted in the finding's details (``refused_before``) when there
    is one."""
    refused = refused_before(conn, kind, local_id)
    if refused is not None:
        f.details["refused_before"] = refused
    return refused


__all__ = ["Repairs", "made_here"]
