"""The mapping file: the shipped ones load; a bad one is refused naming the file and the key (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regsync.db.mapping.load import MappingError, load_mapping
from regsync.db.mapping.model import (
    CANONICAL,
    DateFormat,
    DateTimeFormat,
    FieldMap,
    HoursUnit,
    KindMap,
    PlatformMapping,
    ScopeRule,
    SoftDelete,
)


def test_reference_maps_every_canonical_field_to_its_own_column() -> None:
    m = load_mapping("reference")
    for kind, fields in CANONICAL.items():
        km = m.kinds[kind]  # type: ignore[index]
        assert km.key == "id" and km.key_type == "integer"
        assert {name: fm.column for name, fm in km.fields.items()} == {name: name for name in fields}


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "m.toml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_a_bad_field_is_named_with_file_and_key(tmp_path: Path) -> None:
    src = Path(load_mapping.__code__.co_filename).with_name("builtin") / "reference.toml"
    text = src.read_text(encoding="utf-8").replace('gender = { column = "gender" }',
                                                    'gender = { column = "gender", unit = "minutes" }')
    path = _write(tmp_path, text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert err.value.file == path
    assert "kinds.volunteer.fields.gender.unit" in str(err.value)


def test_an_unknown_key_and_a_missing_kind_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "x"\ncolour = 1\n[kinds.org]\ntable = "t"\nkey = "id"\n[kinds.org.fields]\n')
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    keys = [k for k, _ in err.value.problems]
    assert "colour" in keys


def test_a_missing_file_names_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="shipped mappings: .*reference"):
        load_mapping(str(tmp_path / "nope.toml"))


@pytest.mark.parametrize(("old", "new", "key"), [
    ('skills = { column = "skills", list = "json" }', 'skills = { column = "skills", list = "\\"" }',
     "kinds.volunteer.fields.skills"),
    ('gender = { column = "gender" }', 'gender = { column = "gender", write_values = { M = "1" } }',
     "kinds.volunteer.fields.gender"),
    ('starts_at = { column = "starts_at" }', 'starts_at = { column = "starts_at", format = "epoch_ms", tz = "+08:00" }',
     "kinds.activity.fields.starts_at.tz"),
    ('[kinds.activity]\ntable = "activity"', '[kinds.activity]\ntable = "activity"\nnew_key = "N{id}"',
     "kinds.activity"),
])
def test_inconsistent_options_are_refused(tmp_path: Path, old: str, new: str, key: str) -> None:
    src = Path(load_mapping.__code__.co_filename).with_name("builtin") / "reference.toml"
    text = src.read_text(encoding="utf-8")
    assert old in text
    path = _write(tmp_path, text.replace(old, new))
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert key in str(err.value)


def test_docs_name_every_key_format_and_unit() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "mapping.md").read_text(encoding="utf-8")
    for model in (PlatformMapping, KindMap, FieldMap, ScopeRule, SoftDelete):
        for name, info in model.model_fields.items():
            assert f"`{info.alias or name}`" in docs, (model.__name__, name)
    for literal in (DateFormat, DateTimeFormat, HoursUnit):
        for value in literal.__args__:  # type: ignore[attr-defined]
            assert f"`{value}`" in docs, value
    for kind, fields in CANONICAL.items():
        for field in fields:
            assert f"`{field}`" in docs, (kind, field)
