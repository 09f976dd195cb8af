"""The registry client's reads (registry-api.md §5.2, §5.3): a record by id or by ``clientRef``, lookups, the
change feed and exports, decoded into Python names and regsync's types."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from regsync.registry import errors as E
from regsync.registry import wire
from regsync.registry.exchange import Answer, Call, Exchange
from regsync.registry.export import Export
from regsync.registry.stats import ClientStats
from regsync.registry.types import ChangePage, Kind, Unknowns

#: Ids in one ``POST /lookup`` (registry-api.md §3).
MAX_LOOKUP = 500


class RecordReads:
    """The reads of :class:`~regsync.registry.client.RegistryClient` (a part of it: it gives the attributes below).

    Attributes:
        stats: the client's counters.
        province: the two-digit province of exports' ``?province=``.
    """

    stats: ClientStats
    province: str | None
    _exchange: Exchange

    def get(self, kind: Kind, registry_id: str) -> dict[str, Any] | None:
        """One record by registry id: ``GET /{collection}/{id}`` (§5.2); ``None`` when ``NOT_FOUND``.

        Memberships have no path of their own by id: they are read with ``POST /lookup``.
        """
        if kind == "membership":
            found = self.lookup(kind, [registry_id])
            return found[0] if found else None
        try:
            answer = self._exchange.request(Call("get", "GET", wire.record_path(kind, registry_id), kind=kind))
        except E.NotFound:
            return None
        return decode_answer(kind, answer, self.stats)

    def find_by_client_ref(self, kind: Kind, client_ref: str) -> dict[str, Any] | None:
        """The record this client created with ``client_ref``: ``GET /{collection}?clientRef=…`` (§5.2).

        Returns:
            The decoded record, or ``None`` when there is none (e.g. the create never arrived).
        """
        if kind not in wire.CREATABLE:
            raise ValueError(f"a {kind} has no clientRef")
        answer = self._exchange.request(
            Call("find", "GET", wire.record_path(kind), params=[("clientRef", client_ref)], kind=kind)
        )
        unknown = Unknowns()
        try:
            records = [r for r in wire.list_records(answer.data) if not _foreign(kind, r, unknown)]
            found = wire.decode_record(kind, records[0], unknown=unknown) if records else None
        except (ValueError, TypeError, AttributeError) as exc:
            raise E.MalformedAnswer(f"the clientRef answer does not follow the contract: {exc}") from exc
        self.stats.note_unknown(unknown, "find")
        return found

    def lookup(self, kind: Kind, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Records by registry id: ``POST /lookup`` in chunks of 500 (§5.2, §3).

        Returns:
            The decoded records that exist, in any order (ids that do not exist are left out). A result of
            another ``type`` than ``kind``'s (a type this client does not know) is skipped, and fields this
            client does not know are ignored; both are counted in :attr:`ClientStats.unknown`
            (registry-api.md §1).
        """
        unique = list(dict.fromkeys(ids))
        out: list[dict[str, Any]] = []
        for start in range(0, len(unique), MAX_LOOKUP):
            body = orjson.dumps({"type": wire.TYPES[kind], "ids": unique[start : start + MAX_LOOKUP]})
            answer = self._exchange.request(Call("lookup", "POST", "/lookup", body=body, kind=kind))
            unknown = Unknowns()
            try:
                records = answer.data["records"]
                out.extend(wire.decode_record(kind, r, unknown=unknown) for r in records
                           if not _foreign(kind, r, unknown))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise E.MalformedAnswer(f"the lookup answer does not follow the contract: {exc}") from exc
            self.stats.note_unknown(unknown, "lookup")
        return out

    def changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        """A page of the change feed: ``GET /changes?cursor=…&limit=…`` (§5.3).

        Args:
            cursor: the saved cursor; ``None`` gives an empty page whose ``next_cursor`` is the head.
            limit: 1 to 1000.

        Returns:
            The page: the changes of the kinds this client knows, ``next_cursor`` past every entry of the page,
            and in ``unknown`` the entries of other types it skipped (registry-api.md §1; also counted in
            :attr:`ClientStats.unknown`).

        Raises:
            CursorExpired: the cursor is older than the feed's retention (410): reconcile in full.
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000 (registry-api.md §3)")
        params = [("limit", str(limit))] if cursor is None else [("cursor", cursor), ("limit", str(limit))]
        answer = self._exchange.request(Call("changes", "GET", "/changes", params=params))
        try:
            page = wire.decode_change_page(answer.data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise E.MalformedAnswer(f"the change page does not follow the contract: {exc}") from exc
        self.stats.note_unknown(page.unknown, "changes")
        return page

    @contextlib.contextmanager
    def export(self, kind: Kind) -> Iterator[Export]:
        """Stream the export of a collection: ``GET /exports/{collection}?province=…`` (§5.2).

        Use as ``with client.export("volunteer") as ex: cursor = ex.snapshot_cursor; for rec in ex: …``.
        Opening is retried like any call (``EXPORT_IN_PROGRESS`` included); the stream itself is not.

        Raises:
            ValueError: the client was built without ``province``.
        """
        if not self.province:
            raise ValueError("RegistryClient(province=…) is needed for exports")
        call = Call(
            "export",
            "GET",
            wire.export_path(kind),
            params=[("province", self.province)],
            kind=kind,
            stream=True,
            headers={"Accept": "application/x-ndjson", "Accept-Encoding": "gzip"},
        )
        response = self._exchange.open(call)
        ex = Export(kind, response)
        try:
            yield ex
        finally:
            response.close()
            self.stats.note_unknown(ex.unknown, call.endpoint)


def decode_answer(kind: Kind, answer: Answer, stats: ClientStats) -> dict[str, Any]:
    """The record an answer's ``data`` holds, decoded (Python names and types); unknown fields noted in ``stats``.

    Raises:
        MalformedAnswer: ``data`` is not a record of the contract.
    """
    unknown = Unknowns()
    try:
        record = wire.decode_record(kind, answer.data, unknown=unknown)
    except (ValueError, TypeError, AttributeError) as exc:
        raise E.MalformedAnswer(f"the record does not follow the contract: {exc}") from exc
    stats.note_unknown(unknown, "record")
    return record


def _foreign(kind: Kind, record: Any, unknown: Unknowns) -> bool:
    """Whether ``record`` (a list or lookup result) names another type than ``kind``: counted, then skipped."""
    named = wire.foreign_type(kind, record) if isinstance(record, dict) else None
    if named is None:
        return False
    unknown.types[named] += 1
    return True
