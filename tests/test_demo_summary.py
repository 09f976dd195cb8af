"""The demo's summary as a newcomer reads it (issue 15, point 7): the verdict in the title, columns that each say
something of their own, and one line for every figure that could surprise, exactly when it does. Made-up summaries
of :func:`regsync.console.demo.run_demo`'s shape; no demo is run."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from regsync.console.demo_summary import PORTAL_WORDS, demo_notes, demo_outcome, print_demo_summary
from regsync.generate.generator import DIRT_KINDS
from regsync.i18n import use_language
from regsync.sandbox.portal import ACTIONS as PORTAL_ACTIONS

KINDS = ("orgs", "volunteers", "memberships", "activities", "service_records")


def clean() -> dict[str, Any]:
    """A run where nothing could surprise: every record written once and the same on both sides."""
    local = {"orgs": 30, "volunteers": 960, "memberships": 1300, "activities": 100, "service_records": 8800}
    zero = dict.fromkeys(KINDS, 0)
    return {
        "local": dict(local), "registry": dict(local), "agree": dict(local), "local_agree": dict(local),
        "identical": dict(local), "registry_total": dict(local), "registry_unlinked": dict(zero),
        "duplicates": dict(zero), "in_agreement": True, "transferred_out": {}, "adds_up": True,
        "pushed": dict(local), "linked": {}, "failed": dict(zero), "failed_by_code": {}, "failed_codes": {},
        "backlog": 0, "faults": {"set": {}, "injected": {}, "client": {}},
        "generated": {"counts": dict(local), "dirt": {"id_bad_check": 2, "phone_bad": 3, "phone_format": 7}},
        "platform": "reference", "status": "success", "workdir": "/tmp/regsync-demo", "seconds": 61.4,
    }


def happy() -> dict[str, Any]:
    """The default demo's shape: a person twice, records ended before their first push, the generator's unfixable
    dirt refused and the records that hang on it waiting; the runs record ``partial``."""
    s = clean()
    s["local"].update(volunteers=960, memberships=1300, service_records=8800)
    s["registry"].update(volunteers=955, memberships=1296, service_records=8790)
    for key in ("agree", "local_agree", "identical", "registry_total"):
        s[key].update(volunteers=953, memberships=1295, service_records=8790)
    s["duplicates"].update(volunteers=2, memberships=1)
    s["linked"] = {"volunteers": 2, "memberships": 1}
    s["pushed"].update(volunteers=953, memberships=1340, service_records=8900)
    s["failed"].update(volunteers=5, memberships=4, service_records=10)
    s["failed_by_code"] = {"INVALID_ID_NUMBER": 2, "INVALID_PHONE": 3, "PARENT_FAILED": 14}
    s["failed_codes"] = {"volunteers": {"INVALID_ID_NUMBER": 2, "INVALID_PHONE": 3},
                         "memberships": {"PARENT_FAILED": 4}, "service_records": {"PARENT_FAILED": 10}}
    s["status"] = "partial"
    return s


def portal(s: dict[str, Any]) -> dict[str, Any]:
    """``--portal-activity``: the portal's actions and what came home; the platform grew by 3 volunteers."""
    s = copy.deepcopy(s)
    s["portal"] = {"contact_edit": 8, "self_registration": 5, "transfer_out": 0}  # as --json sorts them
    s["merged"], s["adopted"], s["created_locally"] = {"volunteers": 8}, {"volunteers": 2}, {"volunteers": 3}
    s["registry_owned"], s["ended_locally"], s["conflicts"] = {}, {}, {}
    s["pulled"] = {"volunteers": 20}
    s["feed"] = {"pages": 1, "changes": 20, "echoes": 9, "repeats": 0, "stale": 0}
    for key in ("local", "registry", "agree", "local_agree", "identical", "registry_total"):
        s[key]["volunteers"] += 3
    return s


