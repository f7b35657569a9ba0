"""Compute the instructor's answer keys of docs/exercises/ with the simulator.

    python scripts/exercise_keys.py > docs/exercises/answers.md

tests/test_exercises.py runs :func:`answers` and checks that the committed
file is exactly what the current simulator computes, so the keys never go
stale: change a scenario or the engine, and the test says to regenerate.
Every number is a fixed-seed simulation, hence reproducible.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import negosim
from negosim.classroom.play import policy_odds
from negosim.scenario.units import format_duration

REPO = Path(__file__).resolve().parent.parent
MUNICH = REPO / "scenarios" / "munich.yaml"
SHANGRI_LA = REPO / "scenarios" / "shangri-la-2023.yaml"
SEED = 2023


def pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def interval(ci: tuple[float, float]) -> str:
    return f"{pct(ci[0])} – {pct(ci[1])}"


def key_1() -> list[str]:
    cs = negosim.load(MUNICH)
    est = negosim.simulate(cs, runs=20_000, seed=SEED)
    failed = est.runs - est.held
    blocked = est.blocking.get("formal_request", 0)
    days = ", ".join(f"{day}: {pct(p)}" for day, p in est.by_day.items() if p > 0)
    return [
        "## Exercise 1: predict, then simulate",
        "",
        f"`negosim run scenarios/munich.yaml --runs 20000 --seed {SEED}`:",
        "",
        f"* P(meeting held) = **{pct(est.p_meeting)}** (95% CI {interval(est.ci95)}).",
        f"* By venue-local day: {days}.",
        f"* Of the {failed:,} runs without a meeting, Beijing's formal-request condition "
        f"was standing at the end of {blocked:,} ({pct(blocked / failed)}).",
        "",
        'Most students predict either "almost certainly not" (the US will not bend '
        'the knee) or "almost certainly" (Blinken expects it). The model sits between '
        "because a face-saving formula can satisfy the condition without a formal request.",
    ]


def _ends(spec: object) -> tuple[float, float]:
    if hasattr(spec, "min"):
        return float(spec.min), float(spec.max)  # type: ignore[attr-defined]
    return float(spec.low), float(spec.high)  # type: ignore[attr-defined]


@cache
def swings() -> list[tuple[str, float, float, float]]:
    """(what, value at low end, value at high end, swing) for each uncertain parameter,
    and for dropping the condition, largest swing first."""
    cs = negosim.load(MUNICH)
    out = []
    for name, p in cs.model.params.items():
        if p.uncertainty is None:
            continue
        low, high = _ends(p.uncertainty)
        lo = negosim.simulate(negosim.load(MUNICH, [(name, low)]), runs=5000, seed=SEED)
        hi = negosim.simulate(negosim.load(MUNICH, [(name, high)]), runs=5000, seed=SEED)
        label = f"`{name}` from {low:g} to {high:g}"
        out.append((label, lo.p_meeting, hi.p_meeting, hi.p_meeting - lo.p_meeting))
    base = negosim.simulate(cs, runs=5000, seed=SEED).p_meeting
    dropped = negosim.load(MUNICH, [("preconditions.formal_request.holds", "true")])
    drop = negosim.simulate(dropped, runs=5000, seed=SEED).p_meeting
    out.append(("Beijing drops the formal-request condition", base, drop, drop - base))
    return sorted(out, key=lambda r: -abs(r[3]))


def key_2() -> list[str]:
    rows = swings()
    lines = [
        "## Exercise 2: the one condition that matters most",
        "",
        f"Each parameter with an uncertainty range, run at both ends (5,000 runs, seed "
        f"{SEED}); and the condition itself dropped:",
        "",
        "| change | P(meeting) before | after | swing |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, a, b, d in rows:
        lines.append(f"| {label} | {pct(a)} | {pct(b)} | {100 * d:+.1f} points |")
    lines += [
        "",
        f"The largest swing: **{rows[0][0]}** ({100 * rows[0][3]:+.1f} points). A good "
        "answer also says why: it is the quantity the analyst knows least about, and "
        "it sits on the path every successful run must take.",
    ]
    return lines


def key_3() -> list[str]:
    cs = negosim.load(MUNICH)
    sim = negosim.simulate(cs, runs=5000, seed=SEED)
    accept, acc_ci = policy_odds(cs, "china", {"china_answers": "accept"}, 5000, SEED)
    decline, dec_ci = policy_odds(cs, "china", {"china_answers": "decline"}, 5000, SEED)
    return [
        "## Exercise 3: play China",
        "",
        "China has one decision with options: how to answer once its condition is met. "
        f"Over 5,000 runs (seed {SEED}):",
        "",
        f"* the simulated Beijing (weights from the file): **{pct(sim.p_meeting)}** "
        f"({interval(sim.ci95)});",
        f"* always accepting once the condition is met: **{pct(accept)}** ({interval(acc_ci)});",
        f"* always declining: **{pct(decline)}** ({interval(dec_ci)}).",
        "",
        "Even a China that always accepts does not always get a meeting: the condition "
        "must be met first, and Washington may call the meeting off or time may run out. "
        "The gap between the first two lines is what Beijing's own choice is worth; the "
        "rest is decided before it gets to choose.",
    ]


def key_4() -> list[str]:
    cs = negosim.load(SHANGRI_LA)
    est = negosim.simulate(cs, runs=10_000, seed=SEED)
    failed = est.runs - est.held
    blocked = est.blocking.get("sanctions_lifted", 0)
    return [
        "## Exercise 4: a scenario from a news article",
        "",
        "There is no single right file; compare the students' files with "
        "`scenarios/shangri-la-2023.yaml`, which gives "
        f"P(meeting) = **{pct(est.p_meeting)}** ({interval(est.ci95)}) over 10,000 runs "
        f"(seed {SEED}), with the sanctions condition standing in "
        f"{pct(blocked / failed)} of the runs without a meeting.",
        "",
        "Check that a student's file (1) names the sanctions as a precondition China "
        "insists on, (2) quotes the article for every number it can, (3) marks the rest "
        "as assumptions with a reason, and (4) does not use what happened after 26 May.",
    ]


@cache
def sweep() -> list[tuple[float, float, tuple[float, float]]]:
    out = []
    for value in (0.0, 0.25, 0.5, 0.75, 1.0):
        est = negosim.simulate(
            negosim.load(SHANGRI_LA, [("p_us_lifts", value)]), runs=4000, seed=SEED
        )
        out.append((value, est.p_meeting, est.ci95))
    return out


def key_5() -> list[str]:
    rows = sweep()
    lines = [
        "## Exercise 5: design a sweep",
        "",
        f"`p_us_lifts` over 0, 0.25, …, 1 (4,000 runs each, seed {SEED}):",
        "",
        "| p_us_lifts | P(meeting) | 95% CI |",
        "| ---: | ---: | --- |",
    ]
    for value, p, ci in rows:
        lines.append(f"| {value:g} | {pct(p)} | {interval(ci)} |")
    above = [v for v, p, _ in rows if p >= 0.5]
    first = f"from {above[0]:g} on" if above else "at none of the values tried"
    ceiling = rows[-1][1]
    params = negosim.load(SHANGRI_LA).params
    review = format_duration(params["us_review_median"])
    silence = format_duration(params["china_silence_mean"])
    lines += [
        "",
        f"A meeting is more likely than not **{first}**; even a Washington certain to "
        f"lift the sanctions gets a meeting in only **{pct(ceiling)}** of the runs. "
        f"The reason is timing: the review takes {review} at the median while Beijing's "
        f"clock to decline runs from the start ({silence} on average), and a lifted "
        "sanction must still be answered and the meeting fitted into the forum. A good "
        "design says so, uses the same seed at every point (common random numbers), "
        "and reports intervals.",
    ]
    return lines


HISTORY = ["munich", "bali-2022", "shangri-la-2023", "dmz-2019", "antalya-2022",
           "singapore-2018"]  # fmt: skip
"""The six library cases of exercise 6 (named, so that new cases do not change its key)."""
STUDENT = 0.7
"""Exercise 6's worked example: a student who answers 70% for every case."""


