"""``regsync demo``: the main job on the embedded defaults, end to end.

1. start afresh in the work dir: a SQLite file (``local.db``) and the sandbox registry on a free loopback port
   (its own SQLite file, ``sandbox.db``);
2. migrate and generate a province-shaped data set (fixed default seed and scale), the four kinds of
   registry-api.md v1.1 included (trainings, training records, commendations, evaluations);
3. push everything through the outbox until nothing waits;
4. read the registry's export of each collection back and compare it with the local records, by their links.

Both databases are kept for inspection.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from regsync.console.progress import progress_bars
from regsync.db.agreement import (
    links_by_registry_id,
    local_counts,
    rows_with_holds_and_refs,
    single_row_people,
    transferred_commendations,
    transferred_volunteers,
)
from regsync.db.runs import outbox_failures, outbox_failures_by_kind
from regsync.db.session import make_engine
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.projection import FIELDS, canonical, project_local, project_registry
from regsync.flows.inbound import Poller
from regsync.flows.reconcile import run_reconcile
from regsync.flows.sync import run_sync
from regsync.generate.load import run_generate
from regsync.registry.client import RegistryClient
from regsync.reports.export import export_to_path
from regsync.reports.worklist import open_worklist
from regsync.reports.worklist_render import write_worklist
from regsync.sandbox.admin_client import trigger_activity
from regsync.sandbox.faults import parse_fault_spec
from regsync.sandbox.server import SandboxServer
from regsync.sandbox.store import ClientCredential
from regsync.settings import (
    KEY_FILE_SUFFIX,
    ConfigError,
    DatabaseSettings,
    LogSettings,
    RegistrySettings,
    Settings,
    ensure_key_file,
)


def _agreement(engine: Engine, kind: str, pairs: list[tuple[int, dict[str, Any], str]], hash_key: str
               ) -> tuple[int, int, int]:
    """Of ``pairs`` (local id, registry record, the link's base as JSON text): ``(agree, local_agree, identical)``,
    how many links have a base equal to the registry's record, how many local rows have synced fields equal to it,
    canonically, and how many of the pairs do both. All leave out the fields open conflicts hold: such a field
    differs on purpose (held for an operator, or a ``read_only`` field of a mapped platform the registry changed),
    and its base keeps the value last agreed (:attr:`regsync.domain.merge.MergeResult.new_base`)."""
    rows, held, refs = rows_with_holds_and_refs(engine, kind, [lid for lid, _, _ in pairs])
    agree = same = both = 0
    for lid, record, base in pairs:
        skip = held.get(lid, set())
        remote = canonical(project_registry(kind, record), hash_key)
        base_agrees = _equal(json.loads(base), remote, skip)
        agree += base_agrees
        row = rows.get(lid)
        if row is None:
            continue
        try:
            local = canonical(project_local(kind, row, refs), hash_key)
        except (ValueError, TypeError):
            continue
        if _equal(local, remote, skip, FIELDS[kind]):
            same += 1
            both += base_agrees
    return agree, same, both


def _equal(one: dict[str, Any], other: dict[str, Any], skip: set[str], names: Sequence[str] | None = None) -> bool:
    """Whether ``one`` and ``other`` hold the same values under ``names`` (default: both dicts' keys), ``skip``
    left out."""
    keys = set(one) | set(other) if names is None else set(names)
    return all(one.get(k) == other.get(k) for k in keys - skip)


def compare_with_registry(engine: Engine, client: Any, kind: str, hash_key: str) -> dict[str, int]:
    """Merge-join the registry's export of ``kind`` with the local links, in flat memory (local rows are read
    in batches of 1 000).

    Returns:
        ``found``: local rows whose registry record is in the export; ``duplicates``: of those, the second
        local rows of a person (and what hangs on them), linked to the first row's record and never synced on
        their own; ``agree``: of the others, the ones whose registry record equals the link's base snapshot (the
        state both sides last agreed on); ``local_agree``: of the others, the ones whose local
        row equals the registry's record in every synced field; both leave out the fields open conflicts hold;
        ``identical``: of the others, the ones that do both (in step on both sides); ``registry_total``: records
        in the export; ``unlinked``: of those, records no local row links (a person's two local rows link one
        record, so ``found`` can exceed the records it names).
    """
    found = agree = total = matched = local_agree = identical = duplicates = 0
    links = links_by_registry_id(engine, kind)
    current = next(links, None)
    pairs: list[tuple[int, dict[str, Any], str]] = []

    def batch() -> None:
        nonlocal agree, local_agree, identical
        more, same, both = _agreement(engine, kind, pairs, hash_key)
        agree += more
        local_agree += same
        identical += both
        pairs.clear()

    with client.export(kind) as export:
        for record in export:
            total += 1
            rid = record["id"]
            while current is not None and current[0].encode() < rid.encode():
                current = next(links, None)
            if current is None:
                continue
            if current[0] == rid:
                matched += 1
            while current is not None and current[0] == rid:
                found += 1
                if current[3]:
                    duplicates += 1
                else:
                    pairs.append((current[2], record, current[1]))
                current = next(links, None)
            if len(pairs) >= 1000:
                batch()
    if pairs:
        batch()
    return {"found": found, "agree": agree, "duplicates": duplicates, "local_agree": local_agree,
            "identical": identical, "registry_total": total,
            "unlinked": total - matched}


#: The inbound keys of a sync summary the demo adds up over its passes (issue 4).
INBOUND_KEYS = ("pulled", "merged", "adopted", "created_locally", "registry_owned", "conflicts", "ended_locally",
                "merged_on_push")
#: The change feed's counters of a sync summary (its ``inbound``) the demo adds up over its passes (issue 15).
FEED_KEYS = ("pages", "changes", "echoes", "repeats", "stale")


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        if v:
            total[k] = total.get(k, 0) + v


def _total(runs: list[dict[str, Any]], key: str) -> dict[str, int]:
    """``key`` (kind → count) summed over the sync runs."""
    out: dict[str, int] = {}
    for r in runs:
        _add(out, r.get(key) or {})
    return out


def _feed(runs: list[dict[str, Any]]) -> dict[str, int]:
    """The change feed's counters (:data:`FEED_KEYS`) summed over the sync runs' ``inbound``."""
    return {k: sum(int((r.get("inbound") or {}).get(k, 0)) for r in runs) for k in FEED_KEYS}


def _worst(statuses: Any) -> str:
    order = ("success", "partial", "failed")
    return max(statuses, key=order.index, default="success")


def transferred_counts(engine: Engine, province: str) -> dict[str, int]:
    """Local records of people who moved to another province (registry-api.md §4.2 transfers; they leave the
    province's export): their volunteer rows, by their links' record of the transfer out on any platform
    (:func:`regsync.db.agreement.transferred_volunteers`), and their commendations, which move with them (§1
    "scope", v1.1: :func:`regsync.db.agreement.transferred_commendations`)."""
    counts = {"volunteers": transferred_volunteers(engine, province),
              "commendations": transferred_commendations(engine, province)}
    return {k: n for k, n in counts.items() if n}


def _local_people(engine: Engine, n: int, seed: int) -> list[dict[str, Any]]:
    """Up to ``n`` of the platform's people with a clean ID number (one local row each), for portal
    self-registrations of people the platform has: ``[{"idType", "idNumber", "name"}, …]``."""
    rows = single_row_people(engine, n * 5)
    picked = random.Random(seed).sample(list(rows), min(n, len(rows)))
    return [{"idType": t, "idNumber": num, "name": name} for t, num, name in picked]


#: The file that marks a directory as the demo's own (so it is safe to empty it).
MARKER = ".regsync-demo"


#: The platforms the demo runs on: regsync's reference tables, or the legacy platform's own tables through its
#: mapping (issue 14: ``src/regsync/generate/legacy_schema.py``, ``config/mappings/legacy.toml``).
PLATFORMS = ("reference", "legacy")


def run_demo(*, workdir: Path, scale: float = 0.003, seed: int = 42, sign_method: str = "HMAC-SHA256",
             progress: bool = False, faults: str | None = None, portal_activity: int = 0,
             platform: str = "reference") -> dict[str, Any]:
    """Run the demo; returns its summary.

    With ``platform`` ``legacy`` the local records are the legacy platform's own tables in the same SQLite file
    (pinyin names, codes, text dates, soft deletes), made, checked and installed before the data set is generated
    through the mapping (:func:`regsync.generate.load.prepare_platform`); every number is read through the views the
    install makes under the reference tables' names, so it adds up the same way. The generator's test rows and
    soft-deleted rows are outside what syncs, and shown apart (``generated.out_of_scope``, ``soft_deleted``).

    With ``portal_activity`` N > 0 the registry changes too (registry-api.md §8, portal-side activity):

    1. before the first push, some of the platform's people register themselves on the portal (N/10, at least
       1, at most 500), and a pull brings them home: they are linked to the platform's rows (``adopted``),
       never duplicated;
    2. everything is pushed;
    3. N random portal actions follow (self-registrations, phone and skills edits, identity corrections,
       transfers out, deregistrations, org dissolutions, service records entered on the portal), and sync
       passes run until neither side has anything left.

    Returns:
        ``local``, ``registry``, ``pushed``, ``linked``, ``failed`` (each: kind → count, kinds named ``orgs``,
        ``volunteers``, ``memberships``, ``activities``, ``service_records`` and, registry-api.md v1.1,
        ``trainings``, ``training_records``, ``commendations``, ``evaluations``:
        :data:`~regsync.domain.kinds.KIND_NAMES`), ``failed_by_code`` (code →
        count), ``failed_codes`` (kind → code → count, kinds without failures left out), ``agree`` (kind →
        records equal to their base, fields held by open conflicts left out), ``registry_total`` (kind → records in the
        registry's export: more than ``registry`` only if the registry holds records no local row links),
        ``local_agree`` (kind → local rows equal to their registry record in every synced field, fields held by
        open conflicts left out), ``identical`` (kind → records that are both: in step on both sides),
        ``duplicates`` (kind → second local rows of a person and what hangs on them:
        linked to the first row's record, not compared), ``in_agreement`` (every found record agrees with its
        link's base, and every other local row with its registry record),
        ``transferred_out`` (kind → local records of people who moved to another province: no longer the
        province's in the registry's export), ``adds_up`` (``local = registry + failed + transferred_out`` for
        every kind), ``generated`` (the generator's summary),
        ``faults`` (set, injected, the client's retries), ``platform`` (the platform's mapping: ``reference`` or
        ``legacy``), ``status``, ``workdir`` and ``seconds``; with portal
        activity also ``portal`` (the actions applied), ``pulled``, ``merged``, ``adopted``,
        ``created_locally``, ``registry_owned``, ``conflicts`` (kind → count, over every sync pass), ``feed``
        (the change feed's ``pages``, ``changes``, ``echoes`` of regsync's own writes, ``repeats`` and ``stale``
        items, over every sync pass) and ``syncs`` (the sync runs' ids).

    Raises:
        ConfigError: the work dir is not the demo's own (not empty, no marker) or cannot be written; an unknown
            platform.
    """
    if platform not in PLATFORMS:
        raise ConfigError(f"--platform is one of {', '.join(PLATFORMS)}, not {platform!r}")
    started = time.monotonic()
    workdir = workdir.resolve()
    marker = workdir / MARKER
    if workdir.exists() and (not workdir.is_dir() or (any(workdir.iterdir()) and not marker.exists())):
        raise ConfigError(f"{workdir} is not a demo work dir (it is not empty and has no {MARKER}); "
                          "name a new or empty directory with --workdir")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        marker.write_text("regsync demo work dir: `regsync demo` empties it of its databases on every run\n")
    except OSError as exc:
        raise ConfigError(f"cannot use {workdir} as the demo's work dir: {exc.strerror}") from exc
    for name in ("local.db", "sandbox.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)

    client_id = "demo-" + secrets.token_hex(4)
    client_secret = secrets.token_urlsafe(24)
    credential = ClientCredential(client_id, client_secret, "23")
    with SandboxServer(db_url=f"sqlite:///{workdir / 'sandbox.db'}", clients=[credential],
                       subprocess=True, faults=parse_fault_spec(faults) or None) as sandbox, \
            progress_bars(progress) as advance:
        settings = Settings(
            province="23",
            # a key of the demo's own, made once and kept in the work dir (design.md, "Personal data")
            hash_key=ensure_key_file(workdir / f"local.db{KEY_FILE_SUFFIX}"),
            database=DatabaseSettings(url=f"sqlite:///{workdir / 'local.db'}", mapping=platform),
            registry=RegistrySettings(url=sandbox.base_url, client_id=client_id, client_secret=client_secret,
                                      sign_method=sign_method),
            log=LogSettings(level="WARNING"),
        )
        engine = make_engine(settings.database.url, table_prefix=settings.database.own_prefix)
        generated = run_generate(settings, scale=scale, seed=seed, progress=advance, engine=engine)
        runs: list[dict[str, Any]] = []
        portal: dict[str, int] = {}

        def sync_pass(**kw: Any) -> dict[str, Any]:
            _, one = run_sync(settings, progress=advance, until_quiet=True, engine=engine, timeout_s=1800,
                              stall_s=120, **kw)
            runs.append(one)
            return one

        if portal_activity > 0:

            with RegistryClient(settings.registry, province=settings.province) as client:
                Poller(engine, client, settings).take_first_cursor()  # before anything changes (flow 2)
            people = _local_people(engine, max(1, min(500, portal_activity // 10)), seed)
            if people:
                before = trigger_activity(sandbox.admin_url, len(people), seed=seed,
                                          mix={"self_registration": 1.0}, duplicate_of_local=people,
                                          duplicate_rate=1.0)
                _add(portal, before["applied"])
                sync_pass(outbound=False)  # pulled before the first push: linked to the platform's rows
        sync = sync_pass()
        if portal_activity > 0:
            after = trigger_activity(sandbox.admin_url, portal_activity, seed=seed + 1)
            _add(portal, after["applied"])
            sync = sync_pass()
        registry: dict[str, int] = {}
        agree: dict[str, int] = {}
        local_agree: dict[str, int] = {}
        identical: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        registry_total: dict[str, int] = {}
        unlinked: dict[str, int] = {}
        with RegistryClient(settings.registry, province=settings.province) as client:
            for kind, name in KIND_NAMES.items():
                cmp = compare_with_registry(engine, client, kind, settings.hash_key)
                registry[name] = cmp["found"]
                agree[name] = cmp["agree"]
                local_agree[name] = cmp["local_agree"]
                identical[name] = cmp["identical"]
                duplicates[name] = cmp["duplicates"]
                registry_total[name] = cmp["registry_total"]
                unlinked[name] = cmp["unlinked"]
        failed, failed_by_code = outbox_failures(engine)
        failed_codes = outbox_failures_by_kind(engine)
        local = local_counts(engine)
        transferred = transferred_counts(engine, settings.province)
        outputs = manager_outputs(settings, engine, workdir, advance)
        engine.dispose()
        injected = httpx.get(f"{sandbox.admin_url}/counters", timeout=30).json()["data"].get("injected", {})
    summary = {
        "local": local,
        "registry": registry,
        "agree": agree,
        "registry_total": registry_total,
        "registry_unlinked": unlinked,
        "local_agree": local_agree,
        "identical": identical,
        "duplicates": duplicates,
        "in_agreement": all(agree[k] == local_agree[k] == registry[k] - duplicates[k] for k in registry),
        "transferred_out": transferred,
        "adds_up": all(local[k] == registry[k] + failed.get(k, 0) + transferred.get(k, 0) for k in local),
        "pushed": _total(runs, "pushed"),
        "linked": _total(runs, "linked"),
        "failed": {name: failed.get(name, 0) for name in KIND_NAMES.values()},
        "failed_by_code": failed_by_code,
        "failed_codes": failed_codes,
        "backlog": sync["backlog"],
        "faults": {"set": parse_fault_spec(faults), "injected": injected, "client": sync.get("client", {})},
        "generated": generated,
        **({"portal": portal, **{k: _total(runs, k) for k in INBOUND_KEYS}, "feed": _feed(runs),
            "syncs": [r["run_id"] for r in runs]} if portal_activity > 0 else {}),
        "platform": platform,
        "status": _worst(r["status"] for r in runs),
        **({"error": sync["error"]} if sync.get("error") else {}),
        "outputs": outputs,
        "workdir": str(workdir),
        "seconds": round(time.monotonic() - started, 3),
    }
    return summary


def manager_outputs(settings: Settings, engine: Engine, workdir: Path, advance: Any) -> dict[str, Any]:
    """What a manager's day starts with, made once the sync is done: a full reconcile (design.md, flow 3; report
    only, no repair), its report as one HTML page (``report.html``), the worklists as a spreadsheet
    (``worklist.xlsx``: every discrepancy and failed record, who must fix it), and the settings that open the demo's
    store afterwards (``regsync.toml``: the sandbox on its default port, :func:`demo_config`).

    Returns:
        ``{"reconcile_run", "discrepancies", "report", "worklist", "worklist_items", "config", "sandbox_command"}``
        (paths as text); a step that fails is logged and left out, it does not fail the demo.
    """
    out: dict[str, Any] = {}
    code, reconciled = run_reconcile(settings, engine=engine, progress=advance)
    run_id = reconciled.get("run_id")
    found = reconciled.get("discrepancies") or {}
    out["reconcile_run"] = run_id
    out["discrepancies"] = sum(found.values()) if isinstance(found, dict) else found
    if run_id is not None:
        export_to_path(engine, int(run_id), "html", workdir / "report.html", actor="regsync demo")
        out["report"] = str(workdir / "report.html")
    worklist = open_worklist(engine, fmt="xlsx", output=str(workdir / "worklist.xlsx"), actor="regsync demo")
    written = write_worklist(worklist, "xlsx", workdir / "worklist.xlsx")
    out["worklist"], out["worklist_items"] = str(written[0][0]), written[0][1]
    config, command = demo_config(settings, workdir)
    out["config"], out["sandbox_command"] = str(config), command
    return out


def demo_config(settings: Settings, workdir: Path) -> tuple[Path, str]:
    """Write ``regsync.toml`` into ``workdir``: the demo's store, key file and the sandbox's client, the registry on
    the sandbox's default port (8700). Returns the file and the command that serves the demo's sandbox there again
    (the demo's own sandbox stops with it). The file holds the demo's client secret: it is made readable by its
    owner only."""
    path = workdir / "regsync.toml"
    reg = settings.registry
    path.write_text("\n".join([
        "# The demo's settings: `REGSYNC_CONFIG=" + str(path) + " regsync report list` and the other commands read",
        "# the demo's store. Commands that ask the registry need the demo's sandbox served again (see",
        "# `regsync sandbox serve --help`): the command is in the demo's last lines.",
        f'province = "{settings.province}"',
        f'hash_key_file = "{workdir / ("local.db" + KEY_FILE_SUFFIX)}"',
        "",
        "[database]",
        f'url = "{settings.database.url}"',
        f'mapping = "{settings.database.mapping}"',
        "",
        "[registry]",
        'url = "http://127.0.0.1:8700/api/v1"',
        f'client_id = "{reg.client_id}"',
        f'client_secret = "{reg.client_secret}"',
        f'sign_method = "{reg.sign_method}"',
        ""]), encoding="utf-8")
    path.chmod(0o600)
    command = (f"regsync sandbox serve --db sqlite:///{workdir / 'sandbox.db'} "
               f"--client {reg.client_id}:{reg.client_secret}:{settings.province}")
    return path, command
