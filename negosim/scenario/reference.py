"""The reference of the scenario format, generated from the JSON Schema as Markdown.

``python scripts/reference.py > docs/reference.md`` writes docs/reference.md;
a test requires the committed file to equal :func:`markdown`, so the
reference cannot drift from the schema (negosim/schema.py). The prose guide
to the same format is docs/scenario-format.md.
"""

from __future__ import annotations

from typing import Any

from .schema import model_schema

_DIST = "distribution"


def _anchor(name: str) -> str:
    return f"[{name}](#{name.lower()})"


def _type(p: dict[str, Any], refs: list[str]) -> str:
    """A short type description; ``refs`` collects the definitions it mentions."""
    if "$ref" in p:
        name = p["$ref"].rsplit("/", 1)[-1]
        refs.append(name)
        return _anchor(name)
    if "discriminator" in p:
        for option in p.get("oneOf", []):
            _type(option, refs)
        return f"[{_DIST}](#distributions)"
    if "anyOf" in p:
        parts = [_type(x, refs) for x in p["anyOf"] if x.get("type") != "null"]
        return " or ".join(dict.fromkeys(parts))
    if "enum" in p:
        return "one of " + ", ".join(f"`{v}`" for v in p["enum"])
    if "const" in p:
        return f"`{p['const']}`"
    t = p.get("type")
    if t == "array":
        return f"list of {_type(p.get('items', {}), refs)}"
    if t == "object":
        inner = p.get("patternProperties") or {}
        if inner:
            return f"mapping: id → {_type(next(iter(inner.values())), refs)}"
        extra = p.get("additionalProperties")
        if isinstance(extra, dict):
            return f"mapping: id → {_type(extra, refs)}"
        return "mapping"
    return {"number": "number", "integer": "whole number", "string": "text", "boolean": "bool"}.get(
        str(t), str(t or "any")
    )


def _constraints(p: dict[str, Any]) -> str:
    bits = []
    for key, word in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in p:
            bits.append(f"{word} {p[key]}")
    if "minItems" in p:
        bits.append(f"at least {p['minItems']} item(s)")
    if "minProperties" in p:
        bits.append(f"at least {p['minProperties']} entry")
    if "pattern" in p:
        bits.append(f"matches `{p['pattern']}`")
    if "maxLength" in p:
        bits.append(f"at most {p['maxLength']} characters")
    return "; ".join(bits)


def _table(d: dict[str, Any], refs: list[str]) -> list[str]:
    required = set(d.get("required", []))
    lines = ["| field | type | required | default | notes |", "| --- | --- | --- | --- | --- |"]
    for name, p in d.get("properties", {}).items():
        default = p.get("default")
        shown = "" if "default" not in p or default in (None, "", [], {}) else f"`{default}`"
        notes = " ".join(x for x in (p.get("description", ""), _constraints(p)) if x)
        lines.append(
            f"| `{name}` | {_type(p, refs)} | {'yes' if name in required else ''} | {shown} | "
            f"{notes.replace('|', '/')} |"
        )
    return lines


def markdown() -> str:
    """The whole reference page."""
    schema = model_schema()
    defs: dict[str, Any] = schema["$defs"]
    out = [
        "# Scenario format reference",
        "",
        "<!-- Generated from the JSON Schema by `python scripts/reference.py > "
        "docs/reference.md`; do not edit by hand (a test checks it is current). -->",
        "",
        "Every field of a scenario file, generated from the schema that `negosim validate` "
        "applies (`negosim schema` prints it as JSON Schema). For explanations and "
        "examples see [scenario-format.md](scenario-format.md); for the meaning of "
        "guards, weights and effects see [expressions.md](expressions.md).",
        "",
        "## Scenario",
        "",
        schema.get("description", ""),
        "",
    ]
    refs: list[str] = []
    out += _table(schema, refs)
    done: set[str] = set()
    distributions = {"Fixed", "Uniform", "Triangular", "Exponential", "LogNormal", "Empirical"}
    while refs:
        name = refs.pop(0)
        if name in done or name in distributions:
            continue
        done.add(name)
        d = defs[name]
        out += ["", f"## {name}", ""]
        if d.get("description"):
            out += [" ".join(d["description"].split()), ""]
        out += _table(d, refs)
    out += ["", "## Distributions", "", "A `dist:` field selects one of these forms.", ""]
    for name in ("Fixed", "Uniform", "Triangular", "Exponential", "LogNormal", "Empirical"):
        d = defs[name]
        out += [f"### {name}", ""]
        if d.get("description"):
            out += [" ".join(d["description"].split()), ""]
        out += _table(d, [])
        out.append("")
    return "\n".join(out).rstrip() + "\n"
