"""Pictures of the protocol: the state diagram and the paths runs took through it.

Both are laid out here and drawn with matplotlib, so no Graphviz program (or
any other system package) is needed. The state diagram puts states in
columns by their breadth-first distance from the initial state (outcome
states in the last column, successes above failures) and draws every
declared transition, its width and label by how many runs took it. The path
flow is an alluvial chart: column ``k`` shows where runs stood after their
``k``-th protocol step, ribbons carry the runs from one step to the next,
and a run whose path ended stays where it ended.

Both read plain data: the protocol's declared shape (:class:`Shape`, from
the scenario model) and an estimate's ``step_transitions`` counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..extras import require

require("plots", "drawing figures")  # matplotlib, or one line saying how to install it
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, PathPatch  # noqa: E402
from matplotlib.path import Path as MPath  # noqa: E402

from ..compiler.tables import CompiledScenario  # noqa: E402
from .plots import GREEN, RED, plt  # noqa: E402

NODE_FILL = {"success": "#c8f7c5", "failure": "#f7c5c5", "initial": "#dde8f7", "": "#f4f4f4"}
FLOW_FILL = {"success": GREEN, "failure": RED, "initial": "#1f5fa8", "": "#7d8fa8"}


@dataclass(frozen=True)
class Shape:
    """The protocol's declared states and transitions."""

    states: tuple[str, ...]
    initial: str
    edges: tuple[tuple[str, str, str], ...]  # (source, dest, trigger)
    success: frozenset[str]
    failure: frozenset[str]

    def role(self, state: str) -> str:
        """How ``state`` is drawn: ``success``, ``failure``, ``initial`` or ``""`` (any other)."""
        if state in self.success:
            return "success"
        if state in self.failure:
            return "failure"
        return "initial" if state == self.initial else ""


def shape(cs: CompiledScenario) -> Shape:
    """The declared states and transitions of ``cs``'s protocol, one edge per source state."""
    proto = cs.model.protocol
    edges = []
    for t in proto.transitions:
        sources = [t.source] if isinstance(t.source, str) else list(t.source)
        edges += [(s, t.dest, t.trigger) for s in sources]
    return Shape(
        tuple(cs.states),
        proto.initial,
        tuple(edges),
        frozenset(proto.outcomes.success),
        frozenset(proto.outcomes.failure),
    )


def edge_counts(step_transitions: dict[tuple[int, str, str], int]) -> Counter[tuple[str, str]]:
    """Runs per transition (source, dest), over all steps."""
    out: Counter[tuple[str, str]] = Counter()
    for (_, a, b), n in step_transitions.items():
        out[(a, b)] += n
    return out


def layout(sh: Shape) -> dict[str, tuple[float, float]]:
    """(column, row) of each state: BFS depth from the initial state; outcomes last."""
    depth = {sh.initial: 0}
    queue = deque([sh.initial])
    nxt: dict[str, list[str]] = defaultdict(list)
    for a, b, _ in sh.edges:
        nxt[a].append(b)
    while queue:
        s = queue.popleft()
        for t in nxt[s]:
            if t not in depth:
                depth[t] = depth[s] + 1
                queue.append(t)
    outcomes = [s for s in sh.states if s in sh.success] + [s for s in sh.states if s in sh.failure]
    inner = [s for s in sh.states if s not in sh.success and s not in sh.failure]
    last = max([depth.get(s, 0) for s in inner] + [0]) + 1
    columns: dict[int, list[str]] = defaultdict(list)
    for s in inner:
        columns[depth.get(s, last - 1)].append(s)
    columns[last] = outcomes
    pos = {}
    for col, names in columns.items():
        for i, s in enumerate(names):
            pos[s] = (1.8 * col, 1.3 * ((len(names) - 1) / 2 - i))
    return pos


