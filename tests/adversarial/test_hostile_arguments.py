"""Arguments: no abbreviations, no silent conflicts, bounded numbers, capped workers."""

from __future__ import annotations

import json
import os

import pytest

from .attack_base import write

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "{file}", "--run", "5"], "unrecognized arguments: --run 5"),
        (["run", "{file}", "--prec", "0.05"], "unrecognized arguments: --prec 0.05"),
        (["trace", "{file}", "--verb"], "unrecognized arguments: --verb"),
        (["sweep", "{file}", "--para", "p=0:1:2"], "unrecognized arguments: --para"),
        (["run", "{file}", "--runs", "100", "--precision", "0.05"],
         "negosim run: give either --runs or --precision, not both"),
        (["run", "{file}", "--runs", HUGE],
         f"argument --runs: must be at most 1,000,000,000, found '{HUGE}'"),
        (["run", "{file}", "--runs", "9" * 10_000], "argument --runs: expected a whole number"),
        (["run", "{file}", "--seed", str(2**128)], "argument --seed: must be at most"),
        (["sweep", "{file}", "--param", "p=0:1:2", "--runs", HUGE],
         "argument --runs: must be at most 1,000,000,000"),
        (["compare", "{file}", "--runs", HUGE], "argument --runs: must be at most"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(hostile, tmp_path, args, needle):
    path = write(tmp_path)
    res = hostile(*[a.format(file=path) for a in args], codes=(2,))
    [line] = res.lines
    assert needle in line
    assert len(line) < 300


def test_precision_alone_still_works(hostile, tmp_path):
    res = hostile("run", write(tmp_path), "--precision", "0.2", "--format", "json", limit=5.0)
    assert json.loads(res.stdout)["runs"] >= 1000


def test_workers_above_the_cores_are_capped_with_a_note(hostile, tmp_path):
    cores = os.cpu_count() or 1
    path = write(tmp_path)
    res = hostile("run", path, "--runs", "200", "--workers", str(cores + 50), "--format", "json",
                  limit=10.0, codes=(0,))  # fmt: skip
    assert [line for line in res.lines if ": warning: " not in line] == [
        f"note: --workers {cores + 50} capped at {cores}, the number of cores of this machine"
    ]  # the file's lints (warnings) come first
    one = hostile("run", path, "--runs", "200", "--format", "json", codes=(0,))
    drop = ("elapsed_s",)
    assert {k: v for k, v in json.loads(res.stdout).items() if k not in drop} == {
        k: v for k, v in json.loads(one.stdout).items() if k not in drop
    }
