"""Median CPU time (user + system) of a command, for docs/dependencies.md.

    python scripts/cpu_time.py negosim --version
    python scripts/cpu_time.py --repeat 9 negosim run scenarios/munich.yaml --runs 1

Runs the command ``--repeat`` times (default 5), its output discarded, and
prints the median and every run's CPU seconds of the child process, read from
``getrusage(RUSAGE_CHILDREN)``. CPU time, unlike wall time, hardly depends on
what else the machine is doing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess


def cpu_seconds(cmd: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs (default: 5)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to time")
    args = parser.parse_args()
    times = [cpu_seconds(args.command) for _ in range(args.repeat)]
    runs = " ".join(f"{t:.3f}" for t in times)
    print(f"{statistics.median(times):.3f} s CPU (median of {args.repeat}: {runs})")


if __name__ == "__main__":
    main()
