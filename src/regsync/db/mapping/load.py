"""Reading a mapping file: TOML, validated, every error naming the file and the key (issue 14, item 6).

A mapping is named by a path (``/etc/regsync/platform.toml``) or by the name of one shipped with regsync
(``reference``, ``legacy``: ``config/mappings/``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from regsync.db.mapping.model import PlatformMapping

#: The folder of the mappings shipped with regsync (``config/mappings/`` links to it).
BUILTIN = Path(__file__).with_name("builtin")

#: The mapping of the reference schema, which the embedded demo uses by default.
REFERENCE = "reference"


class MappingError(Exception):
    """A mapping file cannot be used: it is missing, not TOML, or does not fit the mapping's shape (exit code 2).

    Attributes:
        file: the file's path.
        problems: ``(key, message)`` pairs, the key dotted (``kinds.volunteer.fields.gender.values``).
    """

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = "; ".join(f"{key}: {msg}" if key else msg for key, msg in problems)
        super().__init__(f"mapping {file}: {lines}")


def mapping_path(name_or_path: str) -> Path:
    """The file of a mapping named ``name_or_path``: a shipped mapping's name (``reference``), else a path."""
    if "/" not in name_or_path and not name_or_path.endswith(".toml"):
        return BUILTIN / f"{name_or_path}.toml"
    return Path(name_or_path)


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join("in" if part == "in_" else str(part) for part in loc)


def read_mapping(name_or_path: str) -> tuple[Path, bytes]:
    """The file of a mapping (:func:`mapping_path`) and its bytes, unparsed.

    Raises:
        MappingError: the file is missing or unreadable.
    """
    path = mapping_path(name_or_path)
    try:
        return path, path.read_bytes()
    except FileNotFoundError:
        shipped = ", ".join(sorted(p.stem for p in BUILTIN.glob("*.toml")))
        raise MappingError(str(path), [("", f"no such file (shipped mappings: {shipped})")]) from None
    except OSError as exc:
        raise MappingError(str(path), [("", str(exc))]) from None


def parse_mapping(path: Path, data: bytes) -> PlatformMapping:
    """A mapping file's bytes (:func:`read_mapping`), read as UTF-8 TOML and validated.

    Raises:
        MappingError: not UTF-8 TOML, or does not fit (every problem, keyed).
    """
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MappingError(str(path), [("", f"not UTF-8: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(str(path), [("", f"not TOML: {exc}")]) from None
    try:
        return PlatformMapping.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append((_key(tuple(err["loc"])), msg))
        raise MappingError(str(path), problems) from None


def load_mapping(name_or_path: str) -> PlatformMapping:
    """Read and validate a mapping.

    Args:
        name_or_path: a shipped mapping's name or a TOML file's path.

    Raises:
        MappingError: the file is missing or unreadable, not TOML, or does not fit (every problem, keyed).
    """
    return parse_mapping(*read_mapping(name_or_path))
