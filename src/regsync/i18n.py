"""What people read, in their language: gettext catalogs made with Babel, Simplified Chinese by default.

People (operators, managers, the cities and organizations they pass work to) read Chinese; code, JSON keys,
codes and logs stay English, since they are the machine interface (issue 15, point 1). Every sentence a person
reads is written in English in the code, marked with :func:`gettext` (``_``), and translated by the catalog
``src/regsync/locale/<lang>/LC_MESSAGES/regsync.po``:

* ``pybabel extract -F babel.cfg -o src/regsync/locale/regsync.pot src/regsync`` collects the marked messages
  (Python and the Jinja2 templates), ``pybabel update -i src/regsync/locale/regsync.pot -d src/regsync/locale
  -D regsync`` merges them into each catalog, and the build (``setup.py``'s ``build_py``, run by ``pip install``,
  editable or not) compiles the ``.mo`` files beside them. A ``.po`` newer than its ``.mo`` (or a ``.mo`` not yet
  built) is compiled in memory when loaded, so an edited catalog is read as it is.
* ``tests/test_i18n.py`` fails when a marked message has no Chinese translation, or is fuzzy.

The language is chosen once per process (or per context: a :class:`contextvars.ContextVar`): ``--lang`` on the
command line, else ``REGSYNC_LANG``, else ``zh_CN``. ``zh-CN``, ``zh_CN``, ``zh``, ``zh-Hans`` name Chinese;
``en``, ``en-US``, ``en_GB`` English. Messages use named placeholders filled after translation
(``_("{count} records pushed").format(count=n)``), never f-strings inside ``_()``, so that a translator can
move the words around them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any, cast

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

__all__ = [
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "ENV_VAR",
    "LANGUAGES",
    "LOCALE_DIR",
    "Message",
    "Phrase",
    "TranslatableError",
    "UnknownLanguage",
    "explain",
    "gettext",
    "gettext_noop",
    "html_lang",
    "language",
    "lazy_gettext",
    "ngettext",
    "normalize_language",
    "set_language",
    "translations",
    "use_language",
]

DOMAIN = "regsync"
"""The catalogs' gettext domain (``regsync.po`` / ``regsync.mo``)."""
LOCALE_DIR = Path(__file__).parent / "locale"
"""Where the catalogs are: ``<LOCALE_DIR>/<lang>/LC_MESSAGES/regsync.po``."""
LANGUAGES = ("zh_CN", "en")
"""The languages regsync speaks; the first is the default."""
DEFAULT_LANGUAGE = "zh_CN"
ENV_VAR = "REGSYNC_LANG"
"""The environment variable that chooses the language when ``--lang`` is not given."""

_ALIASES = {"zh": "zh_CN", "zh_cn": "zh_CN", "zh_hans": "zh_CN", "zh_hans_cn": "zh_CN", "cn": "zh_CN",
            "en": "en", "en_us": "en", "en_gb": "en", "c": "en", "posix": "en"}


class UnknownLanguage(ValueError):
    """A language regsync has no catalog for (it speaks ``zh-CN`` and ``en``)."""


def normalize_language(value: str) -> str:
    """``"zh-CN"`` → ``"zh_CN"``, ``"en-US"`` → ``"en"``, a POSIX locale (``zh_CN.UTF-8``) likewise.

    Raises:
        UnknownLanguage: for a language regsync does not speak.
    """
    key = value.strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("zh"):
        return "zh_CN"
    if key.startswith("en"):
        return "en"
    raise UnknownLanguage(f"unknown language {value!r}: regsync speaks zh-CN (the default) and en")


def _from_environment() -> str:
    raw = os.environ.get(ENV_VAR, "").strip()
    return normalize_language(raw) if raw else DEFAULT_LANGUAGE


_language: ContextVar[str | None] = ContextVar("regsync_language", default=None)


def language() -> str:
    """The language in force: the one set by :func:`set_language`, else ``REGSYNC_LANG``, else ``zh_CN``.

    An unknown ``REGSYNC_LANG`` falls back to the default rather than failing where nobody can answer; the
    command line checks it up front (:func:`set_language` with ``None``).
    """
    chosen = _language.get()
    if chosen is not None:
        return chosen
    try:
        return _from_environment()
    except UnknownLanguage:
        return DEFAULT_LANGUAGE


def set_language(value: str | None) -> str:
    """Choose the language for this context; ``None`` takes ``REGSYNC_LANG`` (or the default). Returns it.

    Raises:
        UnknownLanguage: for a language regsync does not speak (named in the message, with the ones it does).
    """
    chosen = normalize_language(value) if value else _from_environment()
    _language.set(chosen)
    return chosen


@contextmanager
def use_language(value: str) -> Iterator[str]:
    """Within the block, speak ``value`` (for a report made in another language than the terminal's)."""
    token = _language.set(normalize_language(value))
    try:
        yield _language.get() or DEFAULT_LANGUAGE
    finally:
        _language.reset(token)


