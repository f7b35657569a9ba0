"""Core commands: run, trace, validate, params, schema, graph."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import InputError, Problem, UsageError
from ...files import shown
from ..util import (
    MAX_RUNS,
    add_backend_options,
    add_command,
    add_engine_option,
    add_format,
    add_sets,
    add_uncertainty_options,
    backend_from_args,
    engine_for_args,
    load_args,
    nonnegative,
    print_json,
    progress_bar,
    run_count,
    say,
    seed_number,
    stderr,
    stdout,
    write_text,
)


def precision(text: str) -> float:
    """argparse type: a target half-width strictly between 0 and 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"must be above 0 and below 0.5, found {text}")
    return value


DEFAULT_RUNS = 10_000

# The library is imported inside each command, so that parsing the command line
# (and --help, --version) stays cheap; see tests/test_extras.py.


def cmd_run(args: argparse.Namespace) -> int:
    """``negosim run``: estimate P(meeting) over ``--runs`` runs or to ``--precision``."""
    from ...output.terminal import render_estimate
    from ...runs.runner import simulate, simulate_to_precision

    if args.precision is not None and args.runs is not None:
        raise UsageError(
            "negosim run: give either --runs or --precision, not both "
            "(--precision chooses the number of runs)"
        )
    if args.uncertainty and args.precision is not None:
        raise UsageError("negosim run: --uncertainty takes --runs (and --draws), not --precision")
    if args.draws is not None and not args.uncertainty:
        raise UsageError("negosim run: --draws goes with --uncertainty")
    cs = load_args(args)
    for warning in cs.warnings:  # once, before the runs; they do not stop them
        say(str(warning))
    engine = engine_for_args(args, cs)
    if args.uncertainty:
        return _run_uncertain(args, cs, engine)
    with backend_from_args(args) as backend:
        if args.precision is not None:
            with progress_bar(None, f"{cs.id}: simulating to ±{args.precision:g}") as advance:
                est = simulate_to_precision(
                    cs, args.precision, args.seed, progress=advance, overrides=args.sets,
                    backend=backend, engine=engine,
                )  # fmt: skip
            half = (est.ci95[1] - est.ci95[0]) / 2
            if est.precision and est.precision["reached"]:
                said = f"precision {args.precision:g} reached after {est.runs:,} runs"
            else:
                said = (f"precision {args.precision:g} NOT reached: stopped at the cap of "
                        f"{est.runs:,} runs")  # fmt: skip
            stderr().print(f"{said} (95% half-width {half:.4f})", markup=False)
        else:
            runs = args.runs or DEFAULT_RUNS
            with progress_bar(runs, f"{cs.id}: simulating") as advance:
                est = simulate(
                    cs,
                    runs=runs,
                    seed=args.seed,
                    progress=advance,
                    overrides=args.sets,
                    backend=backend,
                    engine=engine,
                )
    if args.format == "json":
        print_json(est.to_json())
    else:
        render_estimate(est, stdout())
    return 0


def _run_uncertain(args: argparse.Namespace, cs: Any, engine: str) -> int:
    """``negosim run --uncertainty``: the predictive estimate over parameter draws."""
    from ...output.terminal import render_uncertain
    from ...runs.uncertainty import DEFAULT_DRAWS, simulate_uncertain

    runs = args.runs or DEFAULT_RUNS
    with backend_from_args(args) as backend, progress_bar(runs, f"{cs.id}: simulating") as adv:
        u = simulate_uncertain(cs, runs, args.seed, args.draws or DEFAULT_DRAWS, progress=adv,
                               overrides=args.sets, backend=backend, engine=engine)  # fmt: skip
    if args.format == "json":
        print_json(u.to_json())
    else:
        render_uncertain(u, stdout())
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """``negosim trace``: replay replication ``--run`` of ``--seed`` as a venue-local timeline."""
    from ...output.terminal import render_trace, trace_rows
    from ...runs.runner import trace

    cs = load_args(args)
    row, lines = trace(cs, args.seed, args.run)
    if args.format == "json":
        print_json(
            {
                "scenario": cs.id,
                "seed": args.seed,
                "run": args.run,
                "outcome": row.outcome,
                "held": row.held,
                "events": trace_rows(cs, lines, args.verbose),
                "blocking": [cs.preconditions[i] for i in row.blocking],
            }
        )
    else:
        render_trace(cs, row, lines, args.seed, stdout(), args.verbose)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``negosim validate``: check scenario and sweep files; report every problem at once."""
    from ...compiler.loader import check_base, is_abstract, load
    from ...runs.designs import check_sweep_file, is_sweep_file
    from ...scenario.yamlsource import load_scenario_file

    problems: list[Problem] = []
    warnings: list[Problem] = []
    out = stdout()
    for path in args.files:
        base = False
        found: list[Problem] = []
        try:
            doc = load_scenario_file(path, keep_going=True)
            if is_sweep_file(doc):
                check_sweep_file(path)  # sweeps/*.yaml: validated like scenarios
            elif is_abstract(doc):
                check_base(doc)  # a base: what it gives is checked, parts may be missing
                base = True
            else:
                found = list(load(path).warnings)
        except InputError as exc:
            problems.extend(exc.problems)
        else:
            warnings.extend(found)
            note = f" ({len(found)} warning{'s' if len(found) != 1 else ''})" if found else ""
            kind = " (abstract base)" if base else ""
            out.print(f"{shown(path)}: ok{kind}{note}", markup=False)
    for warning in warnings:
        say(str(warning))
    if problems:
        raise InputError(problems)
    return 2 if warnings and args.strict else 0


def cmd_params(args: argparse.Namespace) -> int:
    """``negosim params``: print the scenario's parameter table (table or JSON)."""
    from ...compiler.describe import parameter_rows
    from ...output.terminal import render_params

    cs = load_args(args)
    if args.format == "json":
        print_json(parameter_rows(cs))
    else:
        render_params(cs.parameters, cs.model.title, stdout(), cs.source)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """``negosim schema``: print the JSON Schema of the scenario format."""
    from ...scenario.schema import json_schema

    print_json(json_schema())
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """``negosim graph``: print the protocol as a Mermaid or DOT diagram."""
    from ...compiler.describe import graph
    from ...compiler.loader import load

    write_text(graph(load(args.file), args.format))
    return 0


