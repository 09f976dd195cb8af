"""Logging with structlog: a readable console in a terminal, JSON lines otherwise, always on stderr.

ID numbers and phone numbers are masked in every event (design.md, "Personal data") unless the operator
turns masking off explicitly (``REGSYNC_LOG_SHOW_PERSONAL_DATA``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

from regsync.domain.masking import mask_text
from regsync.settings import LogSettings


def _mask_values(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_values(v) for v in value]
    return value


def mask_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor that masks ID numbers and phones in every string of the event."""
    return {k: _mask_values(v) for k, v in event_dict.items()}


#: The alarms already raised in the current failure streak of a daemon job (see :func:`alarm_streak`).
_STREAK: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("regsync_alarm_streak", default=None)


@contextlib.contextmanager
def alarm_streak(raised: set[str]) -> Iterator[None]:
    """While in the block (in this thread), an alarm (an event with ``alarm=True``) already in ``raised`` is
    logged as a repeat: ``alarm=False``, ``alarm_repeat=True``, level ``warning``; a new one is logged as it is and
    added to ``raised``. The daemon passes one set per job and clears it when a pass succeeds, so a credentials
    outage raises one alarm, not one per pass (issue 12, item 10).

    Args:
        raised: the events (their messages) alarmed in this streak; updated in place.
    """
    token = _STREAK.set(raised)
    try:
        yield
    finally:
        _STREAK.reset(token)


def repeat_alarm_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: inside :func:`alarm_streak`, an alarm raised already in the streak is a repeat."""
    raised = _STREAK.get()
    if raised is None or not event_dict.get("alarm"):
        return event_dict
    key = str(event_dict.get("event"))
    if key in raised:
        event_dict["alarm"] = False
        event_dict["alarm_repeat"] = True
        if event_dict.get("level") in ("error", "critical"):
            event_dict["level"] = "warning"
    else:
        raised.add(key)
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=sys.stderr)


def configure_logging(settings: LogSettings, *, force_json: bool | None = None) -> None:
    """Configure structlog and the standard library's logging for the process.

    Args:
        settings: level, format (``auto``, ``console``, ``json``) and masking.
        force_json: override the format (``True``: JSON lines, ``False``: console).
    """
    level = getattr(logging, settings.level.upper(), logging.INFO)
    use_json = settings.format == "json" or (settings.format == "auto" and not sys.stderr.isatty())
    if force_json is not None:
        use_json = force_json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        repeat_alarm_processor,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not settings.show_personal_data:
        processors.append(mask_processor)
    if use_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # sys.stderr is looked up at each call, so a replaced or reopened stderr is followed
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