def rendered(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    print_demo_summary(summary, Console(file=buf, width=1000, color_system=None))
    return buf.getvalue()


def heads(summary: dict[str, Any]) -> list[str]:
    """The notes by what they begin with (up to the first colon)."""
    return [line.split(":", 1)[0] for line in demo_notes(summary)]


def test_a_clean_run_is_done_with_nothing_to_explain() -> None:
    s = clean()
    assert demo_outcome(s) == "done: every record is in the registry, the same on both sides"
    assert demo_notes(s) == []
    out = rendered(s)
    assert "regsync demo on the reference platform, 61 s: done: every record is in the registry, the same on both " \
           "sides" in out


def test_the_happy_path_reads_done_not_partial_and_says_why_each_figure_is_what_it_is() -> None:
    s = happy()
    assert demo_outcome(s) == "done: every record is in the registry or explained below"
    out = rendered(s)
    title = out.splitlines()[0]
    assert "done: every record is in the registry or explained below" in title and "partial" not in title
    assert heads(s) == ["duplicates", "writes above records", "refused, the generator's dirt made on purpose",
                        "waiting for a refused record (PARENT_FAILED)"]
    notes = demo_notes(s)
    assert "volunteers 2, memberships 1" in notes[0]
    assert "memberships 1,340 for 1,300, service records 8,900 for 8,800" in notes[1] and "orgs" not in notes[1]
    assert "volunteers 5 (2 ID numbers with a wrong check character, INVALID_ID_NUMBER; 3 malformed phone numbers, " \
           "INVALID_PHONE)" in notes[2]
    assert "`partial`" in notes[2]
    assert "memberships 4, service records 10: each belongs to one" in notes[3]
    assert all(f"- {line}" in out.splitlines() for line in notes)


def test_no_two_columns_say_the_same() -> None:
    """``agree`` and ``local agrees`` (equal on every good run) and ``registry`` (their sum with the duplicates) are
    one column now, ``synced``; ``linked`` (the duplicates, in the demo) is said in the duplicates' note."""
    out = rendered(happy())
    header = next(line for line in out.splitlines() if line.lstrip().startswith("kind"))
    assert header.split() == ["kind", "on", "the", "platform", "synced", "duplicates", "not", "sent", "adds", "up",
                              "writes"]
    row = next(line for line in out.splitlines() if line.lstrip().startswith("volunteers"))
    assert row.split() == ["volunteers", "960", "953", "2", "5", "yes", "953"]
    # the columns add up to the platform's records, as the line under the table says
    assert "on the platform = synced + duplicates + not sent;" in out


@pytest.mark.parametrize(("change", "note", "outcome"), [
    # writes exactly the records: no note; above them: the note
    (lambda s: s["pushed"].update(memberships=1300, service_records=8800), None, "explained"),
    # the duplicates' note goes with the duplicates
    (lambda s: (s["duplicates"].update(volunteers=0, memberships=0), s.update(linked={}),
                s["registry"].update(volunteers=953, memberships=1295)), None, "explained"),
    # refused records that are not the generator's dirt (a code it never makes, or more of one than it made)
    (lambda s: s["failed_codes"]["volunteers"].update(INVALID_PHONE=4),
     "refused, not the generator's dirt", "done, but the registry refused records that are not the generator's"),
    (lambda s: s["failed_codes"].update(orgs={"INVALID_USCC": 1}),
     "refused, not the generator's dirt", "done, but the registry refused records that are not the generator's"),
    (lambda s: s.update(transferred_out={"volunteers": 4}), "moved out", "explained"),
    (lambda s: s["identical"].update(volunteers=950), "out of step", "done, but"),
    (lambda s: s["registry_unlinked"].update(volunteers=2), "not linked", "explained"),
    (lambda s: s["linked"].update(volunteers=4), "linked, not created", "explained"),
])
def test_each_note_is_there_exactly_when_its_figure_surprises(change: Callable[[dict[str, Any]], Any],
                                                              note: str | None, outcome: str) -> None:
    before = set(heads(happy()))
    s = happy()
    change(s)
    after = set(heads(s))
    if note is None:
        assert len(after) == len(before) - 1 and after < before
    else:
        assert after - before == {note}, after
    assert demo_outcome(s).startswith("done: every record is in the registry or explained below" if
                                      outcome == "explained" else outcome)


def test_the_portals_lines_say_what_came_home_and_why_more_changes_were_pulled_than_records() -> None:
    s = portal(clean())
    notes = demo_notes(s)
    assert [n.split(":", 1)[0] for n in notes] == [
        "the registry changed too", "brought home from the registry",
        "on the platform, not only the generated records"]
    assert "13 actions on its portal: 5 self-registrations, 8 phone or skills edits" in notes[0]  # the portal's order
    assert "transfers" not in notes[0]  # none made
    assert "volunteers 963 = 960 generated + 3" in notes[2]
    s["pulled"] = {"volunteers": 5000, "service_records": 9000}
    s["feed"].update(changes=14000, echoes=13000, stale=50, repeats=10)
    pulled = demo_notes(s)[-1]
    assert pulled.startswith("pulled 14,000 changes, more than there are records")
    assert "13,000 were echoes of regsync's own writes and 60 already known, skipped; the other 940 were read" in pulled


@pytest.mark.parametrize(("change", "outcome"), [
    (lambda s: s.update(error="the registry refused the credentials", status="failed"), "stopped by an error"),
    (lambda s: s.update(backlog=12), "not finished: 12 changes still wait to be sent"),
    (lambda s: s.update(adds_up=False), "not finished: some records are neither in the registry nor explained"),
])
def test_a_run_that_did_not_finish_says_so(change: Callable[[dict[str, Any]], Any], outcome: str) -> None:
    s = happy()
    change(s)
    assert demo_outcome(s).startswith(outcome)
    assert outcome in rendered(s).splitlines()[0]


def with_v11(s: dict[str, Any]) -> dict[str, Any]:
    """The demo with registry-api.md v1.1's kinds (issue 16): trainings, training records, commendations and
    evaluations pushed; the generator's dirt of training records and evaluations refused, with what hangs on a
    refused volunteer waiting."""
    s = copy.deepcopy(s)
    local = {"trainings": 110, "training_records": 380, "commendations": 60, "evaluations": 560}
    for key in ("local", "registry", "agree", "local_agree", "identical", "registry_total", "pushed"):
        s[key].update(local)
    for key in ("registry", "agree", "local_agree", "identical", "registry_total", "pushed"):
        s[key].update(training_records=376, commendations=59, evaluations=558)
    for key in ("duplicates", "registry_unlinked"):
        s[key].update(dict.fromkeys(local, 0))
    s["failed"].update(trainings=0, training_records=4, commendations=1, evaluations=2)
    s["failed_codes"].update(training_records={"INVALID_CLASS_HOURS": 3, "PARENT_FAILED": 1},
                             commendations={"PARENT_FAILED": 1}, evaluations={"INVALID_SCORE": 2})
    s["failed_by_code"].update(INVALID_CLASS_HOURS=3, INVALID_SCORE=2, PARENT_FAILED=16)
    s["generated"]["counts"].update(local)
    s["generated"]["dirt"].update(training_record_hours=3, evaluation_score_zero=2)
    return s


def with_held_evaluations(s: dict[str, Any]) -> dict[str, Any]:
    """:func:`with_v11` plus 3 evaluations of activities the generator left uncompleted on purpose: regsync holds them
    (``AWAITS_COMPLETION``: the registry would refuse them ``INVALID_STATE``), and they are the generator's dirt."""
    s = with_v11(s)
    for key in ("local",):
        s[key]["evaluations"] += 3
    s["generated"]["counts"]["evaluations"] += 3
    s["failed"]["evaluations"] += 3
    s["failed_codes"]["evaluations"]["AWAITS_COMPLETION"] = 3
    s["failed_by_code"]["AWAITS_COMPLETION"] = 3
    s["generated"]["dirt"]["evaluation_not_completed"] = 3
    return s


def test_the_nine_kinds_add_up_and_v11_dirt_reads_as_made_on_purpose() -> None:
    s = with_v11(happy())
    assert demo_outcome(s) == "done: every record is in the registry or explained below"
    out = rendered(s)
    rows = {line.split()[0] + (" " + line.split()[1] if line.split()[1] == "records" else ""): line.split()
            for line in out.splitlines() if line.strip() and line.split()[0] in
            ("trainings", "training", "commendations", "evaluations")}
    # on the platform = synced + duplicates + not sent, and the writes the registry accepted
    assert rows["trainings"][1:] == ["110", "110", "0", "0", "yes", "110"]
    assert rows["training records"][2:] == ["380", "376", "0", "4", "yes", "376"]
    assert rows["commendations"][1:] == ["60", "59", "0", "1", "yes", "59"]
    assert rows["evaluations"][1:] == ["560", "558", "0", "2", "yes", "558"]
    dirt = next(n for n in demo_notes(s) if n.startswith("refused, the generator's dirt made on purpose"))
    assert "training records 3 (3 training records beyond their training's class hours, INVALID_CLASS_HOURS)" in dirt
    assert "evaluations 2 (2 evaluations with a score of 0, INVALID_SCORE)" in dirt
    waiting = next(n for n in demo_notes(s) if n.startswith("waiting for a refused record"))
    assert "training records 1, commendations 1" in waiting
    # a training record refused with a code the generator never made for it is not dirt
    s["failed_codes"]["training_records"]["INVALID_CLASS_HOURS"] = 4
    assert demo_outcome(s).startswith("done, but the registry refused records that are not the generator's")


def test_evaluations_held_for_their_activitys_completion_are_the_generators_dirt_not_a_fault() -> None:
    """A new user's trial: the demo's verdict said the registry refused records that were not the generator's, for
    the evaluations regsync itself holds (AWAITS_COMPLETION) because the generator left their activity uncompleted
    on purpose."""
    s = with_held_evaluations(happy())
    assert demo_outcome(s) == "done: every record is in the registry or explained below"
    dirt = next(n for n in demo_notes(s) if n.startswith("refused, the generator's dirt made on purpose"))
    assert "AWAITS_COMPLETION" in dirt and "evaluations 5" in dirt, dirt
    assert DIRT_KINDS["evaluation_not_completed"][2] == "AWAITS_COMPLETION"


def test_the_v11_kinds_have_chinese_words() -> None:
    with use_language("zh-CN"):
        out = rendered(with_v11(happy()))
    firsts = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"培训", "培训记录", "表彰", "评价"} <= set(firsts), firsts


def test_every_portal_action_of_the_sandbox_is_said_in_words() -> None:
    """The sandbox's portal draws v1.1's actions too (a national commendation, a training record entered on the
    portal): the demo's summary names each one in words, never by its code."""
    assert set(PORTAL_ACTIONS) <= set(PORTAL_WORDS)
