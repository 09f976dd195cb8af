"""The messages marked for translation in regsync's sources, as Babel extracts them (tests/test_i18n.py)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

SRC = Path(__file__).resolve().parent.parent / "src" / "regsync"
HELP = "regsync.console.helptext:extract"
METHODS = [("sandbox/cli.py", HELP), ("sandbox/**.py", "ignore"), ("console/**.py", HELP), ("**.py", "python"),
           ("**/templates/**.j2", "jinja2")]
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "N_": None, "gettext_noop": None}
PLACEHOLDER = re.compile(r"\{(\w*)(?:[:!][^{}]*)?\}")


def extracted() -> dict[str, list[str]]:
    """Each message id (the singular, for a plural) → where it is (``path:line``)."""
    found: dict[str, list[str]] = {}
    for path, line, message, _comments, _context in extract_from_dir(str(SRC), METHODS, keywords=KEYWORDS):
        for msgid in (message if isinstance(message, tuple) else (message,))[:1]:
            if msgid:
                found.setdefault(msgid, []).append(f"{path}:{line}")
    return found


def catalog(lang: str = "zh_CN"):  # type: ignore[no-untyped-def]
    """The ``.po`` catalog of ``lang`` as Babel reads it."""
    with (SRC / "locale" / lang / "LC_MESSAGES" / "regsync.po").open("rb") as fp:
        return read_po(fp, locale=lang)


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of a message (``{{`` escapes left out)."""
    return set(PLACEHOLDER.findall(text.replace("{{", "").replace("}}", "")))


_NOT_PROSE = [
    re.compile(r"`[^`]*`"),  # commands and names quoted as code
    re.compile(r"\b\w+://\S+"),  # URLs
    re.compile(r"(?:[\w.~-]*/)+[\w.-]*"),  # paths
    re.compile(r"--[\w-]+(?:[ =][\w.:-]+)?"),  # options and their value
    re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b"),  # codes and variables (INVALID_PHONE, REGSYNC_LANG)
    re.compile(r"\b\w+(?:_\w+)+\b"),  # snake_case names (field and kind codes)
    re.compile(r"\b\w+(?:[.:-]\w+)+\b"),  # dotted names, kinds with ids, dates
]
_ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?:[ ,;'()]+[A-Za-z]{2,}){2,}\b")


def english_sentences(text: str) -> list[str]:
    """Runs of three or more English words in ``text`` once code, URLs, paths, options, codes and identifiers are
    left out: what a reader of the Chinese output would see as an untranslated sentence."""
    for pattern in _NOT_PROSE:
        text = pattern.sub(" ", text)
    return _ENGLISH_RUN.findall(text)
