"""`negosim play`: the engine hook, the prompt through a real pseudo-terminal, scripts."""

from __future__ import annotations

import os
from pathlib import Path

import pexpect
import pytest
from conftest import SCENARIOS, negosim_cmd
from hypothesis import given
from hypothesis import strategies as st

import negosim
from negosim.classroom.play import PlayedReplication, parse_choice, policy_odds
from negosim.compiler.tables import Clock, Outcome
from negosim.engine.simulation import Engine, Replication

MUNICH = SCENARIOS / "munich.yaml"


# --- the engine hook ------------------------------------------------------------------


def test_a_chooser_that_keeps_the_drawn_option_changes_nothing():
    """The hook draws as usual first, so following the weights reproduces every run."""
    cs = negosim.load(MUNICH)
    asked: list[str] = []

    def keep(clock: Clock, engine: Replication, drawn: Outcome) -> Outcome:
        assert clock.actor == "us" and not clock.chance
        asked.append(clock.id)
        return drawn

    plain = Engine(cs)
    for i in range(300):
        assert PlayedReplication(plain, 11, i, keep, "us").run() == plain.run(11, i)
    assert asked  # the hook was consulted


def test_a_fixed_policy_equals_the_scenario_with_that_option_certain():
    """Always formalising is the scenario with p_us_formal_request = 1, run for run."""
    cs = negosim.load(MUNICH)
    certain = negosim.load(MUNICH, [("p_us_formal_request", 1.0)])
    p, (low, high) = policy_odds(cs, "us", {"us_decides_on_formal_request": "formalize"}, 400, 5)
    est = negosim.simulate(certain, runs=400, seed=5)
    assert p == est.p_meeting
    assert (low, high) == pytest.approx(est.ci95)


def test_parse_choice_by_number_or_id():
    cs = negosim.load(MUNICH)
    options = next(c for c in cs.clocks if c.id == "us_decides_on_formal_request").options
    assert parse_choice(" 2 ", options) is options[1]
    assert parse_choice("FORMALIZE", options) is options[0]
    for bad in ("0", "3", "", "-1", "formal", "1.0"):
        assert parse_choice(bad, options) is None


OPTIONS = negosim.load(MUNICH).clocks[0].options


@given(st.text())
def test_parse_choice_never_raises(text):
    options = OPTIONS
    chosen = parse_choice(text, options)
    assert chosen is None or chosen in options


# --- through a pseudo-terminal -----------------------------------------------------------


def _spawn(*args: str) -> pexpect.spawn:
    cmd = negosim_cmd()
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return pexpect.spawn(
        cmd[0], [*cmd[1:], "play", str(MUNICH), "--as", "us", "--runs", "200", *args],
        env=env, encoding="utf-8", timeout=60,
    )  # fmt: skip


def test_play_at_the_keyboard_bad_input_is_asked_again():
    child = _spawn("--seed", "0")
    child.expect("Your decision")
    child.expect(r"Your choice \[1-2 or an option id\]: ")
    for bad in ("7", "maybe", ""):
        child.sendline(bad)
        child.expect("Not an option")
        child.expect("Your choice")
    child.sendline("formalize")
    child.expect("You chose: formalize")
    child.expect("What happened")
    child.expect("How you did")
    child.expect(r"gets the meeting in \d+\.\d% of 200 runs")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_d_ends_the_game_cleanly():
    child = _spawn()
    child.expect("Your choice")
    child.sendeof()
    child.expect("Game ended before the outcome \\(end of input\\)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")


