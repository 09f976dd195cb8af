"""What the flows use of the registry client: :class:`RegistryPort`, a :class:`typing.Protocol`.

:class:`~regsync.registry.client.RegistryClient` satisfies it (mypy checks it there, and so does
``tests/registry/test_port.py``); a fake registry for the flows' tests needs only these members.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from regsync.registry.export import Export
from regsync.registry.stats import ClientStats
from regsync.registry.types import ChangePage, Kind, Operation, OperationResult
from regsync.settings import RegistrySettings


class RegistryPort(Protocol):
    """The registry as the flows (outbound, inbound, reconcile, adopt, resync, conflicts) and the daemon use it.

    Records are dicts of Python names and regsync's types (:mod:`regsync.registry.types`); errors are those of
    :mod:`regsync.registry.errors`.

    Attributes:
        stats: the counters of the calls made (a run's summary reads them; a run may put new ones in place).
    """

    stats: ClientStats

    @property
    def settings(self) -> RegistrySettings:
        """The client's settings (the inbound flow reads ``client_id``, which owns the records it sent)."""
        ...

    @property
    def clock_offset_s(self) -> float:
        """Seconds the registry's clock is ahead of the local one, learnt from ``TIMESTAMP_SKEW`` (0 until then)."""
        ...

    def batch(self, ops: Sequence[Operation]) -> list[OperationResult]:
        """Send operations with ``POST /batch``: one :class:`OperationResult` per operation, in order.

        Raises:
            ValueError: an operation is incomplete.
            TransientError: the registry stayed unavailable (resending with the same keys is safe).
            AuthError: credentials or signing are refused (systemic).
            RequestRejected: the batch call itself was refused.
        """
        ...

    def lookup(self, kind: Kind, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The records of ``kind`` with these registry ids that exist, in any order (``POST /lookup``)."""
        ...

    def find_by_client_ref(self, kind: Kind, client_ref: str) -> dict[str, Any] | None:
        """The record this client created under ``client_ref``, or ``None`` (``GET /{collection}?clientRef=``).

        Raises:
            ValueError: ``kind`` has no ``clientRef`` (memberships).
        """
        ...

    def changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        """A page of the change feed after ``cursor`` (``None``: an empty page whose cursor is the head).

        Raises:
            CursorExpired: the cursor is older than the feed's retention: reconcile in full.
        """
        ...

    def export(self, kind: Kind) -> contextlib.AbstractContextManager[Export]:
        """The export of ``kind`` for the client's province: ``with port.export(kind) as ex: for rec in ex: …``.

        Raises:
            ValueError: the client serves no province.
        """
        ...