def state_diagram(sh: Shape, step_transitions: dict[tuple[int, str, str], int] | None = None,
                  runs: int = 0, title: str = "") -> Figure:  # fmt: skip
    """The protocol with every declared transition, weighted by how often runs took it."""
    pos = layout(sh)
    weighted = step_transitions is not None  # from runs (possibly none taken) or declared
    counts = edge_counts(step_transitions or {})
    top = max(counts.values(), default=1)
    cols = max(x for x, _ in pos.values()) / 1.8 + 1
    rows = max(abs(y) for _, y in pos.values()) / 1.3 * 2 + 1
    fig, ax = plt.subplots(figsize=(max(7.0, 2.9 * cols), max(3.5, 1.3 * rows + 1.2)))
    w, h = 0.62, 0.42
    for s, (x, y) in pos.items():
        role = sh.role(s)
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                    fc=NODE_FILL[role], ec="black",
                                    lw=2.2 if role in ("success", "failure") else 1.2,
                                    zorder=3))  # fmt: skip
        ax.text(x, y, s.replace("_", "\n", 1) if len(s) > 12 else s, ha="center",
                va="center", fontsize=9.5, zorder=4)  # fmt: skip
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 0.8)
    ax.set_axis_off()
    ax.set_title(title or ("Protocol: transitions taken by runs" if weighted else "Protocol"))
    fig.canvas.draw()  # fixes the data-to-display transform that arcs are bent in
    to_disp = ax.transData.transform
    pad = 0.04
    boxes = {
        s: (
            to_disp((x - w / 2 - pad, y - h / 2 - pad)),
            to_disp((x + w / 2 + pad, y + h / 2 + pad)),
        )
        for s, (x, y) in pos.items()
    }
    seen: set[tuple[str, str]] = set()
    for a, b, trigger in sh.edges:
        if (a, b) in seen or a not in pos or b not in pos:
            continue
        seen.add((a, b))
        n = counts.get((a, b), 0)
        p0, p1 = to_disp(pos[a]), to_disp(pos[b])
        others = [box for st, box in boxes.items() if st not in (a, b)]
        rad = _clear_bend(p0, p1, others, back=(b, a) in seen)
        lw = 0.8 + 6 * (n / top) if weighted else 1.2
        ax.add_patch(FancyArrowPatch(pos[a], pos[b], arrowstyle="-|>",
                                     mutation_scale=12 + 2.5 * lw,
                                     lw=lw, color="#34495e" if n else "#b0b0b0",
                                     ls="-" if n or not weighted else "--",
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=28, shrinkB=30,
                                     zorder=2))  # fmt: skip
        label = (
            trigger
            if not weighted
            else f"{trigger} {n:,}" + (f" ({100 * n / runs:.0f}%)" if runs else "")
        )
        # The label sits at the middle of the arc (arc3 bends in display space).
        mid = _bezier(p0, p1, rad, np.array([0.5]))[0]
        mx, my = ax.transData.inverted().transform(mid)
        ax.text(mx, my, label, ha="center", va="center", fontsize=8, color="#222222",
                bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5}, zorder=5)  # fmt: skip
    return fig


