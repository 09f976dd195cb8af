"""What the commands share (``regsync …`` and ``regsync platform …``): the settings loaded and checked, the logs
configured, the errors a command's user can act on turned into exit codes (design.md, "Operator commands": 2 a usage
or configuration error, 1 an unusable local store), and the local store opened."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine

from regsync.db.store import StoreError, open_store
from regsync.i18n import explain
from regsync.i18n import gettext as _
from regsync.service.logs import configure_logging
from regsync.settings import ConfigError, DatabaseSettings, Settings, load_settings

err = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (or REGSYNC_CONFIG).",
                                                exists=False, dir_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who, for the audit table (default: OS user).")]


def cell(value: Any) -> str:
    """A value as a table cell shows it: ``—`` for none, a list's items joined by commas (``[]`` for an empty one),
    anything else as its text."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    return str(value)


def print_json(data: Any) -> None:
    """Write ``data`` as one JSON object on stdout (keys sorted, UTF-8 as is, other values as their text)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def print_error(prefix: str, message: BaseException | str, *, style: str = "red") -> None:
    """One error line on stderr: ``prefix`` (already in the language in force, e.g. ``_("usage error:")``) in
    ``style``, then ``message``: an exception as a person reads it (:func:`regsync.i18n.explain`: its translated
    text when it has one, else its own words), or a text. Neither is read as Rich markup."""
    text = explain(message) if isinstance(message, BaseException) else message
    err.print(f"[{style}]" + escape(prefix) + f"[/{style}] " + escape(text), highlight=False)


def load_checked(config: Path | None) -> Settings:
    """The settings (:func:`regsync.settings.load_settings`), checked; each warning (a ``REGSYNC_*`` variable that
    names no setting…) on stderr.

    Raises:
        typer.Exit: code 2 on a configuration error, printed with the setting named.
    """

    def warn(message: str) -> None:
        print_error(_("configuration warning:"), explain(message), style="yellow")

    try:
        return load_settings(config, warn=warn)
    except ConfigError as exc:
        print_error(_("configuration error:"), exc)
        raise typer.Exit(2) from exc


def setup(config: Path | None, json_output: bool = False) -> Settings:
    """:func:`load_checked`, then the logs configured by the settings' ``[log]``. Logs go to stderr, so that under
    ``--json`` (``json_output``) stdout holds only the JSON.

    Raises:
        typer.Exit: code 2 on a configuration error.
    """
    settings = load_checked(config)
    configure_logging(settings.log)
    return settings


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    """Report the errors a command's user can act on, with their exit codes: a configuration error (2), an
    unusable local store (1); no traceback.

    Raises:
        typer.Exit: code 2 for a :class:`~regsync.settings.ConfigError`, 1 for a
            :class:`~regsync.db.store.StoreError` raised in the block.
    """
    try:
        yield
    except ConfigError as exc:
        print_error(_("configuration error:"), exc)
        raise typer.Exit(2) from exc
    except StoreError as exc:
        print_error(_("local store:"), exc)
        raise typer.Exit(1) from exc


def open_checked_store(settings: Settings, *, migrated: bool = True, database: DatabaseSettings | None = None
                       ) -> Engine:
    """The local store of ``settings`` (:func:`regsync.db.store.open_store`; ``migrated``: require the newest
    schema; ``database``: other ``[database]`` settings than ``settings``'), the caller disposes of it.

    Raises:
        typer.Exit: code 2 for a bad ``database.url``, 1 for a store that cannot be used (:func:`command_errors`).
    """
    with command_errors():
        return open_store(database or settings.database, migrated=migrated)


__all__ = ["ActorOpt", "ConfigOpt", "JsonOpt", "cell", "command_errors", "err", "load_checked", "open_checked_store",
           "print_error", "print_json", "setup"]
