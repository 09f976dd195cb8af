"""The registry client: a synchronous httpx client that speaks registry-api.md.

It owns everything about one HTTP exchange with the registry: the token (§2), signing every attempt
anew (§2), the envelope (§1), the typed errors (§7, :mod:`regsync.registry.errors`), repeats after
authentication rejections, retries with backoff, ``Retry-After`` (§1, §3), splitting batches (§3, §5.1)
and streaming exports (§5.2). Wire names and formats are the adapter's (:mod:`regsync.registry.wire`);
callers exchange Python names and regsync's types only.

Retry policy, per call (one public method call, e.g. one ``POST /batch`` body):

* ``TOKEN_EXPIRED``/``TOKEN_INVALID`` → fetch a new token and repeat, once per call;
  ``SIGNATURE_INVALID``/``NONCE_REPLAYED`` → sign again (new nonce and timestamp) and repeat, once;
  ``TIMESTAMP_SKEW`` → correct the clock offset from ``data.serverTime`` and repeat, once. These repeats
  do not count as attempts. A second rejection of the same kind is raised (:class:`AuthError`, systemic).
* Transient errors (:class:`TransientError`: JSON 5xx, gateway pages, timeouts, dropped connections,
  ``RATE_LIMITED``, ``MAINTENANCE``, ``EXPORT_IN_PROGRESS``) → up to ``settings.max_retries`` attempts in
  all. Between attempts the client waits ``Retry-After`` when the answer gives one no longer than
  ``settings.retry_after_cap_s`` (this pauses the caller: for the relay, the whole relay), else a full-jitter
  exponential backoff: uniform in ``[0, min(backoff_max_s, backoff_base_s · 2^(n−1))]`` seconds. A
  ``Retry-After`` beyond the cap is raised at once (``RateLimited``/``Maintenance``/… with
  ``retry_after``) so that the caller defers the work. The last transient error is raised when the attempts
  are spent.
* Every attempt is signed anew; a write keeps its ``Idempotency-Key`` across all of them.
* Verdicts (:class:`RequestRejected`) are never retried here.

What the registry adds over time (registry-api.md §1, "types it does not know"): change-feed entries, lookup results
and export lines of record types this client does not know are skipped, and fields it does not know are ignored;
both are counted in :attr:`ClientStats.unknown` and logged once per type (or field) per run
(:meth:`RegistryClient.note_unknown`). Never an error, never a reason to hold the feed's cursor back.
"""

from __future__ import annotations

import contextlib
import random
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog
import tenacity

from regsync.registry import errors as E
from regsync.registry import signing, wire
from regsync.registry.types import ChangePage, Kind, Operation, OperationResult, Unknowns
from regsync.settings import ConfigError, RegistrySettings

log = structlog.get_logger(__name__)

#: Operations in one ``POST /batch`` and ids in one ``POST /lookup`` (registry-api.md §3).
MAX_BATCH = 500
#: The registry's request body limit, bytes (registry-api.md §3).
MAX_BODY_BYTES = 5 * 1024 * 1024

_USER_AGENT = "regsync/0.1 (registry client)"


@dataclass(slots=True)
class ClientStats:
    """Counters of one client, for the benchmark and run summaries.

    Attributes:
        calls: public calls made (one ``batch()`` of 1 200 operations is 3 calls, one per body sent).
        calls_by_endpoint: the same by endpoint name (``batch``, ``lookup``, ``get``, ``changes``…).
        requests: HTTP requests sent, token requests and repeats included.
        retries: attempts repeated, by reason: the §7 code (``INTERNAL``, ``RATE_LIMITED``,
            ``TOKEN_EXPIRED``…), ``gateway_<status>``, ``timeout`` or ``connection``.
        tokens_fetched: access tokens obtained.
        splits: batches split in halves after a 413.
        replayed: answers the registry replayed for a repeated ``Idempotency-Key``.
        slept_s: seconds spent waiting between attempts (backoff and ``Retry-After``).
        unknown: what the answers held that this client does not know, skipped and counted (registry-api.md
            §1): ``unknown.types`` (wire type → feed entries, lookup results and export lines skipped) and
            ``unknown.fields`` (``"type.field"`` → records that carried it; the field is ignored).
    """

    calls: int = 0
    calls_by_endpoint: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    tokens_fetched: int = 0
    splits: int = 0
    replayed: int = 0
    slept_s: float = 0.0
    unknown: Unknowns = field(default_factory=Unknowns)

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain JSON-able data."""
        unknown = self.unknown.as_dict()
        return {
            "unknown_types": unknown["types"],
            "unknown_fields": unknown["fields"],
            "calls": self.calls,
            "calls_by_endpoint": dict(self.calls_by_endpoint),
            "requests": self.requests,
            "retries": dict(self.retries),
            "tokens_fetched": self.tokens_fetched,
            "splits": self.splits,
            "replayed": self.replayed,
            "slept_s": round(self.slept_s, 3),
        }


@dataclass(slots=True)
class _Call:
    """One logical request, before signing: what is repeated across attempts."""

    endpoint: str
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    idempotency_key: str | None = None
    if_match: int | None = None
    kind: Kind | None = None
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Answer:
    """A successful answer: the envelope's ``data`` and the HTTP headers."""

    status: int
    data: Any
    headers: httpx.Headers


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