@cache
def history() -> object:
    """The backtest of exercise 6: the six cases, 5,000 runs each, seed 2023."""
    from negosim.runs.backtest import backtest, load_outcomes

    files = [REPO / "scenarios" / f"{name}.yaml" for name in HISTORY]
    return backtest(files, load_outcomes(REPO / "resolutions"), runs=5000, seed=SEED)


def key_6() -> list[str]:
    from negosim.runs import scoring

    bt = history()
    data = bt.to_json()  # type: ignore[attr-defined]
    rows = [
        f"| `{c['case']}` | {pct(c['p_meeting'])} | {'held' if c['met'] else 'not held'} | "
        f"{c['brier']:.3f} | {c['log_score']:.2f} | "
        f"{'' if c['most_likely_day_right'] is None else 'yes' if c['most_likely_day_right'] else 'no'} |"  # noqa: E501
        for c in data["cases"]
    ]
    student = [scoring.brier(STUDENT, c["met"]) for c in data["cases"]]
    student_mean = sum(student) / len(student)
    worst = max(data["cases"], key=lambda c: c["brier"])
    lo, hi = data["brier_ci95"]
    return [
        "## Exercise 6: predict, simulate, then score yourself against history",
        "",
        "`negosim backtest "
        + " ".join(f"scenarios/{n}.yaml" for n in HISTORY)
        + f" --outcomes resolutions/ --runs 5000 --seed {SEED}`:",
        "",
        "| case | model P(meeting) | what happened | Brier | log score | likeliest day right |",
        "| --- | ---: | --- | ---: | ---: | --- |",
        *rows,
        "",
        f"* The model's mean Brier score: **{data['brier']:.3f}** (bootstrap 95% "
        f"{lo:.3f} – {hi:.3f}); always answering 50% scores 0.250; always answering the "
        f"set's base rate ({pct(data['base_rate'])} held) scores "
        f"{data['brier_base_rate']:.3f} in sample.",
        f"* Mean log score: {data['log_score']:.3f} (always 50%: "
        f"{data['log_score_always_half']:.3f}).",
        f"* A student who answered {pct(STUDENT)} for every case scores "
        f"{student_mean:.3f}: "
        + ", ".join(f"{b:.2f}" for b in student)
        + f" ({(1 - STUDENT) ** 2:.2f} for each meeting held, {STUDENT**2:.2f} for each "
        "that was not).",
        f"* The model's worst case: `{worst['case']}` (P {pct(worst['p_meeting'])}, "
        f"{'held' if worst['met'] else 'not held'}; Brier {worst['brier']:.3f}).",
        "",
        "With six cases the bootstrap interval is wide: neither the model nor a student can "
        "be shown better than a coin on this set alone (docs/backtest.md). Good answers "
        "notice which cases the model got most wrong and ask which assumption would have "
        "had to change (for example, for Singapore 2018: how quickly a cancelled summit "
        "can be revived).",
    ]


def answers() -> str:
    parts = [
        "# Answer keys (for instructors)",
        "",
        "Generated by `python scripts/exercise_keys.py > docs/exercises/answers.md`; "
        "`tests/test_exercises.py` recomputes every number, so these keys always match "
        "the current scenarios and simulator.",
        "",
    ]
    for key in (key_1, key_2, key_3, key_4, key_5, key_6):
        parts += key()
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(answers())
