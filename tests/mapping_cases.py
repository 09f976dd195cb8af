"""Mappings for the mapping's tests: the reference mapping with one kind changed, validated as a file would be."""

from __future__ import annotations

from typing import Any

from regsync.db.mapping.load import load_mapping
from regsync.db.mapping.model import FieldMap, PlatformMapping


def mapping_with(changes: dict[str, dict[str, Any]]) -> PlatformMapping:
    """The reference mapping with, per kind, keys of the kind replaced (``table``, ``key``, ``key_type``,
    ``scope``…) and ``fields`` merged in (field → FieldMap dict, as in TOML), validated."""
    raw = load_mapping("reference").model_dump(by_alias=True, exclude_defaults=True)
    for kind, change in changes.items():
        km = raw["kinds"][kind]
        for key, value in change.items():
            if key == "fields":
                km["fields"].update(value)
            else:
                km[key] = value
    return PlatformMapping.model_validate(raw)


def field_map(**keys: Any) -> FieldMap:
    """A FieldMap from TOML-like keys (``list`` included)."""
    return FieldMap.model_validate(keys)
