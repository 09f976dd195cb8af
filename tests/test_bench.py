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
    # issue 17: the loop's CPU seconds beside it, and the CPU per record divided by them against the target
    figures = re.findall(r"relay CPU (\d+) µs/record \(user \+ system [\d.]+ s for ([\d,]+) records pushed\); "
                         r"loop (\d+\.\d+) s; CPU/record ÷ loop ([\d.]+) µs/s \(issue 17: ≤ (\d+)\)", proc.stdout)
    assert len(runs) == len(figures) == 1, proc.stdout
    cpu_us, pushed, loop_s, normalized, target = figures[0]
    assert int(cpu_us) > 0 and int(pushed.replace(",", "")) > 0 and float(loop_s) > 0, figures
    assert abs(float(normalized) - int(cpu_us) / float(loop_s)) <= 1 + 0.01 * float(normalized) and int(target) == 110
