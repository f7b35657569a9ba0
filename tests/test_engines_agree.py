"""The two engines on scenarios hypothesis writes: the same rows, or the same error.

The batch engine promises the simpy engine's rows replication by replication (issue 11,
docs/semantics.md "Two engines, one semantics"). The shipped and the statistical
scenarios check that on the cases people wrote; here hypothesis combines the format's
features at random — windows (fixed, recurring across a DST change, groups), stays with
arrival and departure draws, every distribution, guards on presence, availability,
windows and facts, options with computed weights, preconditions, scheduled events with
jitter and guards, random and ``when:`` events, presence and availability effects, the
events cap — on a quarter-hour grid, so that fixed delays, window edges, stays and the
horizon fall on one instant often and the tie order is exercised.

Under ``CI`` the examples are the same on every run (``derandomize``), so that a
failure is reproducible; elsewhere each run tries new ones.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import negosim
from negosim.engine.batch import BatchEngine
from negosim.engine.simulation import Engine
from negosim.errors import NegosimError

RUNS = 200
HORIZON_H = 30
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)

# instants on a quarter-hour grid, as offsets from the calendar's start
hours = st.integers(0, HORIZON_H * 4).map(lambda q: q / 4)


def _h(x: float) -> str:
    return f"{x:g}h"


@st.composite
def delays(draw: st.DrawFn, allow_zero: bool = True) -> dict[str, Any]:
    """One delay of every form the format has, often on the grid (ties)."""
    kind = draw(
        st.sampled_from(["fixed", "exponential", "lognormal", "uniform", "triangular", "empirical"])
    )
    low = 0 if allow_zero else 1
    if kind == "fixed":
        return {"dist": "fixed", "value": _h(draw(st.integers(low, 24)) / 4)}
    if kind == "exponential":
        return {"dist": "exponential", "mean": _h(draw(st.sampled_from([0.5, 2, 6, 20])))}
    if kind == "lognormal":
        median = draw(st.sampled_from([0.5, 2, 5]))
        return {
            "dist": "lognormal",
            "median": _h(median),
            "p90": _h(median * draw(st.sampled_from([1.5, 3, 8]))),
        }
    if kind == "uniform":
        a = draw(st.integers(low, 16)) / 4
        return {"dist": "uniform", "low": _h(a), "high": _h(a + draw(st.integers(1, 24)) / 4)}
    if kind == "triangular":
        a = draw(st.integers(low, 8)) / 4
        m = a + draw(st.integers(0, 8)) / 4
        return {
            "dist": "triangular",
            "min": _h(a),
            "mode": _h(m),
            "max": _h(m + draw(st.integers(1, 8)) / 4),
        }
    values = draw(st.lists(st.integers(low, 32), min_size=1, max_size=4))
    out: dict[str, Any] = {"dist": "empirical", "values": [_h(v / 4) for v in values]}
    if draw(st.booleans()):
        out["weights"] = draw(
            st.lists(st.integers(1, 5), min_size=len(values), max_size=len(values))
        )
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A scenario combining the format's features at random (always valid)."""
    dst = draw(st.booleans())
    data: dict[str, Any] = {
        "id": "h",
        "title": "Written by hypothesis",
        "calendar": {
            # Vienna's clocks go forward at 02:00 on 31 March 2024, 6 h after the start.
            "timezone": "Europe/Vienna" if dst else "UTC",
            "start": "2024-03-30 20:00",
            "horizon": _h(HORIZON_H),
        },
        "protocol": {
            "states": ["waiting", "asked", "held", "failed"],
            "initial": "waiting",
            "transitions": [
                {"trigger": "ask", "source": "waiting", "dest": "asked"},
                {"trigger": "meet", "source": "asked", "dest": "held"},
                {"trigger": "fail", "source": ["waiting", "asked"], "dest": "failed"},
            ],
            "outcomes": {"success": ["held"], "failure": ["failed"]},
        },
        "facts": {
            "n": {"type": "number", "initial": 0, "low": 0, "high": 4},
            "flag": {"type": "bool", "initial": draw(st.booleans())},
            "mood": {"type": "enum", "values": ["cold", "warm", "hot"], "initial": "cold"},
        },
        "params": {
            "p": {
                "kind": "probability",
                "default": draw(st.sampled_from([0.2, 0.5, 0.9])),
                "assumption": "t",
            }
        },
    }
    windows: dict[str, Any] = {}
    for i in range(draw(st.integers(0, 3))):
        start = draw(hours)
        windows[f"w{i}"] = {"start": _h(start), "end": _h(start + 0.25 + draw(hours) / 2)}
    if draw(st.booleans()):
        a, b = draw(st.integers(0, 23)), draw(st.integers(0, 23))
        windows["daily"] = {
            "daily": f"{a:02d}:00-{b:02d}:30",
            "start": "2024-03-30",
            "end": "2024-04-01",
        }
    if len(windows) >= 2 and draw(st.booleans()):
        windows["grp"] = {"group": sorted(windows)[:2]}
    if windows:
        data["calendar"]["windows"] = windows
    names = sorted(windows)

    def stay() -> dict[str, Any]:
        start = draw(hours)
        s: dict[str, Any] = {"from": _h(start), "until": _h(start + 0.25 + draw(hours))}
        if draw(st.booleans()):
            s["arrival"] = draw(delays())
        if draw(st.booleans()):
            s["departure"] = draw(delays())
        return s

    data["actors"] = {
        "a": {"name": "A", "present": [stay() for _ in range(draw(st.integers(1, 2)))]},
        "b": {"name": "B", "present": [stay()]},
    }
    if names and draw(st.booleans()):
        data["actors"]["b"]["available"] = draw(
            st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)
        )

    tests = [
        "present('a')",
        "present('b')",
        "available('a')",
        "not flag",
        "n < 2",
        "n >= 1",
        "mood != 'hot'",
        "flag or n > 2",
        "present('a') and present('b')",
    ]
    tests += [f"in_window('{w}')" for w in names]
    guard = st.one_of(st.none(), st.sampled_from(tests))
    sets = st.sampled_from(
        [
            {},
            {"n": "min(n + 1, 4)"},
            {"flag": "not flag"},
            {"mood": "'warm' if n > 0 else 'hot'"},
            {"n": "max(n - 1, 0)", "flag": True},
        ]
    )
    moves = st.sampled_from(
        [
            {},
            {"present": {"a": False}},
            {"present": {"b": True}},
            {"available": {"a": False}},
            {"available": {"a": True}},
        ]
    )

    def effect(trigger: str | None) -> dict[str, Any]:
        e: dict[str, Any] = dict(draw(moves))
        assignments = draw(sets)
        if assignments:
            e["set"] = assignments
        if trigger:
            e["trigger"] = trigger
        return e

    def action(actor: str, source: list[str], trigger: str) -> dict[str, Any]:
        act: dict[str, Any] = {"actor": actor, "from": source, "delay": draw(delays())}
        g = draw(guard)
        if g:
            act["guard"] = g
        if draw(st.booleans()):
            act["options"] = {
                "yes": {
                    "weight": draw(st.sampled_from(["p", "p * (n + 1)", "0.7"])),
                    **effect(trigger),
                },
                "no": {"weight": draw(st.sampled_from(["1 - p", "0.3", "1"])), **effect(None)},
            }
        else:
            act.update(effect(trigger))
        return act

    data["actions"] = {
        "ask": action("a", ["waiting"], "ask"),
        "meet": action("b", ["asked"], "meet"),
        "walk": action(draw(st.sampled_from(["a", "b"])), ["waiting", "asked"], "fail"),
    }
    if draw(st.booleans()):
        data["preconditions"] = {
            "warm": {"text": "t", "insisted_by": "b", "holds": draw(st.sampled_from(tests))}
        }
        data["actions"]["meet"]["requires"] = ["warm"]
    if draw(st.booleans()):
        data["actions"]["tick"] = {
            "actor": "a",
            "from": ["waiting", "asked"],
            "delay": draw(delays(allow_zero=False)),
            **effect(None),
        }

    events: dict[str, Any] = {}
    for i in range(draw(st.integers(0, 2))):
        ev: dict[str, Any] = {
            "at": _h(draw(hours)),
            **effect(draw(st.sampled_from([None, "fail"]))),
        }
        if draw(st.booleans()):
            ev["jitter"] = {
                "dist": "uniform",
                "low": "-1h",
                "high": _h(draw(st.integers(0, 8)) / 4),
            }
        g = draw(guard)
        if g:
            ev["guard"] = g
        events[f"s{i}"] = ev
    if draw(st.booleans()):
        ev = {"rate": draw(st.sampled_from([1, 6, 24])), **effect(None)}
        if names and draw(st.booleans()):
            ev["window"] = draw(st.sampled_from(names))
        g = draw(guard)
        if g:
            ev["guard"] = g
        events["shock"] = ev
    if draw(st.booleans()):
        events["edge"] = {
            "when": draw(st.sampled_from(["n >= 2", "flag", "not present('a')"])),
            **effect(draw(st.sampled_from([None, "fail"]))),
        }
    for ev in events.values():
        if not ({"set", "present", "available", "trigger"} & set(ev)):
            ev["set"] = {"flag": "not flag"}
    if events:
        data["events"] = events
    if draw(st.integers(0, 5)) == 0:  # a cap some replications reach: the same error on both
        data["settings"] = {"max_events": draw(st.sampled_from([4, 8, 16]))}
    return data


def _rows_or_error(engine: Any, seed: int) -> list[Any] | str:
    try:
        return list(engine.run_block(seed, 0, RUNS))
    except NegosimError as exc:
        return f"{type(exc).__name__}: {exc}"


@SETTINGS
@given(data=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_both_engines_give_the_same_rows_on_written_scenarios(
    data: dict[str, Any], seed: int
) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    cs = negosim.load_string(text)
    ref = _rows_or_error(Engine(cs), seed)
    got = _rows_or_error(BatchEngine(cs), seed)
    if isinstance(ref, str) or isinstance(got, str):
        assert got == ref, text
        return
    for a, b in zip(ref, got, strict=True):
        assert a == b, f"replication {a.index}:\n simpy {a}\n batch {b}\n{text}"
