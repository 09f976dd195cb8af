"""Operator commands on the outbox (design.md, "Operator commands"): see what waits, retry, discard, restore.

The statements, and what they check of a selection, are the store's (:mod:`regsync.db.outbox_admin`); here the
command's words become a selection (:func:`parse_kind`, :func:`parse_targets`) and run on the configured store
(:func:`run_list`, :func:`run_action`). The names of :mod:`regsync.db.outbox_admin` that operators' code uses are
exported from here too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from regsync.db.models import ENTITIES
from regsync.db.outbox_admin import (
    FAILED_STATES,
    LISTABLE_STATES,
    MAX_AUDIT_KEYS,
    MAX_ROW_IDS,
    RETRY_STATES,
    WAITING_STATES,
    ActionResult,
    OperatorUsageError,
    OutboxListing,
    OutboxRecord,
    Selection,
    check_reason,
    default_actor,
    discard_outbox,
    list_outbox,
    record_key,
    restore_outbox,
    retry_outbox,
)
from regsync.db.store import open_store, store_error
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.masking import mask_text
from regsync.i18n import gettext_noop as N_
from regsync.settings import Settings

_KIND_ALIASES: dict[str, str] = {**{k: k for k in ENTITIES}, **{v: k for k, v in KIND_NAMES.items()}}


def stdin_is_tty() -> bool:
    """Whether there is a terminal to ask a confirmation on (a seam for tests)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False

def parse_kind(value: str) -> str:
    """An entity name from ``volunteer``/``volunteers`` (any case).

    Raises:
        OperatorUsageError: not a kind regsync syncs.
    """
    kind = _KIND_ALIASES.get(value.strip().lower())
    if kind is None:
        raise OperatorUsageError(N_("unknown kind {value!r}; one of {kinds}"), value=value, kinds=", ".join(ENTITIES))
    return kind

def parse_targets(values: Iterable[str]) -> tuple[tuple[int, ...], tuple[tuple[str, int], ...]]:
    """Split command-line targets into outbox row ids and records.

    Args:
        values: each an outbox row id (``123``) or a record (``KIND:LOCAL_ID``, e.g. ``volunteer:42``).

    Returns:
        (row ids, records as ``(entity, local_id)``), each without repeats, in the order given.

    Raises:
        OperatorUsageError: a value is neither.
    """
    row_ids: dict[int, None] = {}
    records: dict[tuple[str, int], None] = {}
    for raw in values:
        value = raw.strip()
        kind, sep, lid = value.partition(":")
        try:
            if sep:
                records[(parse_kind(kind), int(lid))] = None
            else:
                row_ids[int(value)] = None
        except ValueError as exc:
            raise OperatorUsageError(N_("{value!r} is neither an outbox row id nor KIND:LOCAL_ID"),
                                     value=mask_text(raw)) from exc
    return tuple(row_ids), tuple(records)


# ------------------------------------------------------------------------------------------------ CLI glue
def run_list(settings: Settings, **filters: Any) -> OutboxListing:
    """:func:`list_outbox` on the configured store.

    Raises:
        OperatorUsageError: see :func:`list_outbox`.
        StoreError: the store cannot be reached or read, or its schema is not the newest.
    """
    engine = open_store(settings.database)
    try:
        return list_outbox(engine, **filters)
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc
    finally:
        engine.dispose()

def run_action(settings: Settings, action: str, selection: Selection, **kwargs: Any) -> ActionResult:
    """:func:`retry_outbox` (``action="retry"``), :func:`discard_outbox` (``"discard"``) or :func:`restore_outbox`
    (``"restore"``) on the store.

    Raises:
        OperatorUsageError: see those functions.
        StoreError: the store cannot be reached or written, or its schema is not the newest.
    """
    fn = {"retry": retry_outbox, "discard": discard_outbox, "restore": restore_outbox}[action]
    if action != "restore":
        selection.validate(allow_all_failed=action == "retry")
    check_reason(kwargs.get("reason"))
    engine = open_store(settings.database)
    try:
        return fn(engine, selection, **kwargs)
    except SQLAlchemyError as exc:
        raise store_error(exc) from exc
    finally:
        engine.dispose()


__all__ = [
    "FAILED_STATES",
    "LISTABLE_STATES",
    "MAX_AUDIT_KEYS",
    "MAX_ROW_IDS",
    "RETRY_STATES",
    "WAITING_STATES",
    "ActionResult",
    "OperatorUsageError",
    "OutboxListing",
    "OutboxRecord",
    "Selection",
    "check_reason",
    "default_actor",
    "discard_outbox",
    "list_outbox",
    "parse_kind",
    "parse_targets",
    "record_key",
    "restore_outbox",
    "retry_outbox",
    "run_action",
    "run_list",
    "stdin_is_tty",
]
