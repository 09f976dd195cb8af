"""The benches' own output (bench/): what a reader compares between runs and machines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_sync_throughput_prints_the_relays_cpu_per_record_and_a_yardstick() -> None:
    """Beside each run: the relay's CPU time per record pushed (the bench process's own user + system time) and the
    CPU time of a plain Python loop from the same process; the figures themselves are the machine's."""
    proc = subprocess.run([sys.executable, str(BENCH / "sync_throughput.py"), "--scale", "0.0002", "--db", "sqlite"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    runs = [line for line in proc.stdout.splitlines() if line.startswith("sqlite ")]
    figures = re.findall(r"relay CPU (\d+) µs/record \(user \+ system [\d.]+ s for ([\d,]+) records pushed\); "
                         r"yardstick loop (\d+\.\d\d) s", proc.stdout)
    assert len(runs) == len(figures) == 1, proc.stdout
    cpu_us, pushed, loop_s = figures[0]
    assert int(cpu_us) > 0 and int(pushed.replace(",", "")) > 0 and float(loop_s) > 0, figures
