"""The `lab` command: validate, explain and compare loyalty policies.

Exit codes: 0 success, 1 the run failed, 2 bad input (every problem printed
as FILE:LINE:COL: message on stderr). No Python traceback reaches a user
unless --debug is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.cliargs import fraction, positive_int
from lab.cliargs import seed as seed_arg
from lab.errors import Diagnostic, LabError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_UNFINISHED, EXIT_INTERRUPTED = 1, 130
PASSTHROUGH = ("batch", "batch-report")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with code 2 and a hint (argparse's own default, kept explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _kind_of(path: Path) -> str:
    """Whether a YAML file is a scenario, a batch spec or a policy, from its top-level keys."""
    from lab.config import read_yaml

    node = read_yaml(path)
    keys = {k.value for k, _ in node.value} if node.kind == "map" else set()
    if "population" in keys or "store" in keys:
        return "scenario"
    if keys & {"factors", "design", "scenario", "replications"}:
        return "batch"
    return "policy"


# --------------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    from lab.policy.loader import load_policy
    from lab.scenario.loader import load_scenario

    problems: list[Diagnostic] = []
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        else:
            files = [path]
        for f in files:
            if not f.is_file():
                problems.append(Diagnostic(str(f), 1, 1, "no such file"))
                continue
            try:
                kind = _kind_of(f)
                if kind == "scenario":
                    ls = load_scenario(f)
                    print(f"ok: {f} (scenario '{ls.scenario.name}', policies: {', '.join(ls.policies)})")
                elif kind == "batch":
                    from lab.batch import load_spec

                    load_spec(f)
                    print(f"ok: {f} (batch spec)")
                else:
                    cp = load_policy(f)
                    print(f"ok: {f} (policy '{cp.policy.name}', {len(cp.rules)} rules)")
            except LabError as exc:
                problems.extend(exc.diagnostics)
    for d in problems:
        print(d, file=sys.stderr)
    return EXIT_BAD_INPUT if problems else EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from lab.policy.explain import explain
    from lab.policy.loader import load_policy

    cp = load_policy(args.policy)
    print(explain(cp.policy))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from lab.schemas import policy_schema, scenario_schema

    schema = scenario_schema() if args.kind == "scenario" else policy_schema()
    print(json.dumps(schema, indent=2))
    return EXIT_OK


def _load(scenario: str, policies: list[str] | None):
    from lab.scenario.loader import load_scenario

    return load_scenario(scenario, policies)


def _chosen(ls, policy: str) -> str:
    """The name (inside its file) of the policy asked for on the command line; the baseline comes first."""
    return "none" if policy == "none" else list(ls.policies)[-1]


def cmd_run(args: argparse.Namespace) -> int:
    from lab.experiment.run import run_policy, write_run

    ls = _load(args.scenario, [args.policy])
    name = _chosen(ls, args.policy)
    seed = args.seed if args.seed is not None else ls.scenario.seed
    t0 = time.perf_counter()
    res = run_policy(ls.scenario, ls.policies[name], seed, customers=args.customers, days=args.days, transactions=args.transactions)
    files = write_run(res, Path(args.out))
    s = res.summary
    print(f"{ls.scenario.name} / {name}, seed {seed}: {s['purchases']:,.0f} purchases, revenue ${s['revenue']:,.0f}, "
          f"net profit ${s['net_profit']:,.0f}, {s['active_customers']:,.0f} active customers ({time.perf_counter() - t0:.1f} s)")
    for f in files:
        print(f"wrote {f}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from lab.experiment.compare import CompareOptions, compare, write_comparison
    from lab.report import format_table, write_report

    policies = [p.strip() for p in args.policies.split(",") if p.strip()] if args.policies else None
    ls = _load(args.scenario, policies)
    opts = CompareOptions(replications=args.replications if args.replications is not None else (5 if args.precision else 10),
                          precision=args.precision, max_replications=args.max_replications, seed=args.seed,
                          customers=args.customers, days=args.days, jobs=args.jobs, flywheel_split=not args.no_flywheel_split)
    out = Path(args.out) if args.out else Path("results") / f"{ls.scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    comp = compare(ls, opts, progress=not args.quiet)
    files = write_comparison(comp, out, argv=sys.argv)
    report = write_report(comp, out)
    print(format_table(comp, color=sys.stdout.isatty()))
    print(f"\n{len(comp.results)} runs in {comp.seconds:.1f} s. Results in {out}/ ({', '.join(p.name for p in files.values())})")
    print(f"Report: {report}")
    return EXIT_OK


def cmd_trace(args: argparse.Namespace) -> int:
    from lab.engine.reference import ReferenceSimulation
    from lab.engine.options import RunOptions
    from lab.report.story import format_story

    ls = _load(args.scenario, [args.policy])
    name = _chosen(ls, args.policy)
    seed = args.seed if args.seed is not None else ls.scenario.seed
    customers = args.customers or min(ls.scenario.population.customers, 2000)
    if args.customer >= customers:
        raise LabError([Diagnostic("<command line>", 1, 1, f"--customer {args.customer} is out of range: the run starts with {customers} customers (ids 0 to {customers - 1}); pick a smaller id or pass --customers")])
    sim = ReferenceSimulation(ls.scenario, ls.policies[name], RunOptions(seed=seed, customers=customers, days=args.days),
                              follow=[args.customer])
    sim.run()
    print(format_story(sim.trace(args.customer), args.customer, ls.scenario, ls.policies[name].policy))
    return EXIT_OK


def _batch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab batch", description="Run a batch spec (design points x policies x "
                                "replications) into a Parquet store; see docs/BATCHES.md.")
    p.add_argument("spec", help="the batch spec (YAML)")
    p.add_argument("--out", help="the store folder (default: results/<batch name>)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local processes (default) or a Dask cluster")
    p.add_argument("--address", help="tcp://HOST:PORT of a running Dask scheduler (with --executor dask)")
    p.add_argument("--jobs", type=positive_int, help="local worker processes (default: the number of CPUs)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted batch in --out, skipping completed runs")
    p.add_argument("--customers", type=positive_int, help="customers at the start of every run (overrides the spec)")
    p.add_argument("--days", type=positive_int, help="days simulated in every run (overrides the spec)")
    p.add_argument("--flush-runs", type=positive_int, default=500, help="write a chunk every this many runs (default 500)")
    p.add_argument("--flush-seconds", type=float, default=60.0, help="... or every this many seconds (default 60)")
    p.add_argument("--retries", type=int, default=3, help="times to restart dead workers / retry a task (default 3)")
    p.add_argument("--allow-code-change", action="store_true",
                   help="resume although the lab's code changed since the batch started")
    return p


def cmd_batch(args: argparse.Namespace, argv: list[str]) -> int:
    """`lab batch SPEC ...`: run or resume a batch; returns the exit code (0 done, 1 runs left undone, 2 bad input)."""
    import shlex

    from lab.batch import BatchError, load_spec, run_batch
    from lab.batch.progress import duration

    try:
        args = _batch_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        batch = load_spec(args.spec, customers=args.customers, days=args.days)
        out = Path(args.out) if args.out else Path("results") / batch.spec.name
        print(f"lab batch: '{batch.spec.name}': {len(batch.points)} design points x {batch.replications} replications x "
              f"{len(batch.policies)} policies = {batch.total_runs} runs -> {out}", file=sys.stderr)
        command = ["lab", "batch", *argv]
        result = run_batch(batch, out, executor=args.executor, address=args.address, jobs=args.jobs,
                           resume=args.resume, flush_runs=args.flush_runs, flush_seconds=args.flush_seconds,
                           max_restarts=args.retries, command=command, allow_code_change=args.allow_code_change)
    except LabError as e:
        for d in e.diagnostics:
            print(d, file=sys.stderr)
        return EXIT_BAD_INPUT
    except BatchError as e:
        print(f"lab batch: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        again = argv if "--resume" in argv else [*argv, "--resume"]
        print(f"lab batch: interrupted; the completed runs are saved. Continue with: lab batch {shlex.join(again)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for m in result.messages:
        print(f"lab batch: {m}", file=sys.stderr)
    print(f"lab batch: {result.completed} runs in {duration(result.seconds)} ({result.skipped} already done, "
          f"{result.failed} failed) -> {result.out}", file=sys.stderr)
    if result.failed:
        print(f"lab batch: failures are in {result.out / 'failures'} (run_id, error)", file=sys.stderr)
    if result.unfinished:
        print(f"lab batch: {result.unfinished} runs were not done; rerun the same command with --resume", file=sys.stderr)
        return EXIT_UNFINISHED
    print(f"lab batch: open with pandas.read_parquet('{result.out / 'runs'}'), or: lab batch-report {result.out}",
          file=sys.stderr)
    return EXIT_OK


def cmd_batch_report(args: argparse.Namespace, argv: list[str]) -> int:
    """`lab batch-report DIR [--out FILE.html]`: write the report and print a short table; returns the exit code."""
    from lab.batch import BatchError, write_batch_report
    from lab.report.batch import format_overview
    from lab.scenario.loader import BASELINE

    p = argparse.ArgumentParser(prog="lab batch-report", description="Analyse a batch store: intervals per design point, "
                                "win maps, sensitivity; writes a self-contained HTML report and CSV tables.")
    p.add_argument("store", help="the --out folder of a 'lab batch' run")
    p.add_argument("--out", help="the HTML report to write (default: STORE/report.html)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for sensitivity intervals (default 1000)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.bootstrap < 10:
        print("lab batch-report: --bootstrap needs at least 10 resamples, e.g. --bootstrap 1000", file=sys.stderr)
        return 2
    try:
        report = write_batch_report(args.store, args.out, boot=args.bootstrap)
    except BatchError as e:
        print(f"lab batch-report: {e}", file=sys.stderr)
        return 2
    print(format_overview(report.overview))
    sens = report.sensitivity
    if not sens.empty:
        for policy, g in sens.groupby("policy", sort=False):
            top = g.reindex(g["prcc"].abs().sort_values(ascending=False).index).head(3)
            text = ", ".join(f"{r.factor} (PRCC {r.prcc:+.2f} [{r.prcc_low:+.2f}, {r.prcc_high:+.2f}])"
                             for r in top.itertuples())
            print(f"{policy} vs {BASELINE}, net profit driven by: {text}")
    for name, path in report.paths.items():
        print(f"{name}: {path}")
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lab", description="Loyalty Lab: simulate customers under loyalty policies written in YAML and compare the policies.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("validate", help="check policy, scenario and batch files; one line per problem as FILE:LINE:COL: message")
    s.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders of them")
    s.set_defaults(fn=cmd_validate)

    s = sub.add_parser("explain", help="print a policy in plain English")
    s.add_argument("policy", metavar="POLICY", help="a policy YAML file")
    s.set_defaults(fn=cmd_explain)

    s = sub.add_parser("schema", help="print the JSON Schema of policies (or scenarios) for editors")
    s.add_argument("--kind", choices=("policy", "scenario"), default="policy")
    s.set_defaults(fn=cmd_schema)

    def world_opts(s: argparse.ArgumentParser) -> None:
        s.add_argument("--seed", type=seed_arg, default=None, help="random seed (default: the scenario's)")
        s.add_argument("--customers", type=positive_int, default=None, help="customers at the start (default: the scenario's)")
        s.add_argument("--days", type=positive_int, default=None, help="days to simulate (default: the scenario's)")

    s = sub.add_parser("run", help="simulate one policy once and write its files")
    s.add_argument("scenario", metavar="SCENARIO")
    s.add_argument("--policy", required=True, help="policy name (a file in policies/) or path")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--transactions", action="store_true", help="also write transactions.parquet (one row per purchase)")
    world_opts(s)
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("compare", help="compare a scenario's policies over replications: table, files and an HTML report")
    s.add_argument("scenario", metavar="SCENARIO")
    s.add_argument("--policies", help="comma-separated policy names (default: the scenario's); the baseline 'none' is always included")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--replications", type=positive_int, default=None, help="replications per policy (default 10)")
    g.add_argument("--precision", type=fraction, default=None, help="add replications until each headline 95%% CI is within this fraction of its mean")
    s.add_argument("--max-replications", type=positive_int, default=100, help="cap for --precision (default 100)")
    s.add_argument("--out", help="output folder (default results/SCENARIO-TIMESTAMP)")
    s.add_argument("--jobs", type=positive_int, default=1, help="local processes (default 1)")
    s.add_argument("--no-flywheel-split", action="store_true", help="skip the runs with the flywheel cut (halves the work; no flywheel share)")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    world_opts(s)
    s.set_defaults(fn=cmd_compare)

    s = sub.add_parser("trace", help="tell one customer's story under a policy (reference engine)")
    s.add_argument("scenario", metavar="SCENARIO")
    s.add_argument("--policy", required=True)
    s.add_argument("--customer", type=int, required=True, metavar="ID")
    world_opts(s)
    s.set_defaults(fn=cmd_trace)

    s = sub.add_parser("batch", help="run a batch spec (designs x policies x replications) into a Parquet store", add_help=False)
    s.set_defaults(fn=cmd_batch, passthrough=True)

    s = sub.add_parser("batch-report", help="analyse a batch store: intervals, win maps, sensitivity", add_help=False)
    s.set_defaults(fn=cmd_batch_report, passthrough=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lab` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # batch commands parse their own options (their module owns them), so hand them the rest as is
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in PASSTHROUGH:
        args = parser.parse_args(argv[: first + 1])
        args.passthrough_argv = argv[first + 1:]
    else:
        args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    fn: Callable[..., int] = args.fn
    try:
        if getattr(args, "passthrough", False):
            return fn(args, args.passthrough_argv)
        return fn(args)
    except LabError as exc:
        for d in exc.diagnostics:
            print(d, file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (e.g. `lab explain P | head`): nothing left to say
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # an internal error: say so plainly, without a traceback
        if args.debug:
            raise
        print(f"lab: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