@cache
def _load(lang: str) -> NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if po.exists():  # not built yet, or edited since: compile it in memory (the build writes the .mo)
        with po.open("rb") as fp:
            catalog = read_po(fp, locale=lang, domain=DOMAIN)
        buf = io.BytesIO()
        write_mo(buf, catalog, use_fuzzy=False)
        buf.seek(0)
        return Translations(buf, domain=DOMAIN)
    return NullTranslations()  # English: the messages are written in it


def translations(lang: str | None = None) -> NullTranslations:
    """The catalog of ``lang`` (default: :func:`language`), for Jinja2's ``install_gettext_translations``."""
    return _load(normalize_language(lang) if lang else language())


def gettext(message: str) -> str:
    """``message`` (English) in the language in force."""
    return translations().ugettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the language in force (Chinese has one form)."""
    return translations().ungettext(singular, plural, n)


def gettext_noop(message: str) -> str:
    """``message`` as it is: marks a template kept in English (JSON, logs) and translated where a person reads it
    (``gettext(template).format(**params)``)."""
    return message


def lazy_gettext(message: str) -> Any:
    """A message translated when it is turned into text, for module-level tables built before ``--lang``."""
    return LazyProxy(gettext, message, enable_cache=False)


def html_lang(lang: str | None = None) -> str:
    """The BCP 47 tag of ``lang`` (default: the language in force) for ``<html lang>``: ``zh-CN`` or ``en``."""
    return {"zh_CN": "zh-CN", "en": "en"}[normalize_language(lang) if lang else language()]


def _explained(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each value that has a ``text()`` (a :class:`Message` nested in another) as that text."""
    return {k: explain(v) if callable(getattr(v, "text", None)) else v for k, v in params.items()}


class TranslatableError(Exception):
    """An error whose message is an English template and its parameters: ``str(exc)`` is the English sentence (what
    JSON and the logs carry), :meth:`text` the same sentence in the language in force (what a person reads on a
    terminal; issue 15, point 1).

    Raise it as ``SomeError(gettext_noop("no conflict {id}"), id=7)``: the template is marked for the catalog and
    translated where it is shown, the parameters filled after translation. Raised with a finished sentence and no
    parameters (older code, messages carrying text from below), :meth:`text` translates it if the catalog has it and
    shows it as it is otherwise; such a sentence is never formatted, so braces in it are safe.

    Attributes:
        template: the English message, with ``{name}`` placeholders when ``params`` is not empty.
        params: the values of the placeholders (``str.format`` fields, ``!r`` conversions allowed).
    """

    def __init__(self, template: str = "", /, **params: Any) -> None:
        self.template = template
        self.params = params
        super().__init__(template.format(**params) if params else template)

    def text(self) -> str:
        """The message in the language in force (English when the catalog does not have it)."""
        if not self.template:
            return str(self)
        translated = gettext(self.template)
        return translated.format(**_explained(self.params)) if self.params else translated


class Message(str):
    """A sentence that is its English text (a ``str``: for logs and for any callback that takes text) and knows its
    template and parameters, so that :meth:`text` gives it in the language in force; for warnings handed on as
    text (``load_settings(warn=...)``).

    Attributes:
        template: the English message, with ``{name}`` placeholders when ``params`` is not empty.
        params: the values of the placeholders.
    """

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, /, **params: Any) -> Message:
        """The English text of ``template`` filled with ``params`` (as it is when there are none)."""
        obj = super().__new__(cls, template.format(**params) if params else template)
        obj.template = template
        obj.params = params
        return obj

    def text(self) -> str:
        """The message in the language in force (English when the catalog does not have it)."""
        translated = gettext(self.template)
        return translated.format(**_explained(self.params)) if self.params else translated


class Phrase(Message):
    """A :class:`Message` that can be found again by its English text (:meth:`of`): a help text declared at import,
    before ``--lang`` is known, which a library may hand back as a plain ``str`` (Typer's group help); translated
    when shown (:func:`regsync.console.helptext.translate_help`)."""

    #: The phrases made, by their English text, at most :data:`_KEPT` (help texts are made once, at import).
    made: dict[str, Phrase] = {}
    _KEPT = 1024

    def __new__(cls, template: str, /, **params: Any) -> Phrase:
        """The English text of ``template`` filled with ``params``, remembered by that text."""
        made = cast(Phrase, super().__new__(cls, template, **params))
        if len(cls.made) < cls._KEPT:
            cls.made[str(made)] = made
        return made

    @classmethod
    def of(cls, text: str) -> Phrase | None:
        """The phrase whose English text is ``text``, if one was made."""
        return text if isinstance(text, Phrase) else cls.made.get(text)

    def translated(self) -> str:
        """The text in the language in force (:meth:`Message.text`)."""
        return self.text()


def explain(item: object) -> str:
    """What a person reads of ``item`` (an exception, a :class:`Message`, any text): its ``text()`` when it has
    one (:meth:`TranslatableError.text`, :meth:`Message.text`), else ``str(item)``."""
    text = getattr(item, "text", None)
    return text() if callable(text) else str(item)
