"""negosim compare: common random numbers, the paired interval, what stops blocking.

Closed forms: with one exponential action of mean m before a deadline of H
hours, P(held) = 1 - exp(-H/m). Under common random numbers the same uniform
u gives both runs their delay (-m ln(1-u), inverse CDF), so the run with the
longer mean is held only if the other one is: the pairs table has no
"variant only" cell, and P(base only) = exp(-H/m_v) - exp(-H/m_b).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import assert_close_binomial, base_scenario

from negosim.runs.compare import Pairs, compare, paired_diff_ci
from negosim.runs.results import Z95

H = 48.0  # hours: base_scenario's horizon


def test_identical_variant_gives_exactly_zero(load_data: Callable[..., Any]) -> None:
    cs = load_data(base_scenario())
    cmp = compare(cs, load_data(base_scenario()), runs=500, seed=3)
    assert cmp.identical
    assert cmp.pairs.base_only == cmp.pairs.variant_only == 0
    assert cmp.diff == 0.0
    assert cmp.diff_ci95 == (0.0, 0.0)
    assert cmp.base.p_meeting == cmp.variant.p_meeting


def test_exponential_means_closed_form(load_data: Callable[..., Any]) -> None:
    n = 4000
    base = load_data(base_scenario(), [("actions.meet.delay.mean", "40h")])
    variant = load_data(base_scenario(), [("actions.meet.delay.mean", "50h")])
    cmp = compare(base, variant, runs=n, seed=11)
    p_base, p_var = 1 - math.exp(-H / 40), 1 - math.exp(-H / 50)
    assert_close_binomial(cmp.base.p_meeting, p_base, n, "P base")
    assert_close_binomial(cmp.variant.p_meeting, p_var, n, "P variant")
    # Common random numbers: the slower variant is held only when the base is.
    assert cmp.pairs.variant_only == 0
    p10 = math.exp(-H / 50) - math.exp(-H / 40)
    assert_close_binomial(cmp.pairs.base_only / n, p10, n, "P(base only)")
    # The change and its interval: closed form, and the width the pairing gives
    # (sd of the paired difference), far narrower than two independent runs would.
    true_diff = p_var - p_base
    sd_paired = math.sqrt(p10 - p10 * p10)
    assert abs(cmp.diff - true_diff) < 4.5 * sd_paired / math.sqrt(n)
    low, high = cmp.diff_ci95
    assert low <= cmp.diff <= high
    assert low < true_diff < high
    width_paired = 2 * Z95 * sd_paired / math.sqrt(n)
    width_indep = 2 * Z95 * math.sqrt((p_base * (1 - p_base) + p_var * (1 - p_var)) / n)
    assert 0.8 * width_paired < high - low < 1.25 * width_paired < width_indep / 1.5
    # Timing: medians 40 ln 2 and 50 ln 2 hours; under CRN every delay is 1.25 times
    # longer, so the shift is a quarter of the baseline's sample median (to the minute).
    shift = cmp.median_shift_h()
    assert shift is not None and abs(shift - 10 * math.log(2)) < 0.5


def _coverage(p11: float, p10: float, p01: float, n: int, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    probs = [p11, p10, p01, 1 - p11 - p10 - p01]
    truth = (p11 + p01) - (p11 + p10)  # p_variant - p_base, variant = second member
    hits = 0
    for counts in rng.multinomial(n, probs, size=reps):
        a, b, c, d = (int(x) for x in counts)  # both, base only, variant only, neither
        low, high = paired_diff_ci(Pairs(a, b, c, d))
        hits += low <= truth <= high
    return hits / reps


@pytest.mark.parametrize(
    ("p11", "p10", "p01", "n"),
    [(0.4, 0.05, 0.15, 200), (0.1, 0.02, 0.02, 300), (0.7, 0.1, 0.0, 150), (0.3, 0.2, 0.2, 100)],
)
def test_paired_interval_covers_95_percent(p11: float, p10: float, p01: float, n: int) -> None:
    reps = 3000
    cov = _coverage(p11, p10, p01, n, reps, seed=int(1000 * p11 + n))
    # Newcombe's method 10 is near nominal; 4.5 binomial standard errors of the coverage.
    tol = 4.5 * math.sqrt(0.95 * 0.05 / reps)
    assert 0.95 - tol - 0.01 < cov < 0.95 + tol + 0.02, cov


def test_paired_interval_edges() -> None:
    assert paired_diff_ci(Pairs(0, 0, 0, 0)) == (-1.0, 1.0)
    low, high = paired_diff_ci(Pairs(0, 0, 50, 0))  # every pair moved up: diff = 1
    assert high == 1.0 and 0.85 < low < 1.0
    low, high = paired_diff_ci(Pairs(10, 0, 0, 10))  # no discordant pair, not identical
    assert low < 0 < high and high - low < 0.25
    for pairs in [Pairs(3, 1, 7, 9), Pairs(0, 5, 0, 1), Pairs(20, 0, 1, 0)]:
        low, high = paired_diff_ci(pairs)
        d = (pairs.variant_only - pairs.base_only) / pairs.n
        assert -1 <= low <= d <= high <= 1


def _blocked_scenario(formal: bool) -> dict[str, Any]:
    data = base_scenario()
    data["facts"] = {"formal": {"type": "bool", "initial": formal}}
    data["preconditions"] = {
        "needs_formal": {"text": "A formal request first", "insisted_by": "a", "holds": "formal"}
    }
    data["actions"]["meet"]["requires"] = ["needs_formal"]
    return data


def test_cli_json_and_blocking_changes(
    write_scenario: Callable[..., Any], cli: Callable[..., Any]
) -> None:
    path = write_scenario(_blocked_scenario(False))
    r = cli("compare", path, "--set", "facts.formal.initial=true", "--runs", "400",
            "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["p_base"] == 0.0
    assert out["p_variant"] == pytest.approx(1 - math.exp(-H / 10), abs=0.05)
    assert out["diff"] == pytest.approx(out["p_variant"] - out["p_base"])
    low, high = out["diff_ci95"]
    assert low <= out["diff"] <= high
    assert out["blocking"]["needs_formal"] == {"base": 400, "variant": 0}
    assert out["blocking_changes"] == {"stop": ["needs_formal"], "start": []}
    assert sum(out["pairs"].values()) == 400


def test_cli_other_file_and_table(
    write_scenario: Callable[..., Any], cli: Callable[..., Any], tmp_path: Any
) -> None:
    base = write_scenario(_blocked_scenario(True), "base.yaml")
    other = write_scenario(_blocked_scenario(False), "other.yaml")
    png = tmp_path / "cmp.png"
    r = cli("compare", base, other, "--runs", "300", "--plot", png)
    assert r.returncode == 0, r.stderr
    assert "starts blocking" in r.stdout
    assert "change:" in r.stdout and "95% CI" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_exits_2(write_scenario: Callable[..., Any], cli: Callable[..., Any]) -> None:
    path = write_scenario(base_scenario())
    r = cli("compare", path, "--set", "no_such_param=1", "--runs", "10")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    r = cli("compare", path, "--runs", "10", "--plot", "out.pdf")
    assert r.returncode == 2 and "must end in .png or .svg" in r.stderr


def test_same_numbers_for_any_worker_count(load_data: Callable[..., Any]) -> None:
    base = load_data(_blocked_scenario(True))
    variant = load_data(_blocked_scenario(True), [("actions.meet.delay.mean", "30h")])
    one = compare(base, variant, runs=900, seed=4).to_json()
    two = compare(base, variant, runs=900, seed=4, workers=2).to_json()
    one.pop("elapsed_s")
    two.pop("elapsed_s")
    assert one == two
    assert one["pairs"]["variant_only"] == 0  # CRN holds across processes too
