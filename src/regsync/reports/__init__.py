"""Runs and reports (issue 5): what a sync, inbound, reconcile or adopt run found and did, for managers and
operators.

Modules: :mod:`~regsync.domain.hours` (the hours view's summary, which the reconcile computes with
:func:`hours_summary` and stores under its run summary's ``hours`` key), :mod:`~regsync.reports.data` (runs and
discrepancies read in SQL, rows streamed), :mod:`~regsync.reports.render_text` (Rich, for a terminal),
:mod:`~regsync.reports.render_html` (one self-contained page), :mod:`~regsync.reports.export` (text, JSON, CSV,
HTML to a file or stdout; personal data audited).

The names below are the surface other code uses (the reconcile, the daemon, the platform's own tools).
"""

from regsync.domain.hours import STAR_THRESHOLDS, HoursAggregator, format_hours, hours_summary, star_level
from regsync.reports.data import (
    ReportUsageError,
    RunInfo,
    RunNotFound,
    RunReport,
    iter_discrepancies,
    list_runs,
    load_report,
)
from regsync.reports.export import FORMATS, audit_personal_data, export_run, export_to_path

__all__ = [
    "FORMATS",
    "HoursAggregator",
    "ReportUsageError",
    "RunInfo",
    "RunNotFound",
    "RunReport",
    "STAR_THRESHOLDS",
    "audit_personal_data",
    "export_run",
    "export_to_path",
    "format_hours",
    "hours_summary",
    "iter_discrepancies",
    "list_runs",
    "load_report",
    "star_level",
]
