"""Plain-data descriptions of a scenario: its parameter table and protocol graph.

``negosim params`` and ``negosim graph`` print these; reports will reuse them.
The protocol diagrams come from `transitions`' own diagram support (Mermaid
text needs nothing more; DOT text uses the pure-Python ``graphviz`` package,
no Graphviz binary).
"""

from __future__ import annotations

from typing import Any

from transitions.extensions import GraphMachine

from ..scenario.units import format_duration, is_duration, parse_duration
from . import dists
from .tables import CompiledScenario


def parameter_rows(cs: CompiledScenario) -> list[dict[str, Any]]:
    """One dict per parameter: name, default, low, high, uncertainty, source, assumption."""
    out = []
    for name, p in cs.model.params.items():
        kind = p.kind
        value = cs.params[name]
        if kind == "number" and isinstance(p.default, str):
            kind = "duration"
        low = _num(p.low, kind)
        high = _num(p.high, kind)
        uncertainty = None
        if p.uncertainty is not None:
            uncertainty = dists.describe(p.uncertainty)
            if (
                low is None
                and high is None
                and not isinstance(p.uncertainty, dists.schema.Empirical)
            ):
                resolved = {
                    f: _num(getattr(p.uncertainty, f), kind, cs.params) or 0.0
                    for f in dists.FIELDS[p.uncertainty.dist]
                }
                low, high = dists.bounds(p.uncertainty.dist, resolved)
        if kind == "probability":
            low = 0.0 if low is None else low
            high = 1.0 if high is None else high
        elif kind in ("rate", "duration") and low is None:
            low = 0.0
        out.append(
            {
                "name": name,
                "default": value,
                "display": format_duration(value) if kind == "duration" else f"{value:g}",
                "kind": kind,
                "unit": "hours" if kind == "duration" else ("per day" if kind == "rate" else None),
                "low": low,
                "high": high,
                "uncertainty": uncertainty,
                "actor": p.actor,
                "text": p.text,
                "source": p.source,
                "assumption": p.assumption,
            }
        )
    return out


def _num(x: float | str | None, kind: str, params: dict[str, float] | None = None) -> float | None:
    """A value as the compiler resolved it: a parameter name, a duration or a number."""
    if x is None:
        return None
    if isinstance(x, str):
        if params is not None and x in params:
            return params[x]
        return parse_duration(x) if kind == "duration" and is_duration(x) else float(x)
    return float(x)


class _Model:
    state: str


def graph(cs: CompiledScenario, fmt: str = "mermaid") -> str:
    """The protocol as Mermaid ``stateDiagram-v2`` text or Graphviz DOT text."""
    proto = cs.model.protocol
    model = _Model()
    machine = GraphMachine(
        model=model,
        states=cs.states,
        initial=proto.initial,
        auto_transitions=False,
        transitions=[t.model_dump() for t in proto.transitions],
        title=cs.model.title,
        graph_engine="mermaid" if fmt == "mermaid" else "graphviz",
        show_state_attributes=False,
    )
    g = model.get_graph()  # type: ignore[attr-defined]
    if fmt == "mermaid":
        # transitions styles the model's current (= initial) state as "active";
        # in a protocol diagram that reads as a highlight, so leave its classes out.
        text = "\n".join(
            line
            for line in str(g.draw(None)).splitlines()
            if not line.lstrip().startswith(("Class ", "classDef s_"))
        )
        lines = [
            text.rstrip(),
            "  classDef success fill:#c8f7c5,color:black",
            "  classDef failure fill:#f7c5c5,color:black",
        ]
        lines += [f"  class {s} success" for s in proto.outcomes.success]
        lines += [f"  class {s} failure" for s in proto.outcomes.failure]
        # Outcome states end a replication: draw them as final states.
        lines += [f"  {s} --> [*]" for s in [*proto.outcomes.success, *proto.outcomes.failure]]
        return "\n".join(lines) + "\n"
    g.node(proto.initial, color="black", fillcolor="white", peripheries="1")
    for s in proto.outcomes.success:
        g.node(s, fillcolor="#c8f7c5", peripheries="2")
    for s in proto.outcomes.failure:
        g.node(s, fillcolor="#f7c5c5")
    del machine
    return str(g.source)
