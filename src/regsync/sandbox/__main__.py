"""``python -m regsync.sandbox``: the sandbox CLI (see :mod:`regsync.sandbox.cli`)."""

from regsync.sandbox.cli import app

app(prog_name="regsync-sandbox")
