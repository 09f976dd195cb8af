"""Reading an export of the registry (registry-api.md §5.2): the NDJSON stream of an open ``GET /exports/…``.

:meth:`regsync.registry.client.RegistryClient.export` opens the stream (retried like any call); :class:`Export`
reads it, once, line by line, in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import structlog

from regsync.registry import errors as E
from regsync.registry import wire
from regsync.registry.types import Kind, Unknowns

log = structlog.get_logger(__name__)


class Export:
    """An open export (registry-api.md §5.2): iterate it once for the decoded records, in ascending id.

    Attributes:
        kind: the record kind.
        snapshot_cursor: ``X-Snapshot-Cursor``, the change-feed cursor at the snapshot (``None`` if absent).
        records_read: records yielded so far.

    Iteration streams the (gzip-decoded) NDJSON line by line, in flat memory. It raises
    :class:`RegistryTimeout`/:class:`RegistryConnectionError` when the stream breaks and
    :class:`MalformedAnswer` on a line that is not a JSON record; an export cannot resume, so the caller
    starts over. A line of another ``type`` than the export's (a type this client does not know) is skipped
    and counted in ``unknown.types``; fields this client does not know are ignored and counted in
    ``unknown.fields`` (registry-api.md §1).
    """

    def __init__(self, kind: Kind, response: httpx.Response) -> None:
        self.kind = kind
        self.snapshot_cursor: str | None = response.headers.get("X-Snapshot-Cursor")
        self.records_read = 0
        #: lines skipped and fields ignored so far (registry-api.md §1)
        self.unknown = Unknowns()
        #: wire names not decoded (set before iterating; e.g. ``{"createdAt", "updatedAt"}`` for a comparison)
        self.skip: frozenset[str] = frozenset()
        #: yield :class:`~regsync.registry.wire.LazyRecord` (fields decoded on first access) instead of dicts
        self.lazy = False
        self._response = response
        self._started = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._started:
            raise RuntimeError("an export can be read once")
        self._started = True
        return self._records()

    def _decode(self, line: bytes) -> Any:
        """The record of one line, or ``None`` for a line of another type (skipped and counted)."""
        try:
            item = orjson.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not an object")
            foreign = wire.foreign_type(self.kind, item)
            if foreign is not None:
                self.unknown.types[foreign] += 1
                return None
            if not isinstance(item.get("id"), str):
                raise ValueError("not an object with an id")
            if self.lazy:
                wire.count_unknown_fields(self.kind, item, self.unknown)
                record: Any = wire.LazyRecord(self.kind, item)
            else:
                record = wire.decode_record(self.kind, item, skip=self.skip, unknown=self.unknown)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise E.MalformedAnswer(
                f"export line {self.records_read + 1} is not a record: {exc}",
                status=self._response.status_code,
            ) from exc
        self.records_read += 1
        return record

    def _records(self) -> Iterator[dict[str, Any]]:
        pending = bytearray()
        chunks = self._response.iter_bytes()
        while True:
            try:
                chunk = next(chunks, None)
            except httpx.TimeoutException as exc:
                raise E.RegistryTimeout("the export stream stalled") from exc
            except httpx.DecodingError as exc:
                raise E.MalformedAnswer("the export stream is not valid gzip") from exc
            except httpx.TransportError as exc:
                raise E.RegistryConnectionError("the export stream broke") from exc
            if chunk is None:
                break
            start = 0
            while (nl := chunk.find(b"\n", start)) != -1:
                if pending:
                    pending += chunk[start:nl]
                    line = bytes(pending)
                    pending.clear()
                else:
                    line = chunk[start:nl]
                start = nl + 1
                if line.strip() and (record := self._decode(line)) is not None:
                    yield record
            pending += chunk[start:]
        if bytes(pending).strip() and (record := self._decode(bytes(pending))) is not None:
            yield record
        log.info("registry.export.done", kind=self.kind, records=self.records_read,
                 **({"skipped": sum(self.unknown.types.values())} if self.unknown.types else {}))
