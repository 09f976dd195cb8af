"""The house plan (issue 13): import-linter's contracts in pyproject.toml ([tool.importlinter]) hold: the parts
import only the parts below them, the sandbox shares only the domain, Typer and Rich stay in the console, and no
import cycle runs among regsync's modules (imports inside functions included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    pytest.importorskip("importlinter", reason="import-linter is not installed (pip install -e '.[test]')")
    res = subprocess.run(  # noqa: S603 — a fixed command line
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
         "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, f"import-linter found broken contracts:\n{res.stdout[-8000:]}{res.stderr[-4000:]}"
    assert "broken" in res.stdout and "0 broken" in res.stdout
