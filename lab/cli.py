"""The `lab` command: validate, explain and compare loyalty policies.

Exit codes: 0 success, 1 the run failed (a batch: runs left undone), 2 bad
input (every problem printed as FILE:LINE:COL: message on stderr), 130
interrupted (Ctrl-C: a comparison or a batch keeps the runs it finished and
says how to continue). No Python traceback reaches a user unless --debug is given.

Each command imports what it needs when it runs, so `lab --help`, `validate`
and `explain` never load pandas, scipy.stats or matplotlib.

The module runs past 500 lines because every command's arguments and its few
lines of glue live together, so that a newcomer finds each command, its help and
its exit codes in one place; the work itself is in the packages below.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from lab.cliargs import count, fraction, memory_size, positive_float, positive_int, scenario_bounded
from lab.cliargs import seed as seed_arg
from lab.errors import Diagnostic, LabError, printable, shown

if TYPE_CHECKING:
    from lab.engine.options import RunOptions
    from lab.experiment.compare import Comparison
    from lab.policy.runtime import CompiledPolicy
    from lab.scenario.loader import LoadedScenario
    from lab.report.tracing import TracedRun
    from lab.scenario.model import Scenario

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with code 2 and a hint (argparse's own default, kept explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _kind_of(path: Path) -> str:
    """Whether a YAML file is a scenario, a batch spec or a policy (lab.scenario.loader.file_kind)."""
    from lab.config import read_yaml
    from lab.config.yamlio import Longest
    from lab.policy.files import find_scenario
    from lab.policy.loader import LONGEST
    from lab.scenario.loader import file_kind

    # a shipped scenario's name reads as its file; a policy's thousands of rules stop the reading at once
    # LONGEST is inferred as dict[tuple[str], ...] in lab.policy.loader; it is a valid Longest
    return file_kind(read_yaml(find_scenario(str(path)) or path, cast(Longest, LONGEST)))


# --------------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    from lab.config.yamlio import sibling_hint
    from lab.policy.files import find_policy, find_scenario
    from lab.policy.loader import load_policy
    from lab.scenario.loader import load_scenario

    problems: list[Diagnostic] = []
    for raw in args.paths:
        path = Path(raw)
        if not path.exists():  # a name: the shipped scenario, batch spec or policy of that name
            path = find_scenario(raw) or find_policy(raw) or path
        if path.is_dir():
            files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
            if not files:
                problems.append(Diagnostic(printable(str(path), 200), 1, 1, "the folder holds no .yaml or .yml file "
                                           "to check; give the policy, scenario or batch files, or their folder",
                                           "file"))
        else:
            files = [path]
        for f in files:
            if not f.is_file():
                problems.append(Diagnostic(printable(str(f), 200), 1, 1, "no such file (nor a shipped scenario, batch "
                                           f"spec or policy of that name){sibling_hint(str(f))}", "file"))
                continue
            try:
                kind = _kind_of(f)
                if kind == "scenario":
                    ls = load_scenario(f)
                    print(f"ok: {f} (scenario '{ls.scenario.name}', policies: {', '.join(ls.policies)})")
                    for w in (w for cp in ls.policies.values() for w in cp.warnings):
                        print(f"warning: {w}")  # stdout: the file is accepted
                elif kind == "batch":
                    _batch_layer().load_spec(f)
                    print(f"ok: {f} (batch spec)")
                else:
                    cp = load_policy(f)
                    n = len(cp.rules)
                    print(f"ok: {f} (policy '{cp.policy.name}', {n} rule{'' if n == 1 else 's'})")
                    for w in cp.warnings:  # not refused, but worth knowing (code unseen-reward)
                        print(f"warning: {w}")  # stdout: the file is accepted
            except LabError as exc:
                problems.extend(exc.diagnostics)
    for line in shown(problems):
        print(line, file=sys.stderr)
    return EXIT_BAD_INPUT if problems else EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from lab.policy.explain import explain
    from lab.policy.files import find_policy
    from lab.policy.loader import load_policy
    from lab.scenario.loader import KIND_WORDS

    path = find_policy(args.policy)
    if path is not None and (kind := _kind_of(path)) != "policy":
        raise LabError.at(str(path), 1, 1, f"this is a {KIND_WORDS[kind]}, not a policy: lab "
                          "explain tells what a policy's rules do; give a policy file or a shipped policy's name, "
                          "e.g. lab explain policies/points.yaml", "file")
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


def _batch_layer(report: bool = False) -> SimpleNamespace:
    """The batch layer's functions: the one place this module imports it (it imports pandas and pyarrow; with
    `report`, also the report's functions, which import scipy.stats and matplotlib). `cmd_batch` names the
    module its workers import first, as a string."""
    from lab.batch import BatchError, apply_point, load_spec, run_batch
    from lab.batch.progress import duration

    api = SimpleNamespace(BatchError=BatchError, apply_point=apply_point, load_spec=load_spec, run_batch=run_batch,
                          duration=duration)
    if report:
        from lab.report.batch import format_overview, write_batch_report

        api.format_overview, api.write_batch_report = format_overview, write_batch_report
    return api


def _bad(message: str) -> LabError:
    return LabError([Diagnostic("<command line>", 1, 1, message)])


def _check_days(ls: LoadedScenario, days: int | None) -> None:
    """Refuse a --days that ends the run on or before the scenario's launch (it would measure nothing)."""
    launch = ls.scenario.launch_day
    if days is not None and days <= launch:
        raise _bad(f"--days {days} ends the run before the launch of {ls.path.name} on day {launch} (its launch_day: "
                   f"it runs a warm-up under no programme until then, and outcomes are measured from the launch); "
                   f"give --days above {launch} (e.g. --days {launch + 365} for a year from the launch), or use a "
                   "scenario with launch_day: 0 and population.arrival_days: 0 (a day-0 cohort)")


