"""``--help`` in the language in force (issue 15, point 1): the commands' help, options' help and epilogs.

Typer reads a command's help when the command is declared, at import, before ``--lang`` is known; so the help is
declared in English as usual (``help="…"``, or the function's docstring) and translated when the command line is
run: :func:`choose_language` reads ``--lang`` from the arguments (else ``REGSYNC_LANG``), then :func:`translate_help`
walks the Click command tree and replaces each text with its translation from the catalog, found by the English
text itself. A text with no translation stays as it is.

:func:`extract` is the Babel extractor that puts those texts in the catalog (``babel.cfg`` names it for the
console's modules): the messages Babel's own Python extractor finds, plus every constant ``help=``, ``epilog=`` and
``short_help=`` argument and the docstring of every function declared as a command, as Click will hold them.
:func:`regsync.settings.env_epilog` and :func:`regsync.settings.env_help` are :class:`regsync.i18n.Phrase`, a
template and its settings, translated as such.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Collection, Iterator, Sequence
from typing import IO, Any

from babel.messages.extract import extract_python
from typer import rich_utils

from regsync.i18n import Phrase, gettext, set_language
from regsync.i18n import gettext_noop as N_

__all__ = ["HELP_KEYWORDS", "TYPER_WORDS", "choose_language", "extract", "translate_help"]

#: The keyword arguments of Typer and Click that hold help text.
HELP_KEYWORDS = frozenset({"help", "epilog", "short_help"})
_COMMAND_DECORATORS = frozenset({"command"})


def choose_language(args: Sequence[str]) -> str:
    """The language of ``--lang X`` or ``--lang=X`` among ``args`` (else ``REGSYNC_LANG``, else zh-CN), set for
    this process and returned. An unknown one is left to the option's own check (which names the languages).
    """
    chosen: str | None = None
    for i, arg in enumerate(args):
        if arg == "--lang" and i + 1 < len(args):
            chosen = args[i + 1]
        elif arg.startswith("--lang="):
            chosen = arg.split("=", 1)[1]
    try:
        return set_language(chosen)
    except ValueError:
        return set_language(None) if chosen else "zh_CN"


#: Typer's own words around the help (its module constants, read when the help is drawn), in English as Typer has
#: them; :func:`translate_help` sets them in the language in force. Click's "Show this message and exit." is Click's
#: own and stays as it is.
TYPER_WORDS = {"ARGUMENTS_PANEL_TITLE": N_("Arguments"), "OPTIONS_PANEL_TITLE": N_("Options"),
               "COMMANDS_PANEL_TITLE": N_("Commands"), "ERRORS_PANEL_TITLE": N_("Error"),
               "ABORTED_TEXT": N_("Aborted."), "REQUIRED_LONG_STRING": N_("[required]"),
               "DEFAULT_STRING": N_("[default: {}]")}


def _typer_words() -> None:
    for name, text in TYPER_WORDS.items():
        if hasattr(rich_utils, name):
            setattr(rich_utils, name, gettext(text))


def _translated(text: Any) -> Any:
    if text is None:
        return None
    phrase = Phrase.of(str(text))
    if phrase is not None:
        return phrase.translated()
    return gettext(inspect.cleandoc(str(text)))


def translate_help(command: Any) -> Any:
    """Translate ``command``'s help, short help and epilog, its parameters' help, and those of its subcommands, in
    place, into the language in force. Returns ``command``.

    ``command`` is a Click command as Typer builds it (:func:`typer.main.get_command`); Typer carries a Click of
    its own, so the tree is walked by its attributes (``help``, ``params``, ``commands``), not by Click's classes.
    """
    for attr in ("help", "short_help", "epilog"):
        setattr(command, attr, _translated(getattr(command, attr, None)))
    for param in getattr(command, "params", ()):
        if getattr(param, "help", None):  # options, and Typer's arguments
            param.help = _translated(param.help)
    for sub in (getattr(command, "commands", None) or {}).values():
        translate_help(sub)
    _typer_words()
    return command


def _strings(node: ast.expr) -> Iterator[str]:
    """The constant text of a help argument (a help made of parts is a :class:`regsync.i18n.Phrase`, whose
    template is marked where it is made)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value


def extract(fileobj: IO[bytes], keywords: Any, comment_tags: Collection[str],
            options: Any) -> Iterator[tuple[Any, ...]]:
    """Babel's extractor for the console's modules: Babel's Python extractor, then the help texts (module
    docstring above). Yields ``(line, function name, message, comments)`` as Babel expects."""
    source = fileobj.read()
    fileobj.seek(0)
    yield from extract_python(fileobj, keywords, comment_tags, options)
    tree = ast.parse(source)
    registered = {call.args[0].id for call in ast.walk(tree)  # ``app.command(…)(function)``
                  if isinstance(call, ast.Call) and isinstance(call.func, ast.Call)
                  and isinstance(call.func.func, ast.Attribute) and call.func.func.attr in _COMMAND_DECORATORS
                  and not any(k.arg == "help" for k in call.func.keywords)
                  and call.args and isinstance(call.args[0], ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in HELP_KEYWORDS:
            for text in _strings(node.value):
                if text.strip():
                    yield node.value.lineno, None, inspect.cleandoc(text), []
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            decorators = [d for d in node.decorator_list
                          if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)]
            if any(d.func.attr == "callback" or any(k.arg == "help" for k in d.keywords)  # type: ignore[attr-defined]
                   for d in decorators):
                continue  # the group's callback, or a command whose help is given: its docstring is not shown
            typed = any("typer.Option" in ast.unparse(a.annotation) or "typer.Argument" in ast.unparse(a.annotation)
                        for a in node.args.args if a.annotation is not None)  # a command however registered
            declared = typed or node.name in registered or any(
                d.func.attr in _COMMAND_DECORATORS for d in decorators)  # type: ignore[attr-defined]
            doc = ast.get_docstring(node, clean=True)
            if declared and doc:
                yield node.lineno, None, doc, []