def _bezier(p0: Any, p1: Any, rad: float, t: Any) -> Any:
    """Points of matplotlib's arc3 curve from p0 to p1 (display units) at parameters t."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    c = (p0 + p1) / 2 + rad * np.array([d[1], -d[0]])
    t = t[:, None]
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * c + t * t * p1


def _clear_bend(p0: Any, p1: Any, boxes: list[Any], back: bool = False) -> float:
    """The straightest arc3 bend whose curve misses every other state's box.

    A return edge (the reverse of one already drawn) bends from the start so the
    two do not overlap; if no bend clears every box, the one crossing fewest wins.
    """
    t = np.linspace(0.08, 0.92, 60)
    candidates = [0.0, 0.15, -0.15, 0.25, -0.25, 0.35, -0.35, 0.45, -0.45, 0.6, -0.6]
    if back or abs(p1[0] - p0[0]) < 1:
        candidates = [r for r in candidates if r]
    best, best_hits = candidates[0], None
    for rad in candidates:
        pts = _bezier(p0, p1, rad, t)
        hits = sum(
            int(np.any((pts[:, 0] > lo[0]) & (pts[:, 0] < hi[0])
                       & (pts[:, 1] > lo[1]) & (pts[:, 1] < hi[1])))
            for lo, hi in boxes
        )  # fmt: skip
        if hits == 0:
            return rad
        if best_hits is None or hits < best_hits:
            best, best_hits = rad, hits
    return best


def path_flow(sh: Shape, step_transitions: dict[tuple[int, str, str], int], runs: int,
              max_steps: int = 8) -> Figure:  # fmt: skip
    """Alluvial chart of where runs stood after each protocol step."""
    longest = max((k for k, _, _ in step_transitions), default=0)
    steps = min(longest, max_steps)
    # occupancy[k][state]: runs standing in state after k steps (ended runs stay put).
    occ: list[Counter[str]] = [Counter({sh.initial: runs})]
    flows: list[Counter[tuple[str, str]]] = []
    for k in range(1, steps + 1):
        moved: Counter[tuple[str, str]] = Counter()
        out_of: Counter[str] = Counter()
        for (step, a, b), n in step_transitions.items():
            if step == k:
                moved[(a, b)] += n
                out_of[a] += n
        for s, n in occ[-1].items():
            if n - out_of[s] > 0:
                moved[(s, s)] += n - out_of[s]
        nxt: Counter[str] = Counter()
        for (_, b), n in moved.items():
            nxt[b] += n
        flows.append(moved)
        occ.append(nxt)
    order = {s: i for i, s in enumerate(sh.states)}
    gap = 0.03 * runs
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * (steps + 1) + 2), 5))
    boxes: list[dict[str, tuple[float, float]]] = []  # per column: state -> (bottom, top)
    for k, col in enumerate(occ):
        y = 0.0
        spans = {}
        for s in sorted(col, key=lambda s: order[s], reverse=True):
            spans[s] = (y, y + col[s])
            ax.add_patch(FancyBboxPatch((k - 0.06, y), 0.12, col[s], boxstyle="square,pad=0",
                                        fc=FLOW_FILL[sh.role(s)], ec="none", zorder=3))  # fmt: skip
            if col[s] >= 0.04 * runs:
                ax.text(k + 0.09, y + col[s] / 2, f"{s}\n{100 * col[s] / runs:.0f}%",
                        va="center", fontsize=8, zorder=4)  # fmt: skip
            y += col[s] + gap
        boxes.append(spans)
    for k, moved in enumerate(flows):
        left_used = {s: boxes[k][s][0] for s in boxes[k]}
        right_used = {s: boxes[k + 1][s][0] for s in boxes[k + 1]}
        for (a, b), n in sorted(moved.items(), key=lambda kv: (-order[kv[0][0]], -order[kv[0][1]])):
            y0, y1 = left_used[a], right_used[b]
            left_used[a] += n
            right_used[b] += n
            _ribbon(ax, k + 0.06, y0, k + 1 - 0.06, y1, n, FLOW_FILL[sh.role(b)])
    ax.set_xlim(-0.3, steps + 0.9)
    ax.set_ylim(-gap, max((sum(c.values()) + gap * len(c) for c in occ), default=1))
    ax.set_xticks(range(steps + 1), ["start"] + [f"step {k}" for k in range(1, steps + 1)])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title("Paths through the protocol: where runs stood after each step")
    if longest > steps:
        ax.set_xlabel(f"first {steps} of up to {longest} steps shown")
    return fig


def _ribbon(ax: object, x0: float, y0: float, x1: float, y1: float, n: float, colour: str) -> None:
    """A band of height ``n`` from (x0, y0) to (x1, y1), as a cubic Bezier strip."""
    xm = (x0 + x1) / 2
    verts = [(x0, y0), (xm, y0), (xm, y1), (x1, y1), (x1, y1 + n), (xm, y1 + n),
             (xm, y0 + n), (x0, y0 + n), (x0, y0)]  # fmt: skip
    codes = [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4, MPath.LINETO,
             MPath.CURVE4, MPath.CURVE4, MPath.CURVE4, MPath.CLOSEPOLY]  # fmt: skip
    ax.add_patch(PathPatch(MPath(np.array(verts), codes), fc=colour, ec="none", alpha=0.35))  # type: ignore[attr-defined]