@dataclass(frozen=True)
class _Target:
    """The one run a `run` or `trace` command names: its world, policy, seed, size and address."""

    scenario: Scenario
    policy: CompiledPolicy
    name: str
    seed: int
    customers: int | None
    days: int | None
    address: tuple[int, ...]
    point: int | None = None  # the batch design point, when the run is one (its address may not say it)

    def where(self) -> str:
        """The run's place in words, for the run's first line."""
        if self.point is not None:
            return f", design point {self.point}, replication {self.address[-1]}"
        return f", replication {self.address[0]}" if self.address else ""


def _target(args: argparse.Namespace) -> _Target:
    """The run that `lab run` / `lab trace` arguments name, in a scenario or at a batch spec's design point.

    A replication's address is the one `lab compare` gives it, (replication,); a design point's is the one
    `lab batch` gives it (`Batch.address`: (replication,) with shared streams, (point, replication) with independent
    ones); a lone run without either has the empty address."""
    if _kind_of(Path(args.scenario)) == "batch":
        return _batch_target(args)
    if args.point is not None:
        raise _bad(f"--point picks a design point of a batch spec, but {args.scenario} is a scenario; pass the batch "
                   "spec instead, or drop --point (--replication K alone reruns replication K of 'lab compare')")
    ls = _load(args.scenario, [args.policy])
    _check_days(ls, args.days)
    name = _chosen(ls, args.policy)
    seed = args.seed if args.seed is not None else ls.scenario.seed
    address = (args.replication,) if args.replication is not None else ()
    return _Target(ls.scenario, ls.policies[name], name, seed, args.customers, args.days, address)


def _batch_target(args: argparse.Namespace) -> _Target:
    from lab.errors import suggest
    from lab.policy.loader import compile_checked
    from lab.scenario.loader import check_scenario, world_of

    api = _batch_layer()
    batch = api.load_spec(args.scenario, customers=args.customers, days=args.days, scale_store=args.scale_store)
    n = len(batch.points)
    if args.point is None and n > 1:
        raise _bad(f"the batch '{batch.spec.name}' has {n} design points; pick one with --point P (0 to {n - 1})")
    point = args.point if args.point is not None else 0
    if point >= n:
        raise _bad(f"--point {point} is out of range: the batch '{batch.spec.name}' has {n} design points "
                   f"(0 to {n - 1})")
    if args.policy not in batch.policy_names:
        raise _bad(f"the batch '{batch.spec.name}' runs no policy '{args.policy}' (it runs "
                   f"{', '.join(batch.policy_names)}){suggest(args.policy, list(batch.policy_names))}")
    sc, policies = api.apply_point(batch, batch.points[point])
    diags = check_scenario(sc, batch.scenario_where, str(batch.scenario_path))
    if diags:
        raise LabError(diags)
    src = next(p for p in batch.policies if p.name == args.policy)
    cp = compile_checked(policies[src.name], src.where, str(src.path), world_of(sc))
    seed = args.seed if args.seed is not None else batch.seed
    replication = args.replication if args.replication is not None else 0
    return _Target(sc, cp, src.name, seed, batch.customers, batch.days, batch.address(point, replication),
                   point=point)


def _sized(scenario: Scenario, customers: int | None, scale: bool) -> tuple[Scenario, int | None]:
    """The scenario and customers a run uses: with --scale-store the whole store scaled to --customers
    (lab.scenario.scale); either way a run at a size its store was not written for is said on stderr."""
    from lab.scenario.scale import scale_store, size_note

    if scale and customers is not None:
        scenario, customers = scale_store(scenario, customers), None
    note = size_note(scenario, customers)
    if note:
        print(f"lab: {note}", file=sys.stderr)
    return scenario, customers


def cmd_run(args: argparse.Namespace) -> int:
    from lab.experiment.run import run_policy, write_run

    t = _target(args)
    scenario, customers = _sized(t.scenario, t.customers, args.scale_store)
    _check_memory(scenario, [t.policy], customers, 1)
    t0 = time.perf_counter()
    res = run_policy(scenario, t.policy, t.seed, address=t.address, customers=customers, days=t.days,
                     transactions=args.transactions)
    files = write_run(res, Path(args.out))
    from lab.report.text import fmt_value

    s, days = res.summary, int(res.timeseries["day_end"].iloc[-1])  # (the run's last period ends with it)
    span = f"days {res.launch_day:,} to {days:,} (from the launch)" if res.launch_day else f"{days:,} days"
    money = {k: fmt_value(s[k], "$", decimals=0) for k in ("revenue", "net_profit")}
    print(f"{t.scenario.name} / {t.name}, seed {t.seed}{t.where()}, {span}: {s['purchases']:,.0f} purchases, "
          f"revenue {money['revenue']}, net profit {money['net_profit']}; {s['active_customers']:,.0f} active "
          f"customers at the end ({time.perf_counter() - t0:.1f} s)")
    for f in files:
        print(f"wrote {f}")
    return EXIT_OK


