"""The type checker over src/ (issue 13, "A type checker … with zero errors"): mypy with the configuration in
pyproject.toml ([tool.mypy]: its strictness is stated there). The suite fails as soon as a type error comes in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_type_error_in_src() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    res = subprocess.run(  # noqa: S603 — a fixed command line
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary",
         "--hide-error-context"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, f"mypy found type errors:\n{res.stdout}{res.stderr}"
