"""Times as people read them: the database keeps naive UTC, people read Asia/Shanghai (+08:00)."""

from __future__ import annotations

import datetime as dt

from regsync.i18n import gettext as _

#: Asia/Shanghai, as a fixed offset (China keeps no daylight saving time).
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def to_local(value: dt.datetime | str | None) -> dt.datetime | None:
    """A naive UTC time from the database as an aware Asia/Shanghai (+08:00) time; ``None`` stays."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates can come back as text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC).astimezone(SHANGHAI)


def format_age(seconds: int | None) -> str:
    """``3d 4h``, ``2h 5m``, ``40s``: an age (``seconds``, a count of seconds; ``None``: unknown, ``—``) for a
    terminal, in the language in force (Chinese: ``3 天 4 小时``, ``9 分 11 秒``). Negative ages read as 0."""
    if seconds is None:
        return "—"
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("{days}d {hours}h").format(days=days, hours=hours)
    if hours:
        return _("{hours}h {minutes}m").format(hours=hours, minutes=minutes)
    if minutes:
        return _("{minutes}m {seconds}s").format(minutes=minutes, seconds=secs)
    return _("{seconds}s").format(seconds=secs)