def _check_memory(scenario: Scenario, policies, customers: int | None, at_once: int) -> None:
    """Refuse, before any run, runs that cannot fit in the machine's memory (lab.experiment.memory)."""
    from lab.experiment.memory import check_memory

    problem = check_memory(scenario, policies, customers or scenario.population.customers, at_once)
    if problem is not None:
        raise _bad(problem)


def _check_batch_memory(batch, executor: str, jobs: int | None) -> None:
    """Refuse, before any run, a local batch whose largest run times the runs held at once exceeds the memory."""
    if executor != "local":  # a cluster's workers have their own memory
        return
    from lab.scenario.loader import compile_sources

    at_once = max(1, min(jobs or _cpus(), len(batch.points) * batch.replications))
    _check_memory(batch.scenario, compile_sources(batch.source, keep_going=True).policies.values(),
                  batch.largest_customers, at_once)


def _check_robust_design(args: argparse.Namespace) -> None:
    """Refuse, before any run, a robust design the worlds cannot make: a Saltelli base that is not a power of two
    (naming the powers of two either side), a design without --robust."""
    design, n = args.robust_design, args.robust
    if design != "lhs" and n is None:
        raise _bad(f"--robust-design {design} needs --robust N (e.g. --robust 16 --robust-design {design})")
    if design == "saltelli" and n is not None and n & (n - 1):
        below = 1 << (n.bit_length() - 1)
        raise _bad(f"--robust {n} --robust-design saltelli: the Saltelli design's base N must be a power of two "
                   f"(it runs N x (parameters + 2) worlds); use --robust {below} or --robust {2 * below}")


