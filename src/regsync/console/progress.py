"""Progress bars on stderr (Rich), drawn from the flows' :class:`regsync.flows.runs.Advance` callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regsync.console.summaries import kind_word
from regsync.flows.runs import Advance, no_progress

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Advance]:
    """A Rich progress display on stderr; yields ``advance(label, n, total)``, a label being a kind (singular or
    plural) shown in words. A no-op when disabled."""
    if not enabled:
        yield no_progress
        return
    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        def advance(label: str, n: int, total: int | None = None) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(kind_word(label), total=total)
            elif total is not None:
                bar.update(tasks[label], total=total)
            bar.advance(tasks[label], n)

        yield advance
