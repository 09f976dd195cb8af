"""Every admin endpoint the sandbox registers is documented in ``docs/sandbox.md`` (issue 15, point 8), each with an
example, and the page names no endpoint the sandbox does not have: a new endpoint cannot go undocumented."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from regsync.sandbox.app import create_app
from regsync.sandbox.store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
#: A section of one endpoint: ``### `METHOD /_sandbox/path```.
HEADING = re.compile(r"^### `([A-Z]+) (/_sandbox/\S*)`$", re.MULTILINE)


def _shape(path: str) -> str:
    """The path with its parameters unnamed (the code says ``{rid}``, the page ``{id}``)."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def admin_routes() -> set[tuple[str, str]]:
    """(method, path shape) of every admin route of a sandbox app made with ``admin=True`` (``HEAD`` is the
    framework's, beside every ``GET``)."""
    store = Store("sqlite://")
    try:
        app = create_app("", [], admin=True, store=store)
        return {(method, _shape(r.path)) for r in app.routes if isinstance(r, Route) and r.path.startswith("/_sandbox")
                for method in r.methods or () if method != "HEAD"}
    finally:
        store.close()


def documented() -> dict[tuple[str, str], str]:
    """(method, path shape) → the text of its section in the page."""
    text = DOC.read_text(encoding="utf-8")
    heads = list(HEADING.finditer(text))
    return {(m[1], _shape(m[2])): text[m.end():nxt.start() if nxt else len(text)]
            for m, nxt in zip(heads, [*heads[1:], None], strict=True)}


def test_every_admin_route_is_documented_and_every_documented_one_exists() -> None:
    routes, docs = admin_routes(), documented()
    assert len(routes) >= 17  # the reset, counters, faults, portal, records, foreign, clients and tokens routes
    assert sorted(routes - set(docs)) == [], "admin routes missing from docs/sandbox.md"
    assert sorted(set(docs) - routes) == [], "docs/sandbox.md names routes the sandbox does not have"


def test_each_endpoints_section_says_its_body_answer_and_use_with_a_curl_example() -> None:
    for (method, path), section in documented().items():
        for part in ("**Answer**", "**For**", "curl -s"):
            assert part in section, (method, path, part)
        assert method == "GET" or "**Body**" in section, (method, path)
        example = path.removeprefix("/_sandbox").split("{}")[0]
        assert f"$B{example}" in section, (method, path)  # the example calls this endpoint