def cmd_compare(args: argparse.Namespace) -> int:
    """`lab compare SCENARIO ...` (0 done, 2 bad input, 130 interrupted: the finished runs are kept for --resume)."""
    policies = [p.strip() for p in args.policies.split(",") if p.strip()] if args.policies else None
    ls = _load(args.scenario, policies)
    _check_days(ls, args.days)
    out = (Path(args.out) if args.out else
           Path("results") / f"{ls.scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        return _compare(args, ls, out)
    except KeyboardInterrupt:
        from lab.experiment.folder import settle_interrupted

        where, kept = settle_interrupted(out)
        given = any(a == "--out" or a.startswith("--out=") for a in args.argv)
        again = [*args.argv, *([] if given else ["--out", str(out)])]
        if kept:
            again += [] if "--resume" in again else ["--resume"]
            what = "the run it finished is" if kept == 1 else f"the {kept} runs it finished are"
            print(f"lab compare: interrupted; {what} kept in {where}. Continue with: lab compare {shlex.join(again)}",
                  file=sys.stderr)
        else:
            print("lab compare: interrupted before any run finished; nothing was kept. Start again with: "
                  f"lab compare {shlex.join(args.argv)}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _compare(args: argparse.Namespace, ls: LoadedScenario, out: Path) -> int:
    """The comparison of `cmd_compare`, into `out`."""
    import dataclasses
    from concurrent.futures import ProcessPoolExecutor

    from lab.experiment.processes import start_workers, worker_pool

    jobs = args.jobs or _cpus()
    # the workers start now and import the engine while this process imports the rest and checks its inputs
    with worker_pool(jobs, "lab compare") as pool:
        if pool is not None:
            start_workers(pool, jobs, "lab.experiment.compare")
        from lab.experiment.compare import CompareOptions, compare, identity, write_comparison
        from lab.experiment.folder import Workspace, published
        from lab.report import write_report
        from lab.report.drawing import FigureDrawing

        scenario, customers = _sized(ls.scenario, args.customers, args.scale_store)
        ls = dataclasses.replace(ls, scenario=scenario)
        opts = CompareOptions(replications=args.replications if args.replications is not None
                              else (5 if args.precision else 10),
                              precision=args.precision, max_replications=args.max_replications, seed=args.seed,
                              customers=customers, days=args.days, jobs=jobs,
                              flywheel_split=not args.no_flywheel_split, precision_of=args.precision_of,
                              memory=args.memory)
        _check_memory(ls.scenario, ls.policies.values(), opts.customers, opts.jobs)
        if args.robust is not None and args.robust < 2:
            raise _bad(f"--robust {args.robust}: a robust comparison needs at least 2 worlds (e.g. --robust 64)")
        _check_robust_design(args)
        if args.resume and not args.out:
            raise _bad("--resume continues the comparison written to --out DIR; give the same --out as the "
                       "interrupted run")
        from lab.batch.identity import code_hash
        from lab.experiment.numerics import SAME_BITS, numerics

        # the code and the machine's arithmetic too: a resumed comparison must compute as its first runs did
        robust = (None if args.robust is None else
                  {"worlds": args.robust, "replications": args.robust_replications, "design": args.robust_design})
        bits = {k: numerics()[k] for k in SAME_BITS}
        work = Workspace(out, {**identity(ls, opts), "robust": robust, "code_sha256": code_hash(), "numerics": bits},
                         resume=args.resume)
        kept = work.open()  # the output folder is checked before any run
        if kept:
            print(f"lab compare: resuming: {kept} runs already done in {work.path}", file=sys.stderr)
        files: dict[str, Path] = {}

        def write(stage: Path, pool: ProcessPoolExecutor | None) -> None:
            drawing = FigureDrawing(comp, pool)  # the figures drawn on the workers while the files are written
            try:
                files.update(write_comparison(comp, stage, argv=sys.argv))
                write_report(comp, stage, drawing)
            finally:
                drawing.cancel()

        comp = compare(ls, opts, progress=not args.quiet, workspace=work, pool=pool)
        # the runs' workers draw the report's figures; a robust study runs on a pool of its own, and the figures
        # then get a fresh one, rather than idle workers holding memory through the study
        if args.robust is None:
            published(out, lambda stage: write(stage, pool))
        elif pool is not None:
            pool.shutdown()
    if args.robust is not None:
        from lab.experiment.robust import RobustOptions, robust_compare

        study = robust_compare(ls, RobustOptions(worlds=args.robust, replications=args.robust_replications,
                                                 method=args.robust_design,
                                                 seed=args.seed, customers=opts.customers, days=args.days,
                                                 jobs=opts.jobs, memory=opts.memory),
                               progress=not args.quiet, workspace=work)
        comp.robustness = study.summary()
        comp.seconds += study.seconds
        with worker_pool(opts.jobs, "lab compare") as pool:
            published(out, lambda stage: write(stage, pool))
    work.discard()
    try:
        _print_comparison(comp, ls, out, files)
    except KeyboardInterrupt:  # the results are published whole: nothing is left to continue
        print(f"lab compare: interrupted; the comparison is complete in {out}/", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _print_comparison(comp: Comparison, ls: LoadedScenario, out: Path, files: dict[str, Path]) -> None:
    """The table, the robust study's verdict and where the files are, on stdout."""
    from lab.report import format_table

    print(format_table(comp, color=sys.stdout.isatty()))
    if comp.robustness is not None:
        from lab.report.robust import format_robust

        print("(*: clear in the scenario as written; whether it holds across plausible worlds is said below)")
        print("\n" + format_robust(comp.robustness))
    runs = len(comp.results) + (0 if comp.robustness is None else
                                len(ls.policies) * comp.robustness["worlds"]
                                * comp.robustness["replications_per_world"])
    resumed = f" ({comp.resumed} of them kept from the interrupted comparison)" if comp.resumed else ""
    print(f"\n{runs} runs{resumed} in {comp.seconds:.1f} s. Results in {out}/ "
          f"({', '.join(p.name for p in files.values())})")
    print(f"Report: {out / 'report.html'}")


TRACE_CUSTOMERS = 2000  # the reference engine runs one process per customer: trace a sample unless told otherwise
# the fates `lab trace --pick` knows (lab.report.tracing.FATES; written here so `lab --help` imports nothing heavy)
FATE_NAMES = ("churned", "stayed", "redeemed", "expired", "stranded", "written_off", "referred", "one_purchase")


def cmd_trace(args: argparse.Namespace) -> int:
    """`lab trace`: one customer's story under one policy, or under two side by side (reference engine).

    The customer is named by id (--customer) or picked by fate and/or segment (--pick, --segment) from
    the run of the first policy named, or of the second when the first has no such customer (a programme's
    fates, such as redeemed, under none,points); progress goes to stderr once a run takes more than a second."""
    from lab.engine.options import RunOptions
    from lab.report.story import format_side_by_side, format_story
    from lab.report.tracing import pick

    names = [p.strip() for p in args.policy.split(",") if p.strip()]
    if not 1 <= len(names) <= 2:
        raise _bad(f"--policy takes one policy, or two separated by a comma to see them side by side "
                   f"(got {len(names)}: '{args.policy}')")
    if args.customer is None and args.pick is None and args.segment is None:
        raise _bad("name the customer to trace: --customer ID, or pick one with --pick FATE and/or --segment NAME "
                   "(e.g. --pick churned)")
    if args.customer is not None and (args.pick is not None or args.segment is not None):
        raise _bad("--customer names one customer; --pick and --segment pick one: give either, not both")
    targets = [_target(argparse.Namespace(**{**vars(args), "policy": name})) for name in names]
    t = targets[0]
    scenario, customers = t.scenario, t.customers
    if args.scale_store and customers is not None:
        from lab.scenario.scale import scale_store

        scenario, customers = scale_store(scenario, customers), None
    size = scenario.population.customers
    customers = customers or min(size, TRACE_CUSTOMERS)
    if customers < size and not t.customers:
        print(f"lab trace: following a run of {customers} of the scenario's {size} customers "
              f"(the reference engine is slow); pass --customers {size} to trace the "
              "full-size run", file=sys.stderr)
    if args.customer is not None and args.customer >= customers:
        raise _bad(f"--customer {args.customer} is out of range: the run starts with {customers} customers "
                   f"(ids 0 to {customers - 1}; later arrivals get the next ids); pick a smaller id, pass "
                   "--customers, or pick one with --pick")
    segments = tuple(scenario.population.segments)
    if args.segment is not None and args.segment not in segments:
        from lab.errors import suggest

        raise _bad(f"--segment '{args.segment}': the scenario has no such segment (it has {', '.join(segments)})"
                   f"{suggest(args.segment, list(segments))}")
    opts = RunOptions(seed=t.seed, address=t.address, customers=customers, days=t.days)
    follow = None if args.customer is None else [args.customer]
    sims = [_traced(scenario, tg, opts, follow) for tg in targets]
    cid = args.customer
    if cid is None:
        picks = [pick(sim.record, args.pick, args.segment) for sim in sims]
        found = next((k for k, p in enumerate(picks) if p.customer is not None), None)
        if found is None:
            under = " or ".join(f"'{n}'" for n in names)
            raise _bad(f"no customer {picks[0].described} under {under} in this run of {customers} customers; "
                       "try another --pick or --segment, a longer --days, or more --customers")
        chosen, cid = picks[found], picks[found].customer
        none_first = f"; none under '{names[0]}'" if found else ""
        print(f"lab trace: customer {cid}, the first of the {chosen.summary()} under '{names[found]}'{none_first} "
              "(pass --customer ID for another)", file=sys.stderr)
    stories = [sim.trace(cid) for sim in sims]
    if len(sims) == 1:
        print(format_story(stories[0], cid, scenario, t.policy.policy))
    else:
        print(format_side_by_side(stories[0], stories[1], cid, scenario, t.policy, targets[1].policy))
    return EXIT_OK


def _traced(scenario: Scenario, target: _Target, opts: RunOptions, follow: list[int] | None) -> TracedRun:
    """One finished reference run of the target's policy (progress on stderr), its record kept for `pick`."""
    from lab.report.tracing import traced_run

    return traced_run(scenario, target.policy, opts, follow, label=target.name)


def cmd_batch(args: argparse.Namespace) -> int:
    """`lab batch SPEC ...`: run or resume a batch (0 done, 1 runs left undone, 2 bad input, 130 interrupted)."""
    from lab.scenario.scale import size_note

    pool = None
    jobs = args.jobs or _cpus()
    if args.executor == "local":  # the workers start now and import the engine while this process imports the rest
        from lab.experiment.processes import spawn_pool, start_workers

        pool = spawn_pool(jobs, ignore_interrupt=True)
        start_workers(pool, jobs, "lab.batch.executors")
    api = _batch_layer()
    out: Path | None = None  # (known once the spec is read)
    try:
        batch = api.load_spec(args.spec, customers=args.customers, days=args.days, scale_store=args.scale_store)
        out = Path(args.out) if args.out else Path("results") / batch.spec.name
        note = size_note(batch.scenario, batch.customers)
        if note:
            print(f"lab batch: {note}", file=sys.stderr)
        _check_batch_memory(batch, args.executor, jobs)
        print(f"lab batch: '{batch.spec.name}': {len(batch.points)} design points x "
              f"{batch.replications} replications x "
              f"{len(batch.policies)} policies = {batch.total_runs} runs -> {out}", file=sys.stderr)
        result = api.run_batch(batch, out, executor=args.executor, address=args.address, jobs=jobs,
                               resume=args.resume, flush_runs=args.flush_runs, flush_seconds=args.flush_seconds,
                               max_restarts=args.retries, command=["lab", "batch", *args.argv],
                               allow_code_change=args.allow_code_change, memory=args.memory, pool=pool)
    except api.BatchError as e:
        print(f"lab batch: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        from lab.batch.dataset import saved_runs

        again = args.argv if "--resume" in args.argv else [*args.argv, "--resume"]
        kept = saved_runs(out) if out is not None else 0
        what = (f"{kept} finished run{' is' if kept == 1 else 's are'} saved in {out}" if kept else
                "no run had finished, so none is saved")
        print(f"lab batch: interrupted; {what}. Continue with: lab batch {shlex.join(again)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    for m in result.messages:
        print(f"lab batch: {m}", file=sys.stderr)
    print(f"lab batch: {result.completed} runs in {api.duration(result.seconds)} ({result.skipped} already done, "
          f"{result.failed} failed) -> {result.out}", file=sys.stderr)
    if result.failed:
        print(f"lab batch: failures are in {result.out / 'failures'} (run_id, error)", file=sys.stderr)
    if result.unfinished:
        print(f"lab batch: {result.unfinished} runs were not done; rerun the same command with --resume",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"lab batch: open with pandas.read_parquet('{result.out / 'runs'}'), or: lab batch-report {result.out}",
          file=sys.stderr)
    return EXIT_OK


def cmd_batch_report(args: argparse.Namespace) -> int:
    """`lab batch-report STORE ...`: write the report and print a short table and each policy's drivers."""
    api = _batch_layer(report=True)
    if args.bootstrap < 10:
        print("lab batch-report: --bootstrap needs at least 10 resamples, e.g. --bootstrap 1000", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        report = api.write_batch_report(args.store, args.out, boot=args.bootstrap)
    except api.BatchError as e:
        print(f"lab batch-report: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(api.format_overview(report.overview))
    if report.horizon:
        print(report.horizon)
    for line in report.drivers():
        print(line)
    for name, path in report.paths.items():
        print(f"{name}: {path}")
    return EXIT_OK


def _cpus() -> int:
    return os.cpu_count() or 1


# --------------------------------------------------------------------------- parser
SCENARIO_HELP = "a scenario YAML file, e.g. scenarios/classroom.yaml"
RUN_SCENARIO_HELP = ("a scenario YAML file, or a batch spec (then --point picks its design point, "
                     "and the batch's seed and size apply)")
CUSTOMERS_FIX = "pass a number within them, or split a larger study into a batch of smaller runs"
DAYS_FIX = "pass a horizon within them"


def _world_opts(s: argparse.ArgumentParser) -> None:
    s.add_argument("--seed", type=seed_arg, default=None, help="random seed (default: the scenario's)")
    s.add_argument("--customers", type=scenario_bounded("population.customers", CUSTOMERS_FIX), default=None,
                   metavar="N",
                   help="customers at the start (default: the scenario's; same bounds as the scenario file)")
    s.add_argument("--days", type=scenario_bounded("days", DAYS_FIX), default=None, metavar="D",
                   help="days to simulate (default: the scenario's; same bounds as the scenario file)")
    s.add_argument("--scale-store", action="store_true",
                   help="with --customers: scale the whole store with its customers (staff, fixed costs, marketing "
                        "budget, market size; see docs/OUTPUTS.md). Without it only the customers change, and the "
                        "run says so")


def _address_opts(s: argparse.ArgumentParser) -> None:
    s.add_argument("--replication", type=count, default=None, metavar="K",
                   help="rerun replication K of 'lab compare' (or of 'lab batch', with --point) with the same "
                        "--seed, --customers and --days: the same random streams (default: a lone run)")
    s.add_argument("--point", type=count, default=None, metavar="P",
                   help="with a batch spec as SCENARIO: design point P of 'lab batch' (its factor values and "
                        "streams; replication 0 unless --replication is given)")


def _jobs_opt(s: argparse.ArgumentParser) -> None:
    s.add_argument("--jobs", type=positive_int, default=None, metavar="J",
                   help=f"local worker processes (default: the number of CPUs, {_cpus()} here)")


def _memory_opt(s: argparse.ArgumentParser) -> None:
    s.add_argument("--memory", type=memory_size, default=None, metavar="SIZE",
                   help="memory the stacks running at once may hold, e.g. 4G or 50%% (default: 25%% of this "
                        "machine's memory). Runs of one policy are simulated together in stacks of up to 64 worlds; "
                        "a smaller budget means smaller stacks. It changes the speed, never the results")


def _compare_bounded(name: str) -> Callable[[str], int]:
    """A whole number within the bounds lab.experiment.compare.CompareOptions declares for the field `name`
    (imported when a value is given, so `lab --help` stays fast)."""

    def parse(text: str) -> int:
        import dataclasses

        from lab.config.declare import FieldMeta
        from lab.experiment.compare import CompareOptions

        v = positive_int(text)
        f = next(f for f in dataclasses.fields(CompareOptions) if f.name == name)
        meta = next(m for m in f.metadata.values() if isinstance(m, FieldMeta))
        if meta.violates(v):
            raise argparse.ArgumentTypeError(f"{v} is outside the bounds of --{name.replace('_', '-')} "
                                             f"({meta.bounds_text()}); a study that large is a batch: write a batch "
                                             "spec and run it with 'lab batch' (resumable, on a cluster with "
                                             "--executor dask)")
        return v

    parse.__name__ = name
    return parse


def build_parser() -> argparse.ArgumentParser:
    from lab.fit import command as fit_command  # its options only; the fit's own imports wait for the command
    p = _Parser(prog="lab", description="Loyalty Lab: simulate customers under loyalty policies written in YAML "
                                        "and compare the policies.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description)

    s = command("validate", "check policy, scenario and batch files; one line per problem as FILE:LINE:COL: message",
                "Check policies, scenarios and batch specs without running them. Every problem is printed as "
                "FILE:LINE:COL: message on stderr; the exit code is 2 if there is any.")
    s.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders of them")
    s.set_defaults(fn=cmd_validate)

    s = command("explain", "print a policy in plain English",
                "Print what a policy does in plain English: who earns what, when, and what it costs.")
    s.add_argument("policy", metavar="POLICY", help="a policy YAML file")
    s.set_defaults(fn=cmd_explain)

    s = command("schema", "print the JSON Schema of policies (or scenarios) for editors",
                "Print a JSON Schema for editors (completion and checking as you type).")
    s.add_argument("--kind", choices=("policy", "scenario"), default="policy",
                   help="which files the schema describes (default: policy)")
    s.set_defaults(fn=cmd_schema)

    s = command("run", "simulate one policy once and write its files",
                "Simulate one policy once in a scenario and write summary.json, timeseries.parquet and "
                "customers.parquet (and transactions.parquet). With --replication (and --point) it reruns one row "
                "of a comparison or a batch.")
    s.add_argument("scenario", metavar="SCENARIO", help=RUN_SCENARIO_HELP)
    s.add_argument("--policy", required=True, metavar="P",
                   help="policy name (a file in policies/ or beside the scenario) or path; "
                        "with a batch spec, one of its policies")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder")
    s.add_argument("--transactions", action="store_true", help="also write transactions.parquet (one row per purchase)")
    _world_opts(s)
    _address_opts(s)
    s.set_defaults(fn=cmd_run)

    s = command("compare", "compare a scenario's policies over replications: table, files and an HTML report",
                "Run every policy of a scenario (and the baseline 'none') over replications with common random "
                "numbers; print the table and write the Parquet files, summary.json, manifest.json and report.html. "
                "Replication K of a comparison is 'lab run SCENARIO --policy P --seed S --replication K'.")
    s.add_argument("scenario", metavar="SCENARIO", help=SCENARIO_HELP)
    s.add_argument("--policies", metavar="P,P",
                   help="comma-separated policy names or paths (default: the scenario's); "
                        "the baseline 'none' is always included")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--replications", type=_compare_bounded("replications"), default=None, metavar="N",
                   help="replications per policy (default 10)")
    g.add_argument("--precision", type=fraction, default=None, metavar="F",
                   help="add replications until each headline 95%% CI is within this fraction: by default the CI of "
                        "each policy's paired difference from the baseline (what the verdict rests on), within F of "
                        "the baseline's mean; see --precision-of")
    s.add_argument("--precision-of", choices=("difference", "level"), default="difference",
                   help="what --precision aims at: 'difference' (default), the paired differences against the "
                        "baseline; 'level', each policy's own mean")
    s.add_argument("--max-replications", type=_compare_bounded("max_replications"), default=100, metavar="N",
                   help="cap for --precision (default 100)")
    s.add_argument("--out", metavar="DIR", help="output folder (default results/SCENARIO-TIMESTAMP); it appears "
                   "when the comparison is complete, replacing an earlier comparison there")
    s.add_argument("--resume", action="store_true",
                   help="continue a comparison into --out that was interrupted: the runs it finished are kept")
    _jobs_opt(s)
    _memory_opt(s)
    s.add_argument("--no-flywheel-split", action="store_true",
                   help="skip the runs with the flywheel cut (halves the work; no flywheel share)")
    s.add_argument("--robust", type=positive_int, default=None, metavar="N",
                   help="also run every policy in N plausible worlds sampled from the plausible ranges (docs/MODEL.md) "
                        "and say how sure the verdict is: probability of being best, differences across worlds, "
                        "regret (summary.json's robustness section)")
    s.add_argument("--robust-replications", type=positive_int, default=2, metavar="R",
                   help="replications of each policy in each world (default 2; 2 or more separate the worlds' spread "
                        "from simulation noise)")
    s.add_argument("--robust-design", choices=("lhs", "saltelli", "morris"), default="lhs",
                   help="the design of the worlds: 'lhs' (default) a Latin hypercube of N worlds, for the probability "
                        "of being best, regret, where the verdict reverses and the rank-correlation drivers; "
                        "'saltelli' N (a power of two) x (parameters + 2) worlds, for first-order and total Sobol "
                        "indices with bootstrap intervals; 'morris' N trajectories, N x (parameters + 1) worlds, for "
                        "Morris elementary effects (mu*, sigma), the cheap screening")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    _world_opts(s)
    s.set_defaults(fn=cmd_compare)

    s = command("trace", "tell one customer's story under a policy, or two side by side (reference engine)",
                "Tell one customer's story under a policy, day by day, from the reference engine (one process per "
                f"customer; at most {TRACE_CUSTOMERS} customers unless --customers is given). Name the customer "
                "with --customer, or pick one by fate (--pick churned) and/or segment (--segment); give two policies "
                "(--policy none,points) to see the customer under both, side by side. Progress goes to stderr.")
    s.add_argument("scenario", metavar="SCENARIO", help=RUN_SCENARIO_HELP)
    s.add_argument("--policy", required=True, metavar="P[,Q]",
                   help="policy name (a file in policies/ or beside the scenario) or path; with a batch spec, one of "
                        "its policies. Two, separated by a comma (e.g. none,points): the customer under both, side by "
                        "side (the runs share their random streams)")
    s.add_argument("--customer", type=count, default=None, metavar="ID",
                   help="the customer's id (0 to customers - 1 for the starting customers); or use --pick")
    s.add_argument("--pick", choices=sorted(FATE_NAMES), default=None, metavar="FATE",
                   help="trace the first customer with this fate under the first policy (under the second when "
                        "the first has none, as for redeemed under none,points): " + ", ".join(sorted(FATE_NAMES)))
    s.add_argument("--segment", default=None, metavar="NAME",
                   help="trace the first customer of this segment (with --pick: of this segment and fate)")
    _world_opts(s)
    _address_opts(s)
    s.set_defaults(fn=cmd_trace)

    s = command("batch", "run a batch spec (designs x policies x replications) into a Parquet store",
                "Run a batch spec (design points x policies x replications) into a resumable Parquet store; "
                "see docs/BATCHES.md. Exit codes: 0 done, 1 runs left undone (rerun with --resume), 2 bad input, "
                "130 interrupted.")
    s.add_argument("spec", metavar="SPEC", help="the batch spec (YAML)")
    s.add_argument("--out", metavar="DIR", help="the store folder (default: results/<batch name>)")
    s.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local processes (default) or a Dask cluster")
    s.add_argument("--address", help="tcp://HOST:PORT of a running Dask scheduler (with --executor dask)")
    _jobs_opt(s)
    _memory_opt(s)
    s.add_argument("--resume", action="store_true",
                   help="continue an interrupted batch in --out, skipping completed runs")
    s.add_argument("--customers", type=scenario_bounded("population.customers", CUSTOMERS_FIX), metavar="N",
                   help="customers at the start of every run (overrides the spec)")
    s.add_argument("--days", type=scenario_bounded("days", DAYS_FIX), metavar="D",
                   help="days simulated in every run (overrides the spec)")
    s.add_argument("--scale-store", action="store_true",
                   help="with customers (--customers or the spec's): scale the whole store with them (staff, fixed "
                        "costs, marketing budget, market size) before the factors are set; without it only the "
                        "customers change, and the batch says so")
    s.add_argument("--flush-runs", type=positive_int, default=500, metavar="N",
                   help="write a chunk every this many runs (default 500)")
    s.add_argument("--flush-seconds", type=positive_float, default=60.0, metavar="S",
                   help="... or every this many seconds (default 60)")
    s.add_argument("--retries", type=count, default=3, metavar="N",
                   help="times to restart dead workers / retry a task (default 3)")
    s.add_argument("--allow-code-change", action="store_true",
                   help="resume although the lab's code, or the arithmetic of the machine and packages beneath "
                        "it, changed since the batch started")
    s.set_defaults(fn=cmd_batch)

    s = command("batch-report", "analyse a batch store: intervals, win maps, sensitivity",
                "Analyse a batch store: intervals per design point, win maps, sensitivity; writes a self-contained "
                "HTML report and CSV tables.")
    s.add_argument("store", metavar="STORE", help="the --out folder of a 'lab batch' run")
    s.add_argument("--out", metavar="FILE", help="the HTML report to write (default: STORE/report.html)")
    s.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for sensitivity intervals (default 1000, at least 10)")
    s.set_defaults(fn=cmd_batch_report)

    s = command("fit", "fit a scenario to a transaction log (BG/NBD or Pareto/NBD, and Gamma-Gamma)",
                fit_command.DESCRIPTION + " See docs/FIT.md.")
    fit_command.add_arguments(s)
    s.set_defaults(fn=fit_command.main)
    return p


#: the package to install for an imported module whose name is not the package's
_PIP_NAMES = {"yaml": "pyyaml", "prim": "PRIM", "dask": "'dask[distributed]'", "distributed": "'dask[distributed]'"}


def _install_hint(exc: BaseException) -> str | None:
    """What to tell the user when `exc` says this Python lacks a package the lab needs; None for anything else
    (a module of the lab's own that will not import is an internal error)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top == "lab":
        return None
    return (f"this Python has no module '{top}', which the lab needs; install it with `python -m pip install "
            f"{_PIP_NAMES.get(top, top)}`, or reinstall the lab with its dependencies (`python -m pip install -e .` "
            f"in its folder)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lab` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except ModuleNotFoundError as exc:  # (checking some options imports what they are checked with)
        if "--debug" in argv:
            raise
        hint = _install_hint(exc)
        print(f"lab: {hint}" if hint is not None else
              f"lab: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_FAILED
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    args.argv = argv[argv.index(args.command) + 1:]  # the command's own arguments, to repeat in messages
    fn: Callable[[argparse.Namespace], int] = args.fn
    code = _command(fn, args)
    if code == EXIT_INTERRUPTED:
        _end_workers()
    return code


def _end_workers() -> None:
    """After Ctrl-C: end the worker processes still alive (one under way with a task, or waiting for one), so
    that this process's exit neither waits for them nor is left hanging on their pipes. What they had finished
    is already kept; what they were doing is redone on --resume."""
    import multiprocessing

    workers = multiprocessing.active_children()
    for w in workers:
        w.terminate()
    for w in workers:
        w.join(timeout=10)


def _command(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command, its errors turned into messages and exit codes."""
    try:
        return fn(args)
    except LabError as exc:
        for line in shown(exc.diagnostics):
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (e.g. `lab explain P | head`): nothing left to say
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # an internal error: say so plainly, without a traceback
        if args.debug:
            raise
        hint = _install_hint(exc)
        if hint is not None:
            print(f"lab {args.command}: {hint}", file=sys.stderr)
            return EXIT_FAILED
        print(f"lab: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
