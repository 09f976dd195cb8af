"""The annual commendation workflow (年度嘉许, issue 16 point 4; registry-api.md §4.8): propose, approve, follow up.

The province runs it each January for the year before:

1. :class:`Proposals` lists who earned which tier of ``PROVINCIAL_ANNUAL`` in the year. The tier is by the
   **registry's** figure, the one the registry checks when the commendation is created: its ACCEPTED service records
   of the year, read from the export ``/exports/service-records`` as it streams (staged in temporary tables,
   :mod:`regsync.db.commendations`; never all in memory). The links' base snapshots are not used: they are the last
   state this client agreed on, and they miss the records entered on the national portal, which the registry
   counts. The platform's own figure (its ACCEPTED service records of the year) is shown beside it; a subject whose
   tier would be higher by the platform's figure is flagged (hours not yet in the registry: unsent, failed, or
   corrected since), as is one the registry does not know at all. A subject that already holds an ACTIVE
   commendation of the scheme and year, on the platform or in the registry (export ``/exports/commendations``), at
   that tier or higher is not proposed again; a higher tier is proposed, and its approval revokes the lower one.
2. :func:`approve` creates the approved commendations on the platform (local rows through the platform interface,
   :mod:`regsync.db.platform.write`, so a mapped platform gets them in its own tables), in one transaction with
   their ``audit`` row; the outbox triggers queue them and the relay pushes them. Running it again creates nothing
   again (the natural key subject + scheme + year).
3. :func:`commendation_status` lists the year's scheme commendations with their sync state (sent, waiting,
   refused with the reason in words; for ``NOT_EARNED`` the registry's figure from its message and the platform's).

Figures are hundredths of an hour for volunteers and a number of service records for orgs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db import commendations as q
from regsync.db.models import Audit
from regsync.db.platform import write
from regsync.db.platform.mapped import mapped_platform
from regsync.db.query import insert_id
from regsync.db.session import utcnow
from regsync.domain.clock import SHANGHAI
from regsync.domain.commendations import (
    SCHEME,
    Choice,
    Proposal,
    Subject,
    figure_text,
    lowest,
    rank,
    tier_for,
    tier_words,
    title_for,
)
from regsync.domain.masking import mask_id_number, mask_text
from regsync.domain.reasons import reason_for
from regsync.i18n import TranslatableError
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_
from regsync.registry.port import RegistryPort

log = structlog.get_logger(__name__)

#: Registry records staged per insert, and candidates read per page.
STAGE = 1000
PAGE = 500

#: Sync states of a scheme commendation → words.
STATE_WORDS: dict[str, str] = {"sent": N_("sent"), "waiting": N_("waiting"), "refused": N_("refused")}
#: Local statuses of a commendation → words.
STATUS_WORDS: dict[str, str] = {"ACTIVE": N_("valid"), "REVOKED": N_("revoked")}

_LETTER: dict[Subject, str] = {"volunteer": "V", "org": "O"}


class CommendationUsageError(TranslatableError, ValueError):
    """A year the scheme cannot take yet, a tier a subject cannot have, or a subject that is not on the platform
    (exit code 2)."""


#: The first year the scheme can commend: the national registry's records start in 2008 (the year of
#: 志愿服务记录 nationwide); an earlier year is refused as a usage error rather than searched for in vain.
FIRST_YEAR = 2008


def check_year(year: int, today: dt.date | None = None) -> None:
    """The scheme commends a year before the current one (+08:00, registry-api.md §4.8), from :data:`FIRST_YEAR`.

    Raises:
        CommendationUsageError: ``year`` is the current year or later, or before :data:`FIRST_YEAR`.
    """
    today = today or dt.datetime.now(SHANGHAI).date()
    if year >= today.year:
        raise CommendationUsageError(N_("--year must be a past year (before {current}), got {year}"),
                                     current=today.year, year=year)
    if year < FIRST_YEAR:
        raise CommendationUsageError(N_("--year must be {first} or later (the first year the registry holds service "
                                        "records of), got {year}"), first=FIRST_YEAR, year=year)


class Proposals:
    """The proposals of one year, streamed: iterate once (the registry's exports are read when iteration starts).

    Args:
        engine: the local store.
        client: the registry client (its exports).
        year: the commended year.

    Attributes:
        counts: after iteration, ``proposed`` (rows with a tier), ``flagged``, ``by_tier`` (``"volunteer:GOLD"``
            → proposals), and ``records``: the registry's ACCEPTED service records of the year (0: no data at all).
    """

    def __init__(self, engine: Engine, client: RegistryPort, year: int) -> None:
        self.engine, self.client, self.year = engine, client, year
        self.counts: dict[str, Any] = {"proposed": 0, "flagged": 0, "by_tier": Counter(), "records": 0}

    def __iter__(self) -> Iterator[Proposal]:
        with self.engine.connect() as conn:
            q.open_staging(conn)
            try:
                self._stage(conn)
                q.build_candidates(conn, self.year, low_hours=lowest("volunteer"), low_records=lowest("org"))
                for subject in ("volunteer", "org"):
                    for p in self._read(conn, subject):
                        self.counts["proposed"] += p.tier is not None
                        self.counts["flagged"] += p.flag is not None
                        if p.tier is not None:
                            self.counts["by_tier"][f"{p.subject}:{p.tier}"] += 1
                        yield p
            finally:
                q.drop_staging(conn)

    def _stage(self, conn: Connection) -> None:
        """Stage the registry's figures and awards of the year as its exports stream past."""
        year = self.year
        buf: list[dict[str, Any]] = []
        with self.client.export("service_record") as ex:
            for r in ex:
                day = r.get("service_date")
                if r.get("status") != "ACCEPTED" or day is None or _year_of(day) != year:
                    continue
                self.counts["records"] += 1
                if r.get("volunteer_id"):
                    buf.append({"s": "V", "r": r["volunteer_id"], "a": int(r.get("hours") or 0)})
                if r.get("org_id"):
                    buf.append({"s": "O", "r": r["org_id"], "a": 1})
                if r.get("station_id") and r.get("station_id") != r.get("org_id"):
                    buf.append({"s": "O", "r": r["station_id"], "a": 1})
                if len(buf) >= STAGE:
                    q.stage_figures(conn, buf)
                    buf = []
        if buf:
            q.stage_figures(conn, buf)
        awards: list[dict[str, Any]] = []
        with self.client.export("commendation") as ex:
            for r in ex:
                if r.get("scheme") != SCHEME or r.get("year") != year or r.get("status") != "ACTIVE":
                    continue
                letter, rid = ("V", r.get("volunteer_id")) if r.get("volunteer_id") else ("O", r.get("org_id"))
                if rid:
                    awards.append({"s": letter, "r": rid, "t": r.get("tier")})
                if len(awards) >= STAGE:
                    q.stage_awards(conn, awards)
                    awards = []
        if awards:
            q.stage_awards(conn, awards)

    def _read(self, conn: Connection, subject: Subject) -> Iterator[Proposal]:
        letter = _LETTER[subject]
        after = 0
        while True:
            rows = q.candidate_page(conn, letter, after, PAGE)
            if not rows:
                return
            after = int(rows[-1].local_id)
            ids = [int(r.local_id) for r in rows]
            held = q.local_awards(conn, SCHEME, self.year, letter, ids)
            orgs = q.main_orgs(conn, self.year, ids) if subject == "volunteer" else {}
            for r in rows:
                if r.status != "ACTIVE":
                    continue  # the registry takes only an ACTIVE subject (§4.8)
                existing = max([t for _c, t in held.get(int(r.local_id), [])] + [r.reg_tier],
                               key=lambda t: rank(subject, t))
                p = _proposal(subject, r, existing, orgs.get(int(r.local_id)))
                if p is not None:
                    yield p


def _proposal(subject: Subject, r: Any, existing: str | None, main_org: str | None) -> Proposal | None:
    """The proposal of one candidate row, or ``None`` when there is nothing to propose or follow up."""
    reg_tier = tier_for(subject, int(r.reg_amount))
    loc_tier = tier_for(subject, int(r.loc_amount))
    have = rank(subject, existing)
    tier = reg_tier if r.rid is not None and rank(subject, reg_tier) > have else None
    flag = None
    if rank(subject, loc_tier) > max(rank(subject, reg_tier), have):
        flag = "not_in_registry" if r.rid is None else "platform_higher"
    if tier is None and flag is None:
        return None
    return Proposal(
        subject=subject, local_id=int(r.local_id), registry_id=r.rid, name=r.name,
        id_number=mask_id_number(r.id_number) if subject == "volunteer" else None,
        org=main_org if subject == "volunteer" else r.parent_name, region_code=r.region_code,
        registry_amount=int(r.reg_amount), platform_amount=int(r.loc_amount), existing_tier=existing, tier=tier,
        flag=flag, flag_tier=loc_tier if flag else None)


def _year_of(day: Any) -> int:
    return day.year if isinstance(day, dt.date) else int(str(day)[:4])


# ------------------------------------------------------------------------------------------------ approving


@dataclass
class AwardTerms:
    """What a commendation's document says (registry-api.md §4.8), the same for every commendation of one approval.

    Attributes:
        awarded_on: 获奖日期 (after the year, not in the future; default: today, +08:00).
        issuer: 颁发者 (2–100 characters).
        document_name: 奖励文书名称 (2–100).
        document_number: 奖励文书文号 (1–50).
    """

    awarded_on: dt.date
    issuer: str
    document_name: str
    document_number: str

    @classmethod
    def given(cls, year: int, *, awarded_on: dt.date | None = None, issuer: str | None = None,
              document_name: str | None = None, document_number: str | None = None) -> AwardTerms:
        """The terms as given (options, or ``REGSYNC_COMMENDATION_ISSUER``, ``…_DOCUMENT_NAME``,
        ``…_DOCUMENT_NUMBER`` in the environment); only the date has a default (today, +08:00). A document number is
        the province's own (e.g. ``黑志联〔2026〕3号``): none is made up.

        Raises:
            CommendationUsageError: ``awarded_on`` not after the year, or in the future; the issuer, the document's
                name or number not given; a text out of its length (registry-api.md §4.8).
        """
        today = dt.datetime.now(SHANGHAI).date()
        day = awarded_on or today
        if not dt.date(year, 12, 31) < day <= today:
            raise CommendationUsageError(N_("--awarded-on must be after {year} and not in the future, got {date}"),
                                         year=year, date=day.isoformat())
        missing = [f"{option} ({env})" for option, env, value in (
            ("--issuer", "REGSYNC_COMMENDATION_ISSUER", issuer),
            ("--document-name", "REGSYNC_COMMENDATION_DOCUMENT_NAME", document_name),
            ("--document-number", "REGSYNC_COMMENDATION_DOCUMENT_NUMBER", document_number))
            if not (value or "").strip()]
        if missing:
            raise CommendationUsageError(N_("give the award document's terms: {options} (an option, or the variable "
                                            "in the environment)"), options=", ".join(missing))
        terms = cls(awarded_on=day, issuer=(issuer or "").strip(), document_name=(document_name or "").strip(),
                    document_number=(document_number or "").strip())
        for name, value, low, high in (("--issuer", terms.issuer, 2, 100), ("--document-name", terms.document_name,
                                       2, 100), ("--document-number", terms.document_number, 1, 50)):
            if not low <= len(value) <= high:
                raise CommendationUsageError(N_("{option} takes {low} to {high} characters, got {n}"),
                                             option=name, low=low, high=high, n=len(value))
        return terms


@dataclass
class ApproveResult:
    """What :func:`approve` did.

    Attributes:
        created: local ids of the commendations created.
        revoked: local ids of lower commendations revoked to make way for a higher tier.
        unchanged: choices already held at that tier or higher (nothing done).
        audit_id: the ``audit`` row (``None`` when nothing was created).
    """

    created: list[int] = field(default_factory=list)
    revoked: list[int] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Choice] = field(default_factory=list)
    audit_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result for ``--json`` (``skipped``: the file's rows of subjects not proposed now, with their row)."""
        return {"created": self.created, "revoked": self.revoked, "unchanged": self.unchanged,
                "skipped": [{"row": c.row, "subject": c.subject, "local_id": c.local_id, "tier": c.tier}
                            for c in self.skipped], "audit_id": self.audit_id}


def approve(engine: Engine, year: int, choices: Iterable[Choice], *, terms: AwardTerms, reason: str, actor: str,
            source: str, fresh: Iterable[Proposal] | None = None) -> ApproveResult:
    """Create the commendations of ``choices`` on the platform, with their audit row, in one transaction.

    A subject that already holds an ACTIVE commendation of the scheme and ``year`` at the tier or higher is left as
    it is (a second run creates nothing); a lower one is revoked first (local status ``REVOKED``; registry-api.md
    §4.8: a higher tier replaces a lower one by revoking the lower first). Rows are written through the platform
    interface (:mod:`regsync.db.platform.write`: the reference tables or the mapped platform's own), not
    suppressing the outbox: the triggers queue them for the relay.

    Args:
        engine: the local store.
        year: the commended year (before the current one).
        choices: the approved proposals.
        terms: the document's terms.
        reason: why (the audit's reason; masked when written).
        actor: who (the audit's actor).
        source: what was approved from (``file:NAME`` or ``all``), for the audit's details.
        fresh: the proposals computed now (:class:`Proposals`, the same computation as ``propose``): when given
            (always from the command), a choice is taken only as the approval of the fresh proposal of its subject.
            A choice whose tier differs from the fresh proposal's refuses the whole approval (nothing is created);
            a choice of a subject with no fresh proposal (already held, or no longer earned) is skipped and reported
            (:attr:`ApproveResult.skipped`; counted ``unchanged`` when the subject holds the tier or higher), and
            never revokes anything.

    Raises:
        CommendationUsageError: a past year is needed, a tier the subject cannot have, a subject not on the platform
            or not ACTIVE, a choice that differs from the fresh proposal (the rows named).
        sqlalchemy.exc.SQLAlchemyError: the store failed (nothing is written).
    """
    check_year(year)
    picked = list(dict.fromkeys(choices))
    result = ApproveResult()
    if fresh is not None:
        result.skipped = _against(picked, fresh)
    unchanged_now: list[Choice] = []
    with engine.begin() as conn:
        platform = mapped_platform(conn)
        for subject in ("volunteer", "org"):
            mine = [c for c in picked if c.subject == subject]
            if not mine:
                continue
            letter = _LETTER[subject]
            rows = q.subject_rows(conn, letter, [c.local_id for c in mine])
            held = q.local_awards(conn, SCHEME, year, letter, [c.local_id for c in mine])
            for c in mine:
                _check_choice(c, rows.get(c.local_id))
                existing = held.get(c.local_id, [])
                if any(rank(subject, t) >= rank(subject, c.tier) for _cid, t in existing):
                    result.unchanged += 1
                    unchanged_now.append(c)
                    continue
                if c in result.skipped:  # not a fresh proposal: nothing created, nothing revoked
                    continue
                lower = [cid for cid, _t in existing]
                if lower:
                    write.write_fields(conn, "commendation", ["status", "revoke_reason", "updated_at"], [
                        {"id": cid, "status": "REVOKED", "revoke_reason": f"由{title_for(year, c.tier)}替代",
                         "updated_at": utcnow()} for cid in lower], platform=platform)
                    result.revoked.extend(lower)
                values = {"volunteer_id": c.local_id if subject == "volunteer" else None,
                          "org_id": c.local_id if subject == "org" else None, "title": title_for(year, c.tier),
                          "scheme": SCHEME, "tier": c.tier, "year": year, "awarded_on": terms.awarded_on,
                          "issuer": terms.issuer, "document_name": terms.document_name,
                          "document_number": terms.document_number, "content": None, "status": "ACTIVE",
                          "revoke_reason": None}
                result.created.append(write.insert_record(conn, "commendation", values, platform=platform))
        result.skipped = [c for c in result.skipped if c not in unchanged_now]
        if result.created or result.revoked:
            result.audit_id = insert_id(conn, Audit.__table__, {
                "at": utcnow(), "actor": mask_text(actor)[:64], "action": "commendations.approve",
                "target": f"commendation {SCHEME} {year}", "reason": mask_text(reason),
                "details": json.dumps({"year": year, "source": mask_text(source), "created": result.created,
                                       "records": [f"commendation:{cid}" for cid in
                                                   result.created + result.revoked],
                                       "revoked": result.revoked, "unchanged": result.unchanged,
                                       "awarded_on": terms.awarded_on.isoformat(),
                                       "document_number": terms.document_number}, ensure_ascii=False,
                                      sort_keys=True)})
    log.info("commendations: approved", year=year, created=len(result.created), revoked=len(result.revoked),
             unchanged=result.unchanged)
    return result


def _against(picked: list[Choice], fresh: Iterable[Proposal]) -> list[Choice]:
    """The choices of subjects with no fresh proposal (to skip); raises when a choice differs from its subject's
    fresh proposal (registry-api.md §4.8: the registry refuses a tier not earned, and a higher tier revokes the
    lower one first: a tier not proposed must neither be created nor revoke anything).

    Raises:
        CommendationUsageError: a choice's tier is not the fresh proposal's (the rows or subjects named).
    """
    now = {(p.subject, p.local_id): p.tier for p in fresh if p.tier is not None}
    wrong = [c for c in picked if (c.subject, c.local_id) in now and now[c.subject, c.local_id] != c.tier]
    if wrong:
        listed = "; ".join(_("row {row}: {subject} {id} {tier}, proposed {fresh}").format(
            row=c.row or "?", subject=c.subject, id=c.local_id, tier=c.tier, fresh=now[c.subject, c.local_id])
            for c in wrong)
        raise CommendationUsageError(N_("the file's award differs from the proposal computed now, nothing created "
                                        "(take the award from a new proposals file): {rows}"), rows=listed)
    return [c for c in picked if (c.subject, c.local_id) not in now]


def _check_choice(c: Choice, row: Any) -> None:
    if rank(c.subject, c.tier) == 0:
        raise CommendationUsageError(N_("{subject} {id}: no tier {tier} in the scheme for it"),
                                     subject=c.subject, id=c.local_id, tier=c.tier)
    if row is None:
        raise CommendationUsageError(N_("{subject} {id} is not on the platform"), subject=c.subject, id=c.local_id)
    if row.status != "ACTIVE":
        raise CommendationUsageError(N_("{subject} {id} is not ACTIVE ({status}): the registry would refuse it"),
                                     subject=c.subject, id=c.local_id, status=row.status)


def approvable(proposals: Iterable[Proposal]) -> Iterator[Choice]:
    """The choices ``--all`` approves: every proposal with a tier that is not flagged (a flagged one waits for its
    follow-up; approve it from the file if it should not)."""
    for p in proposals:
        if p.tier is not None and p.flag is None:
            yield Choice(p.subject, p.local_id, p.tier)


# ------------------------------------------------------------------------------------------------ status


@dataclass
class StatusRow:
    """One scheme commendation of the year and where it stands.

    Attributes:
        local_id: the commendation's local id.
        subject: ``volunteer`` or ``org``; subject_id: its local id; name: its name.
        tier: the tier; status: ``ACTIVE`` or ``REVOKED`` (local).
        state: ``sent`` (in the registry, nothing waiting), ``waiting`` (in the outbox), ``refused``.
        registry_id: the commendation's registry id, when linked.
        code: the refusal's code (``NOT_EARNED``…), reason: its words, action: what to do.
        message: the registry's message (masked).
        registry_figure: for ``NOT_EARNED``, the registry's figure read from its message (text as the registry
            gave it), or ``None``; platform_figure: the platform's figure of the subject (hours as ``"123.50"``,
            records as a count).
    """

    local_id: int
    subject: Subject
    subject_id: int
    name: str | None
    tier: str | None
    status: str
    state: str
    registry_id: str | None = None
    code: str | None = None
    reason: str | None = None
    action: str | None = None
    message: str | None = None
    registry_figure: str | None = None
    platform_figure: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row for ``--json`` (English codes; words in the language in force)."""
        return {k: getattr(self, k) for k in ("local_id", "subject", "subject_id", "name", "tier", "status", "state",
                                              "registry_id", "code", "reason", "action", "message",
                                              "registry_figure", "platform_figure")}

    def status_words(self) -> str:
        """The local status in words (有效, 已撤销), in the language in force."""
        return _(STATUS_WORDS[self.status]) if self.status in STATUS_WORDS else self.status

    def explanation(self) -> str:
        """The refusal in words with both figures, or why a commendation waits (its outbox row's code in words, and
        the detail regsync recorded), or that it is not sent yet; ``""`` when sent."""
        if self.state == "waiting":
            if not self.reason:
                return _("Not sent yet: the relay sends it on its next pass.")
            detail = f" ({self.message})" if self.message else ""
            return f"{self.reason}{detail}. {self.action}"
        if self.state != "refused":
            return ""
        if self.code == "NOT_EARNED":
            unit = _("hours") if self.subject == "volunteer" else _("service records")
            return _("{reason}: the registry counts {registry} {unit} of the year, the platform {platform} {unit}; "
                     "{tier} needs more in the registry. {action}").format(
                reason=self.reason, registry=self.registry_figure or "?", platform=self.platform_figure,
                unit=unit, tier=tier_words(self.tier), action=self.action)
        return f"{self.reason}. {self.action}"


_HAS = re.compile(r"\bhas\s+(\d+(?:\.\d+)?)")


def registry_figure_in(message: str | None) -> str | None:
    """The registry's figure in a ``NOT_EARNED`` message (``… the registry has 45.00 hours …``), or ``None``."""
    found = _HAS.search(message or "")
    return found.group(1) if found else None


def _message_of(last_error: str | None) -> str | None:
    """The registry's message of the ``tier`` field error in an outbox row's ``last_error``, else the whole text."""
    if not last_error:
        return None
    try:
        data = json.loads(last_error)
    except ValueError:
        return last_error
    errors = data.get("errors") if isinstance(data, dict) else data if isinstance(data, list) else None
    for e in errors or []:
        if isinstance(e, dict) and e.get("code") == "NOT_EARNED":
            return str(e.get("message") or "")
    return last_error


def commendation_status(engine: Engine, year: int) -> list[StatusRow]:
    """The year's scheme commendations on the platform, oldest first, with their sync state.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store failed.
    """
    out: list[StatusRow] = []
    with engine.connect() as conn:
        for r in q.scheme_commendations(conn, SCHEME, year):
            subject: Subject = "volunteer" if r.volunteer_id is not None else "org"
            sid = int(r.volunteer_id if r.volunteer_id is not None else r.org_id)
            if r.state == "failed":
                state = "refused"
            elif r.state in (None, "sent") and r.registry_id is not None:
                state = "sent"
            else:
                state = "waiting"
            row = StatusRow(local_id=int(r.id), subject=subject, subject_id=sid, name=r.name, tier=r.tier,
                            status=r.status, state=state, registry_id=r.registry_id)
            if state == "waiting" and r.last_code:  # why it waits (the outbox row's code, domain/reasons.py)
                why = reason_for(r.last_code)
                row.code, row.reason, row.action = why.code, why.reason, why.action
                row.message = mask_text(r.last_error) if r.last_error else None
            if state == "refused":
                why = reason_for(r.last_code)
                message = _message_of(r.last_error)
                row.code, row.reason, row.action = why.code, why.reason, why.action
                row.message = mask_text(message) if message else None
                if r.last_code == "NOT_EARNED" or "NOT_EARNED" in (r.last_error or ""):
                    row.code = "NOT_EARNED"
                    nr = reason_for("NOT_EARNED")
                    row.reason, row.action = nr.reason, nr.action
                    row.registry_figure = registry_figure_in(message)
                row.platform_figure = figure_text(subject, q.platform_figure(conn, _LETTER[subject], sid, year))
            out.append(row)
    return out


__all__ = ["FIRST_YEAR", "STATE_WORDS", "STATUS_WORDS", "ApproveResult", "AwardTerms", "CommendationUsageError",
           "Proposals", "StatusRow", "approvable", "approve", "check_year", "commendation_status", "registry_figure_in"]