def test_ctrl_c_ends_the_game_with_130():
    child = _spawn()
    child.expect("Your choice")
    child.sendintr()
    child.expect("Game interrupted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "Traceback" not in (child.before or "")


# --- scripts --------------------------------------------------------------------------------


@pytest.fixture
def script(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "choices.txt"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_a_script_replays_deterministically(cli, script):
    path = script("# my choices\nrefuse\n" + "2   # refuse\n" * 20)
    args = ("play", MUNICH, "--as", "us", "--seed", "4", "--runs", "300", "--script", path)
    first, second = cli(*args), cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert "You chose: refuse" in first.stdout
    assert "How you did" in first.stdout


def test_chance_outcomes_are_not_the_players_to_choose(cli, script):
    # A round of talks (chance: true) is the US's action, but how it goes is not
    # Washington's choice: the player is asked about the formal request and about
    # its one-outcome actions (when staff fix a time and place), never about a round.
    proc = cli("play", MUNICH, "--as", "us", "--seed", "5", "--runs", "300", "--script",
               script("refuse\n1\n1\n1\n"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    decisions = [line for line in proc.stdout.splitlines() if line.startswith("Decision:")]
    assert decisions[0] == "Decision: Washington decides whether to request the meeting formally"
    assert "Decision: Staff fix a time and place" in decisions
    assert not any("round" in d for d in decisions)
    assert "A round of the two-way discussion: they find a face-saving" in proc.stdout


def test_a_script_that_runs_out_stops_cleanly(cli, script):
    proc = cli("play", MUNICH, "--as", "us", "--script", script("# nothing\n"))
    assert proc.returncode == 0, proc.stderr
    assert "has no more choices" in proc.stdout
    assert "How you did" not in proc.stdout


def test_a_bad_script_line_is_a_usage_error(cli, script):
    path = script("\n\nperhaps\n")
    proc = cli("play", MUNICH, "--as", "us", "--script", path)
    assert proc.returncode == 2
    assert f"{path}:3: 'perhaps' is not an option of" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("actor", "message"),
    [("russia", "unknown actor 'russia'; actors: us, china"), ("china", "has no action to decide")],
)
def test_an_actor_without_decisions_is_refused(cli, actor, message, tmp_path):
    # In munich.yaml China answers with options; use a copy where it cannot.
    path = MUNICH
    if actor == "china":
        text = MUNICH.read_text(encoding="utf-8").replace("actor: china", "actor: us")
        path = tmp_path / "m.yaml"
        path.write_text(text, encoding="utf-8")
    proc = cli("play", path, "--as", actor)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_a_one_outcome_action_of_the_played_side_is_the_players_to_time(cli, script):
    # Seed 3 of Munich: Beijing's outright refusal (one outcome) comes up first.
    # It used to fire on its own ("the others and the clock decided it before your
    # turn came"); now the player decides: act now, or not yet.
    proc = cli("play", MUNICH, "--as", "china", "--seed", "3", "--runs", "100",
               "--script", script("not_yet\naccept\n"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Decision: Beijing refuses outright while its condition is unmet" in proc.stdout
    assert "You chose: not_yet" in proc.stdout
    assert "You chose: accept" in proc.stdout
    assert "You had no decision to make" not in proc.stdout
    acted = cli("play", MUNICH, "--as", "china", "--seed", "3", "--runs", "100",
                "--script", script("1\n"))  # fmt: skip
    assert "You chose: china_closes_door (act now)" in acted.stdout
    assert "Your result: the talks ended" in acted.stdout


def test_acting_now_at_every_one_outcome_action_replays_the_simulated_run():
    """Acting at once is what the simulated seat does: same runs, same draws."""
    cs = negosim.load(MUNICH)
    plain = Engine(cs)

    def keep(clock: Clock, engine: Replication, drawn: Outcome) -> Outcome:
        return drawn

    for i in range(200):
        assert PlayedReplication(plain, 3, i, keep, "china").run() == plain.run(3, i)


def test_not_yet_lets_the_moment_pass_and_the_action_comes_again():
    cs = negosim.load(MUNICH)
    seen: list[str] = []

    def wait_once(clock: Clock, engine: Replication, drawn: Outcome) -> Outcome:
        seen.append(clock.id)
        if clock.id == "china_closes_door" and seen.count(clock.id) == 1:
            return clock.options[1]
        return drawn

    rep = PlayedReplication(Engine(cs), 3, 0, wait_once, "china")
    rep.run()
    assert seen[0] == "china_closes_door"
    assert any(line.kind == "wait" for line in rep.lines)
    assert len(seen) > 1  # the game went on to another decision of Beijing's
