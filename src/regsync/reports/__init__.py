"""Runs and reports (issue 5): what a sync or reconcile run found and did, for managers and operators.

Modules: :mod:`~regsync.reports.hours` (the hours view's summary, computed by the reconcile),
:mod:`~regsync.reports.data` (reading runs and discrepancies, streamed), :mod:`~regsync.reports.render_text`
(Rich, for a terminal), :mod:`~regsync.reports.render_html` (one self-contained page),
:mod:`~regsync.reports.export` (text, JSON, CSV, HTML to a file or stdout; audited personal data).
"""