class RegistryClient:
    """A synchronous client of the registry (registry-api.md), safe to share between threads.

    Args:
        settings: base URL, credentials, sign method, timeouts, TLS and retry settings.
        province: the two-digit province code this client serves, for exports' ``?province=``.
        transport: an httpx transport to use instead of the network (tests, the sandbox in-process).
        clock: the local clock, Unix seconds (``X-Timestamp``, token expiry). Never compared with the
            registry's timestamps, except to correct the offset on ``TIMESTAMP_SKEW``.
        sleep: how to wait, seconds (backoff and ``Retry-After``); blocks the calling thread.

    Raises:
        ConfigError: the base URL is not http(s), or the CA bundle cannot be read.

    Use it as a context manager, or call :meth:`close`.
    """

    #: Backoff window of the first retry and the largest window, seconds (full jitter).
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Refresh the token this many seconds before it expires, at most this fraction of its lifetime.
    token_refresh_margin_s: float = 60.0
    token_refresh_fraction: float = 0.1

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        province: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = httpx.URL(settings.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"REGSYNC_REGISTRY_URL must be an http(s) URL, got {settings.url!r}")
        self.settings = settings
        self.province = province
        self.stats = ClientStats()
        self._clock = clock
        self._sleep = sleep
        self._random = random.Random()
        self._clock_offset_s = 0.0
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = threading.Lock()
        verify: ssl.SSLContext | bool = settings.verify_tls
        if transport is None and settings.ca_bundle:
            try:
                verify = ssl.create_default_context(cafile=settings.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"REGSYNC_REGISTRY_CA_BUNDLE: cannot load {settings.ca_bundle}: {exc}"
                ) from exc
        self._http = httpx.Client(
            base_url=settings.url,
            transport=transport,
            verify=verify,
            timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def clock_offset_s(self) -> float:
        """Seconds added to the local clock for ``X-Timestamp``, learnt from ``TIMESTAMP_SKEW`` (§2)."""
        return self._clock_offset_s

    # -- writes ------------------------------------------------------------------------------------

    def batch(self, ops: Sequence[Operation]) -> list[OperationResult]:
        """Send operations with ``POST /batch`` (registry-api.md §5.1); one result per operation, in order.

        Operations are sent in bodies of at most 500 (§3) and under 5 MiB; each body has its own batch
        ``Idempotency-Key``, kept across the retries of that body. A 413 (``BATCH_TOO_LARGE``,
        ``BODY_TOO_LARGE`` or the gateway's page) splits the body in halves, recursively; an operation
        too large alone gets a result of status 413 ``BODY_TOO_LARGE``. Results are independent: a batch
        may succeed in part; :func:`regsync.registry.errors.error_for_result` classifies each.

        Args:
            ops: the operations; references in ``fields`` hold registry ids.

        Returns:
            A list of :class:`OperationResult`, ``len(ops)`` long, in the order of ``ops``.

        Raises:
            ValueError: an operation is incomplete (:func:`regsync.registry.wire.encode_operation`).
            TransientError: the registry stayed unavailable (nothing is known of that body's operations;
                resending them with their own ``idempotency_key`` is safe).
            AuthError: credentials or signing are refused (systemic).
            RequestRejected: the batch call itself was refused (e.g. ``BAD_REQUEST``).
        """
        encoded = [wire.encode_operation(op) for op in ops]
        results: list[OperationResult] = []
        for start in range(0, len(ops), MAX_BATCH):
            stop = start + MAX_BATCH
            results.extend(self._batch_part(list(ops[start:stop]), encoded[start:stop]))
        return results

    def _batch_part(self, ops: list[Operation], encoded: list[dict[str, Any]]) -> list[OperationResult]:
        body = orjson.dumps({"operations": encoded})
        try:
            if len(body) > MAX_BODY_BYTES and len(ops) > 1:
                raise E.BodyTooLarge(f"{len(body)} bytes is over the registry's limit, split before sending")
            return self._post_batch(ops, body)
        except E.TooLarge as exc:
            if len(ops) == 1:
                return [OperationResult(status=413, code=exc.code or "BODY_TOO_LARGE", message=exc.message)]
            self.stats.splits += 1
            mid = len(ops) // 2
            log.info("registry.batch.split", operations=len(ops), reason=exc.code, gateway=exc.from_gateway)
            return self._batch_part(ops[:mid], encoded[:mid]) + self._batch_part(ops[mid:], encoded[mid:])

    def _post_batch(self, ops: list[Operation], body: bytes) -> list[OperationResult]:
        answer = self._request(_Call("batch", "POST", "/batch", body=body, idempotency_key=_new_key()))
        results = answer.data.get("results") if isinstance(answer.data, dict) else None
        if not isinstance(results, list) or len(results) != len(ops):
            raise E.MalformedAnswer(
                f"the batch answer holds {len(results or [])} results for {len(ops)} operations",
                status=answer.status,
            )
        unknown = Unknowns()
        try:
            decoded = [wire.decode_result(op.kind, r, unknown=unknown) for op, r in zip(ops, results, strict=True)]
        except (ValueError, TypeError) as exc:
            raise E.MalformedAnswer(f"a batch result does not follow the contract: {exc}") from exc
        self.note_unknown(unknown, "batch")
        return decoded

    def create(
        self, kind: Kind, fields: dict[str, Any], *, client_ref: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Create a record: ``POST /{collection}`` (registry-api.md §5.1).

        Args:
            kind: ``org``, ``volunteer``, ``activity`` or ``service_record``.
            fields: writable fields, Python names and types.
            client_ref: the local id (``clientRef``, ≤ 64 chars).
            idempotency_key: keep the same across calls that retry this create; a fresh one if ``None``.

        Returns:
            The created record (decoded).

        Raises:
            Duplicate: ``DUPLICATE_*`` with ``existing_id``; other :class:`RegistryError` as §7.
        """
        if kind not in wire.CREATABLE:
            raise ValueError(f"a {kind} is not created with POST; use join()")
        body = wire.encode_body(kind, fields, client_ref=client_ref)
        return self._write(
            "create",
            "POST",
            wire.record_path(kind),
            body,
            kind,
            idempotency_key=idempotency_key or _new_key(),
        )

    def update(
        self, kind: Kind, registry_id: str, fields: dict[str, Any], *, if_match: int
    ) -> dict[str, Any]:
        """Replace a record's mutable fields: ``PUT /{collection}/{id}`` with ``If-Match`` (§5.1).

        Raises:
            VersionMismatch: stale ``if_match``, with ``current`` decoded; other errors as §7.
        """
        body = wire.encode_body(kind, fields)
        return self._write(
            "update", "PUT", wire.record_path(kind, registry_id), body, kind, if_match=if_match
        )

    def delete(self, kind: Kind, registry_id: str, *, if_match: int) -> dict[str, Any]:
        """Deregister a volunteer or dissolve an org: ``DELETE /{collection}/{id}`` (§5.1).

        Returns:
            The record, now ``DEREGISTERED`` or ``DISSOLVED``.
        """
        if kind not in ("org", "volunteer"):
            raise ValueError(f"a {kind} is not deleted (registry-api.md §5.1)")
        return self._write(
            "delete", "DELETE", wire.record_path(kind, registry_id), None, kind, if_match=if_match
        )

    def join(self, org_id: str, volunteer_id: str, joined_on: Any) -> dict[str, Any]:
        """Join a volunteer to an org: ``PUT /orgs/{orgId}/members/{volunteerId}`` (§4.3); idempotent.

        Args:
            org_id: the org's registry id.
            volunteer_id: the volunteer's registry id.
            joined_on: a :class:`datetime.date`.
        """
        body = {"joinedOn": wire.encode_date(joined_on)}
        return self._write("join", "PUT", wire.membership_path(org_id, volunteer_id), body, "membership")

    def leave(self, org_id: str, volunteer_id: str, left_on: Any = None) -> dict[str, Any]:
        """End a membership: ``DELETE /orgs/{orgId}/members/{volunteerId}`` (§4.3).

        Args:
            org_id: the org's registry id.
            volunteer_id: the volunteer's registry id.
            left_on: a :class:`datetime.date`; ``None`` lets the registry take today in +08:00.
        """
        body = None if left_on is None else {"leftOn": wire.encode_date(left_on)}
        return self._write("leave", "DELETE", wire.membership_path(org_id, volunteer_id), body, "membership")

    def revoke(self, registry_id: str, reason: str) -> dict[str, Any]:
        """Revoke a service record: ``POST /service-records/{id}:revoke`` (§4.5); idempotent."""
        return self._write(
            "revoke", "POST", wire.revoke_path(registry_id), {"reason": reason}, "service_record"
        )

    def correct(
        self,
        kind: Kind,
        registry_id: str,
        fields: dict[str, Any],
        *,
        client_ref: str,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Correct a record in one step: ``POST /{collection}/{id}:correct`` (registry-api.md §4.5, v1.1).

        In one transaction the registry revokes the ACCEPTED record ``registry_id`` (``revokeReason``
        ``"corrected"``) and accepts the new one, or changes nothing and answers the new record's refusal as a
        create would: the old record's hours stay counted until a replacement is accepted.

        Args:
            kind: ``service_record`` (:data:`regsync.registry.wire.CORRECTABLE`).
            registry_id: the record corrected (must be ACCEPTED).
            fields: the whole new record's writable fields, Python names and types (hours in hundredths,
                timestamps naive UTC, references as registry ids).
            client_ref: the new record's own ``clientRef`` (≤ 64 chars).
            idempotency_key: keep the same across calls that retry this correction (a lost answer is then
                replayed, never applied twice); a fresh one if ``None``.

        Returns:
            The new record (decoded), whose ``corrects_id`` is ``registry_id``.

        Raises:
            ValueError: ``kind`` is not corrected in one step.
            InvalidState: 409, the record corrected is not ACCEPTED (revoked, or corrected already).
            NotFound: 404, no record ``registry_id``.
            NotOwner: 403, another client's record.
            ValidationFailed: 422 field errors of the new record (``NOT_ACTIVE``, ``INVALID_HOURS``…).
            DailyHoursExceeded: 422, counted without the old record.
            Duplicate: 409 ``DUPLICATE_CLIENT_REF`` with ``existing_id``. Other :class:`RegistryError` as §7.
        """
        path = wire.correct_path(kind, registry_id)
        body = wire.encode_body(kind, fields, client_ref=client_ref)
        return self._write("correct", "POST", path, body, kind, idempotency_key=idempotency_key or _new_key())

    def _write(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        kind: Kind,
        *,
        if_match: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        call = _Call(
            endpoint,
            method,
            path,
            body=b"" if body is None else orjson.dumps(body),
            idempotency_key=idempotency_key or _new_key(),
            if_match=if_match,
            kind=kind,
        )
        answer = self._request(call)
        return self._decode_one(kind, answer)

    # -- reads -------------------------------------------------------------------------------------

    def get(self, kind: Kind, registry_id: str) -> dict[str, Any] | None:
        """One record by registry id: ``GET /{collection}/{id}`` (§5.2); ``None`` when ``NOT_FOUND``.

        Memberships have no path of their own by id: they are read with ``POST /lookup``.
        """
        if kind == "membership":
            found = self.lookup(kind, [registry_id])
            return found[0] if found else None
        try:
            answer = self._request(_Call("get", "GET", wire.record_path(kind, registry_id), kind=kind))
        except E.NotFound:
            return None
        return self._decode_one(kind, answer)

    def find_by_client_ref(self, kind: Kind, client_ref: str) -> dict[str, Any] | None:
        """The record this client created with ``client_ref``: ``GET /{collection}?clientRef=…`` (§5.2).

        Returns:
            The decoded record, or ``None`` when there is none (e.g. the create never arrived).
        """
        if kind not in wire.CREATABLE:
            raise ValueError(f"a {kind} has no clientRef")
        answer = self._request(
            _Call("find", "GET", wire.record_path(kind), params=[("clientRef", client_ref)], kind=kind)
        )
        unknown = Unknowns()
        try:
            records = [r for r in wire.list_records(answer.data) if not self._foreign(kind, r, unknown)]
            found = wire.decode_record(kind, records[0], unknown=unknown) if records else None
        except (ValueError, TypeError, AttributeError) as exc:
            raise E.MalformedAnswer(f"the clientRef answer does not follow the contract: {exc}") from exc
        self.note_unknown(unknown, "find")
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
        for start in range(0, len(unique), MAX_BATCH):
            body = orjson.dumps({"type": wire.TYPES[kind], "ids": unique[start : start + MAX_BATCH]})
            answer = self._request(_Call("lookup", "POST", "/lookup", body=body, kind=kind))
            unknown = Unknowns()
            try:
                records = answer.data["records"]
                out.extend(wire.decode_record(kind, r, unknown=unknown) for r in records
                           if not self._foreign(kind, r, unknown))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise E.MalformedAnswer(f"the lookup answer does not follow the contract: {exc}") from exc
            self.note_unknown(unknown, "lookup")
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
        answer = self._request(_Call("changes", "GET", "/changes", params=params))
        try:
            page = wire.decode_change_page(answer.data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise E.MalformedAnswer(f"the change page does not follow the contract: {exc}") from exc
        self.note_unknown(page.unknown, "changes")
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
        call = _Call(
            "export",
            "GET",
            wire.export_path(kind),
            params=[("province", self.province)],
            kind=kind,
            stream=True,
            headers={"Accept": "application/x-ndjson", "Accept-Encoding": "gzip"},
        )
        self.stats.calls += 1
        self.stats.calls_by_endpoint[call.endpoint] += 1
        response = self._with_retries(call, lambda repeats: self._attempt(call, repeats))
        ex = Export(kind, response)
        try:
            yield ex
        finally:
            response.close()
            self.note_unknown(ex.unknown, call.endpoint)

    # -- the exchange ------------------------------------------------------------------------------

    def _decode_one(self, kind: Kind, answer: _Answer) -> dict[str, Any]:
        unknown = Unknowns()
        try:
            record = wire.decode_record(kind, answer.data, unknown=unknown)
        except (ValueError, TypeError, AttributeError) as exc:
            raise E.MalformedAnswer(f"the record does not follow the contract: {exc}") from exc
        self.note_unknown(unknown, "record")
        return record

    @staticmethod
    def _foreign(kind: Kind, record: Any, unknown: Unknowns) -> bool:
        """Whether ``record`` (a list or lookup result) names another type than ``kind``: counted, then skipped."""
        named = wire.foreign_type(kind, record) if isinstance(record, dict) else None
        if named is None:
            return False
        unknown.types[named] += 1
        return True

    def note_unknown(self, unknown: Unknowns, endpoint: str) -> None:
        """Count what an answer held that this client does not know in :attr:`stats` (registry-api.md §1), and
        log each type and each field the first time the current :attr:`stats` meet it: one line per type (or
        field) per run, since every run starts with new stats (the flows' run summaries carry the counts).

        Args:
            unknown: the counts of one answer (or one export).
            endpoint: the endpoint name, for the log (``changes``, ``lookup``, ``export``, ``batch``…).
        """
        if not unknown:
            return
        seen = self.stats.unknown
        for name, n in sorted(unknown.types.items()):
            if not seen.types[name]:
                log.info("registry.unknown_type", type=name, endpoint=endpoint, items=n,
                         note="records of a type this client does not know: skipped and counted in the run's "
                              "summary (registry-api.md §1); logged once per run")
        for name, n in sorted(unknown.fields.items()):
            if not seen.fields[name]:
                log.info("registry.unknown_field", field=name, endpoint=endpoint, records=n,
                         note="a field this client does not know: ignored and counted in the run's summary "
                              "(registry-api.md §1); logged once per run")
        seen.add(unknown)

    def _request(self, call: _Call) -> _Answer:
        self.stats.calls += 1
        self.stats.calls_by_endpoint[call.endpoint] += 1
        response = self._with_retries(call, lambda repeats: self._attempt(call, repeats))
        body = _json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if response.headers.get("Idempotent-Replayed", "").lower() == "true":
            self.stats.replayed += 1
        return _Answer(response.status_code, data, response.headers)

    def _with_retries(self, call: _Call, attempt: Callable[[set[str]], httpx.Response]) -> httpx.Response:
        repeats: set[str] = set()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.settings.max_retries)),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            sleep=self._pause,
            before_sleep=lambda state: self._note_retry(call, state),
            reraise=True,
        )
        return retrying(attempt, repeats)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether a failed attempt is tried again inside the call (the retriable/fatal decision).

        Transient errors are, unless their ``Retry-After`` is beyond ``settings.retry_after_cap_s`` (then
        the caller defers the work). Override to change the policy.
        """
        if not isinstance(exc, E.RegistryError) or not exc.retriable:
            return False
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= self.settings.retry_after_cap_s

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        window = min(self.backoff_max_s, self.backoff_base_s * 2 ** (state.attempt_number - 1))
        return self._random.uniform(0.0, window)

    def _pause(self, seconds: float) -> None:
        self.stats.slept_s += seconds
        self._sleep(seconds)

    def _note_retry(self, call: _Call, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = _reason(exc)
        self.stats.retries[reason] += 1
        wait = state.next_action.sleep if state.next_action else None
        # being paced (429 RATE_LIMITED) or a first retry is ordinary: info; a fault that persists: warning
        emit = log.info if reason == "RATE_LIMITED" or state.attempt_number < 2 else log.warning
        emit(
            "registry.retry",
            endpoint=call.endpoint,
            method=call.method,
            reason=reason,
            attempt=state.attempt_number,
            wait_s=round(wait or 0.0, 3),
            status=getattr(exc, "status", None),
            request_id=getattr(exc, "request_id", None),
        )

    def _attempt(self, call: _Call, repeats: set[str]) -> httpx.Response:
        """One attempt, with the repeats after authentication rejections (§2), each once per call."""
        while True:
            token = self._access_token()
            request = self._build(call, token)
            response = self._send(request, stream=call.stream, endpoint=call.endpoint)
            error = self._check(response, call)
            if error is None:
                return response
            reason = self._repeat(error, repeats)
            if reason is None:
                raise error
            self.stats.retries[reason] += 1
            log.info("registry.repeat", endpoint=call.endpoint, reason=reason, request_id=error.request_id)

    def _repeat(self, error: E.RegistryError, repeats: set[str]) -> str | None:
        """Fix what an authentication rejection asks for and return its reason, or ``None`` to raise it."""
        if isinstance(error, (E.TokenExpired, E.TokenInvalid)):
            key = "token"
        elif isinstance(error, (E.SignatureInvalid, E.NonceReplayed)):
            key = "sign"
        elif isinstance(error, E.TimestampSkew) and error.server_time is not None:
            key = "skew"
        else:
            return None
        if key in repeats:
            return None
        repeats.add(key)
        if key == "token":
            with self._token_lock:
                self._token = None
        elif key == "skew" and isinstance(error, E.TimestampSkew) and error.server_time is not None:
            # The one place a registry timestamp meets the local clock (registry-api.md §2).
            self._clock_offset_s = error.server_time.timestamp() - self._clock()
            log.warning("registry.clock_offset", offset_s=round(self._clock_offset_s, 3))
        return error.code or key

    def _check(self, response: httpx.Response, call: _Call) -> E.RegistryError | None:
        if call.stream:
            media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if response.is_success and media != "application/json" and "html" not in media:
                return None  # the stream itself (NDJSON); an envelope or a page is read and classified
            try:
                response.read()
            except httpx.HTTPError as exc:
                response.close()
                return _transport_error(exc)
            finally:
                response.close()
        return self.classify_response(response, kind=call.kind)

    def classify_response(
        self, response: httpx.Response, *, kind: Kind | None = None
    ) -> E.RegistryError | None:
        """Classify an answer of the registry (or of its gateway): ``None`` for success, else its error.

        The one place that decides what an answer means (registry-api.md §1, §7); override it for a
        registry that differs. Success is a 2xx whose body is the envelope with ``code`` ``OK`` (or an
        empty body). Anything not the envelope is the gateway's (413 → split, else transient).

        Args:
            response: the answer, its body read.
            kind: the record kind the call concerns, to decode ``data.current`` and field names.
        """
        body = _json(response)
        if response.is_success and (
            not response.content or (wire.is_envelope(body) and body["code"] == "OK")
        ):
            return None
        retry_after = wire.parse_retry_after(
            response.headers.get("Retry-After"), response.headers.get("Date")
        )
        error = wire.error_from_answer(response.status_code, body, retry_after=retry_after, kind=kind)
        log.debug(
            "registry.answer.error",
            status=response.status_code,
            code=error.code,
            request_id=error.request_id,
            gateway=error.from_gateway,
        )
        return error

    def _build(self, call: _Call, token: str) -> httpx.Request:
        headers = {"Authorization": f"Bearer {token}", **call.headers}
        if call.body:
            headers["Content-Type"] = "application/json"
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.if_match is not None:
            headers["If-Match"] = f'"{int(call.if_match)}"'
        request = self._http.build_request(
            call.method,
            call.path,
            params=tuple(call.params) or None,
            content=call.body or None,
            headers=headers,
        )
        self.sign(request, call.body)
        return request

    def sign(self, request: httpx.Request, body: bytes) -> None:
        """Add the signing headers of registry-api.md §2 to ``request``, with a fresh nonce and timestamp.

        ``X-Timestamp`` is the local clock plus the learnt offset, in Unix milliseconds.
        """
        timestamp = str(int((self._clock() + self._clock_offset_s) * 1000))
        nonce = signing.new_nonce()
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        query = signing.canonical_query(request.url.params.multi_items())
        method = self.settings.sign_method
        message = signing.string_to_sign(request.method, path, query, timestamp, nonce, body)
        request.headers["X-Client-Id"] = self.settings.client_id
        request.headers["X-Timestamp"] = timestamp
        request.headers["X-Nonce"] = nonce
        request.headers["X-Sign-Method"] = method
        request.headers["X-Signature"] = signing.sign(self.settings.client_secret, message, method)

    def _send(self, request: httpx.Request, *, stream: bool, endpoint: str) -> httpx.Response:
        self.stats.requests += 1
        started = time.perf_counter()
        try:
            response = self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            log.warning(
                "registry.transport_error",
                endpoint=endpoint,
                method=request.method,
                path=request.url.path,
                error=type(exc).__name__,
            )
            raise _transport_error(exc) from exc
        log.debug(
            "registry.request",
            endpoint=endpoint,
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    # -- token ---------------------------------------------------------------------------------------

    def _access_token(self) -> str:
        """The current token, fetched when absent or about to expire (§2)."""
        with self._token_lock:
            if self._token is None or self._clock() >= self._token_expires_at:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> None:
        """``POST /oauth/token`` with client credentials (RFC 6749 §4.4); no envelope, not signed."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
        }
        request = self._http.build_request(
            "POST", "/oauth/token", data=form, headers={"Accept": "application/json"}
        )
        response = self._send(request, stream=False, endpoint="token")
        body = _json(response)
        if not response.is_success:
            raise wire.oauth_error(response.status_code, body)
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in", 600) if isinstance(body, dict) else 600
        if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
            raise E.MalformedAnswer("the token answer holds no access_token", status=response.status_code)
        margin = min(self.token_refresh_margin_s, self.token_refresh_fraction * float(expires_in))
        self._token = token
        self._token_expires_at = self._clock() + float(expires_in) - margin
        self.stats.tokens_fetched += 1
        log.info("registry.token", expires_in_s=expires_in)


