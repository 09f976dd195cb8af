"""What every CPU bench prints beside its figures (issue 17): the machine-speed loop, the figures normalized by it,
and the ``--profile`` text (cProfile's top functions by cumulative and by own time).

Issue 17's targets are for a machine where the loop takes 0.73 s; elsewhere the CPU per record pushed divided by
the loop's seconds is at most 110 µs per loop-second (SQLite; 80 µs / 0.73 s), and the reconcile's registry
records/s times the loop's seconds is at least 36 500 (50 000/s × 0.73 s).

Imported by the bench scripts (``python bench/x.py`` puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from pathlib import Path

#: The loop's seconds on the machine where issue 17's "now" was measured and its targets set.
REFERENCE_LOOP_S = 0.73


def _loop() -> int:
    s = 0
    for i in range(20_000_000):
        s += i
    return s


def loop_seconds() -> float:
    """The CPU time (``time.process_time``, seconds) of ``s = 0; for i in range(20_000_000): s += i`` inside a
    function: issue 17's machine-speed yardstick. Run it when the process's other threads are idle (after the
    measured work), or their CPU is counted too."""
    t0 = time.process_time()
    _loop()
    return time.process_time() - t0


#: Issue 17's targets of the push's CPU per record (µs, where the loop takes 0.73 s), by (database, mapping).
CPU_TARGET_US = {("sqlite", "reference"): 80, ("postgresql", "reference"): 60, ("sqlite", "legacy"): 90}


def cpu_target_normalized(db: str, platform: str) -> float | None:
    """Issue 17's target of CPU µs per record ÷ loop seconds for ``db`` and ``platform`` (``None``: no target)."""
    target = CPU_TARGET_US.get((db, platform))
    return None if target is None else round(target / REFERENCE_LOOP_S)


def cpu_per_record_normalized(us_per_record: float, loop_s: float) -> float:
    """CPU µs per record pushed ÷ the loop's seconds (issue 17: ≤ 110 on SQLite)."""
    return us_per_record / loop_s


def reconcile_normalized(records_per_s: float, loop_s: float) -> float:
    """Reconcile's registry records/s × the loop's seconds (issue 17: ≥ 36 500)."""
    return records_per_s * loop_s


def write_profile(profiler: cProfile.Profile, path: Path, title: str, top: int = 30) -> None:
    """Write ``title`` and the profile's ``top`` functions by cumulative time, then by own time, to ``path``
    (appended, so several runs can share one file)."""
    out = io.StringIO()
    out.write(f"==== {title}\n\n-- by cumulative time\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    out.write("\n-- by own time (tottime)\n")
    stats.sort_stats("tottime").print_stats(top)
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(out.getvalue())
