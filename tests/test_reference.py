"""docs/reference.md is generated from the schema and kept current."""

from __future__ import annotations

from pathlib import Path

from negosim.scenario.reference import markdown
from negosim.scenario.schema import json_schema, model_schema

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def test_the_committed_reference_is_current():
    assert REFERENCE.read_text(encoding="utf-8") == markdown(), (
        "docs/reference.md is stale: run python scripts/reference.py > docs/reference.md"
    )


def test_every_field_of_the_schema_is_in_the_reference():
    text = markdown()
    schema = model_schema()
    for d in [schema, *schema["$defs"].values()]:
        for field in d.get("properties", {}):
            assert f"| `{field}` |" in text, field
    for name in schema["$defs"]:
        assert f"## {name}" in text or f"### {name}" in text, name


def test_the_editor_schema_has_the_same_fields_as_the_reference():
    """``negosim schema`` (which lets bases and extending cases leave values out) names
    exactly the fields of the complete schema the reference is made from."""

    def fields(schema: dict) -> set[str]:
        return {f for d in [schema, *schema["$defs"].values()] for f in d.get("properties", {})}

    assert fields(json_schema()) == fields(model_schema())
