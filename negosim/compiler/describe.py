"""Plain-data descriptions of a scenario: its parameter table and protocol graph.

``negosim params`` and ``negosim graph`` print these; reports will reuse them.
The protocol diagrams come from `transitions`' own diagram support (Mermaid
text needs nothing more; DOT text uses the pure-Python ``graphviz`` package,
no Graphviz binary).
"""

from __future__ import annotations

from typing import Any

from transitions.extensions import GraphMachine

from .tables import CompiledScenario


def parameter_rows(cs: CompiledScenario) -> list[dict[str, Any]]:
    """One JSON object per parameter (``negosim params --format json``), from the
    compiled parameter table: name, default, low, high, uncertainty, source, assumption..."""
    return [p.to_json() for p in cs.parameters]


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