def register(sub: Any) -> None:
    """Add the ``run``, ``trace``, ``validate``, ``params``, ``schema``, ``graph`` commands."""
    run = add_command(
        sub,
        "run",
        "Estimate P(meeting) and its timing by Monte Carlo.",
        """  negosim run scenarios/munich.yaml
  negosim run scenarios/munich.yaml --runs 50000 --seed 7 --workers 2
  negosim run scenarios/munich.yaml --set p_us_formal_request=0.5 --format json
  negosim run scenarios/munich.yaml --precision 0.01 --dask-local 2
  negosim run scenarios/munich.yaml --uncertainty --draws 200 --runs 20000""",
        cmd_run,
    )
    run.add_argument("file", help="scenario YAML file")
    run.add_argument(
        "--runs",
        type=run_count,
        help=f"replications (default: {DEFAULT_RUNS}; at most {MAX_RUNS:,})",
    )
    run.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    run.add_argument(
        "--precision",
        type=precision,
        metavar="H",
        help="instead of --runs (not with it): replicate in batches of 1000 until the 95%% "
        "interval's half-width is at most H (e.g. 0.01)",
    )
    add_uncertainty_options(run)
    add_backend_options(run, default_workers=1)
    add_engine_option(run, "simpy")
    add_sets(run)
    add_format(run)

    tr = add_command(
        sub,
        "trace",
        "Show one replication as a timeline in venue-local time.",
        """  negosim trace scenarios/munich.yaml --seed 3
  negosim trace scenarios/munich.yaml --seed 3 --verbose   # also clocks started/cancelled""",
        cmd_trace,
    )
    tr.add_argument("file", help="scenario YAML file")
    tr.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    tr.add_argument(
        "--run",
        type=nonnegative,
        default=0,
        metavar="I",
        help="which replication of that seed (default: 0, as in 'run')",
    )
    tr.add_argument(
        "--verbose",
        action="store_true",
        help="also show when each action becomes possible or is cancelled",
    )
    add_sets(tr)
    add_format(tr)

    va = add_command(
        sub,
        "validate",
        "Check scenario and sweep files; report every error and warning found.",
        """  negosim validate scenarios/*.yaml sweeps/*.yaml
  negosim validate --strict my-case.yaml      # warnings (lints) fail too: exit code 2""",
        cmd_validate,
    )
    va.add_argument("files", nargs="+", metavar="FILE", help="scenario or sweep YAML files")
    va.add_argument(
        "--strict",
        action="store_true",
        help="exit with code 2 if there are warnings (lints), not only errors",
    )

    pa = add_command(
        sub,
        "params",
        "List every parameter with its default, range and source.",
        """  negosim params scenarios/munich.yaml
  negosim params scenarios/munich.yaml --format json""",
        cmd_params,
    )
    pa.add_argument("file", help="scenario YAML file")
    add_sets(pa)
    add_format(pa)

    add_command(
        sub,
        "schema",
        "Print the JSON Schema of the scenario format (for editors).",
        """  negosim schema > negosim-scenario.schema.json
  # then point your editor's YAML extension at it, e.g. in VS Code settings:
  # "yaml.schemas": {"negosim-scenario.schema.json": "scenarios/*.yaml"}""",
        cmd_schema,
    )

    gr = add_command(
        sub,
        "graph",
        "Print the meeting protocol as a Mermaid or DOT diagram.",
        """  negosim graph scenarios/munich.yaml              # Mermaid, paste into any Markdown viewer
  negosim graph scenarios/munich.yaml --format dot | dot -Tpng -o protocol.png""",  # noqa: E501
        cmd_graph,
    )
    gr.add_argument("file", help="scenario YAML file")
    add_format(gr, ("mermaid", "dot"))