def _new_key() -> str:
    """A fresh ``Idempotency-Key`` (32 hex chars, ≤ 64 as §5.1 asks)."""
    return uuid.uuid4().hex


def _json(response: httpx.Response) -> Any:
    """The parsed JSON body, or ``None`` when it is empty or not JSON (a gateway's page); parsed once."""
    if "regsync.json" in response.extensions:
        return response.extensions["regsync.json"]
    content = response.content
    body: Any = None
    if content:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
    response.extensions["regsync.json"] = body
    return body


def _transport_error(exc: httpx.HTTPError) -> E.RegistryError:
    if isinstance(exc, httpx.TimeoutException):
        return E.RegistryTimeout(f"no answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.DecodingError):
        return E.MalformedAnswer(f"the answer could not be decoded ({exc})")
    return E.RegistryConnectionError(f"the connection failed ({type(exc).__name__})")


def _reason(exc: BaseException | None) -> str:
    """The retry reason of ``exc`` for :attr:`ClientStats.retries`."""
    if isinstance(exc, E.RegistryTimeout):
        return "timeout"
    if isinstance(exc, E.RegistryConnectionError):
        return "connection"
    if isinstance(exc, E.RegistryError) and exc.from_gateway:
        return f"gateway_{exc.status}"
    if isinstance(exc, E.RegistryError):
        return exc.code or type(exc).__name__
    return type(exc).__name__ if exc else "unknown"
