"""One run: a policy in a scenario with a seed, from compiled inputs to outcomes and files."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from lab.engine.options import RunOptions
from lab.engine.record import RawRun
from lab.engine.simulate import Simulation
from lab.engine.stack import StackedSimulation, policy_runs, stack_key
from lab.metrics.result import RunResult, summarise, summarise_all
from lab.policy.runtime import CompiledPolicy
from lab.scenario.model import Scenario


def run_policy(scenario: Scenario, policy: CompiledPolicy, seed: int, *, address: tuple[int, ...] = (),
               customers: int | None = None, days: int | None = None, transactions: bool = False) -> RunResult:
    """Simulate one policy in one scenario and summarise it.

    `address` names the run inside an experiment (replication, design point)
    and never the policy, so every policy's replication k shares its random
    streams with the others (common random numbers)."""
    opts = RunOptions(seed=seed, address=address, customers=customers, days=days, transactions=transactions)
    raw = Simulation(scenario, policy, opts).run()
    return summarise(raw.record, seed, address)


def run_stacked(runs: Iterable[tuple[Scenario, CompiledPolicy, RunOptions]], *,
                stack_size: int = 64) -> Iterator[RunResult]:
    """Every run's RunResult, in the order given, the runs simulated in stacks (lab.engine.stack).

    Consecutive runs that share a stack (scenarios of one structure, whatever the values of the parameters a
    stack holds per world; the same compiled policy object; the same days, customers and transactions flag:
    `stack_key`) go in one stack of at most `stack_size` worlds, each with its own scenario; each result is
    bit-identical to `run_policy` of that run alone."""
    for raw, opts in records_stacked(runs, stack_size=stack_size):
        yield summarise(raw.record, opts.seed, opts.address)


def run_policies(scenarios: list[Scenario], policies: list[CompiledPolicy],
                 worlds: list[RunOptions]) -> list[list[RunResult]]:
    """Each policy's RunResults on the same worlds (world w: `scenarios[w]` with `worlds[w]`), the policies'
    stacks sharing their warm-up (`lab.engine.stack.policy_runs`); each result is bit-identical to `run_policy`
    of that run alone."""
    return [summarise_all([raw.record for raw in runs], [(o.seed, o.address) for o in worlds])
            for runs in policy_runs(scenarios, policies, worlds)]


def records_stacked(runs: Iterable[tuple[Scenario, CompiledPolicy, RunOptions]], *,
                    stack_size: int = 64) -> Iterator[tuple[RawRun, RunOptions]]:
    """`run_stacked`'s runs as the engine's raw records, each with its options, for a reader that needs less than
    a whole RunResult (a batch keeps the outcomes and a few series)."""
    pending: list[tuple[Scenario, CompiledPolicy, RunOptions]] = []

    def flush() -> Iterator[tuple[RawRun, RunOptions]]:
        if not pending:
            return
        sc, cp = pending[0][0], pending[0][1]
        worlds = [o for _, _, o in pending]
        raws = (StackedSimulation([s for s, _, _ in pending], cp, worlds).runs() if sc.population.from_fit is None
                else [Simulation(sc, cp, worlds[0]).run()])
        yield from zip(raws, worlds, strict=True)
        pending.clear()

    key = None
    for sc, cp, opts in runs:
        k = stack_key(sc, cp, opts)
        if pending and (k != key or len(pending) >= stack_size or sc.population.from_fit is not None):
            yield from flush()
        key = k
        pending.append((sc, cp, opts))
    yield from flush()


def json_safe(obj: object) -> object:
    """Plain JSON: NaN and infinities become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def umask() -> int:
    """The process's umask (read by setting it and putting it back: there is no other portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write) -> None:
    """Write a file through a temporary sibling and rename it into place, so readers never see half a file.

    mkstemp creates the temporary file with mode 0600; it is given the mode an
    ordinary open() would (0666 less the umask), so every result follows the
    user's umask, like the figures matplotlib writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~umask())
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: object) -> None:
    """Write JSON atomically, with NaN as null."""
    write_atomic(path, lambda p: p.write_text(json.dumps(json_safe(data), indent=2, sort_keys=False) + "\n"))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a Parquet file atomically."""
    write_atomic(path, lambda p: frame.to_parquet(p, index=False))


def write_run(result: RunResult, out: Path, extra: dict[str, object] | None = None) -> list[Path]:
    """Write a run's files under `out`: summary.json, timeseries.parquet, customers.parquet, transactions.parquet."""
    out = Path(out)
    summary = {"scenario": result.scenario, "policy": result.policy, "seed": result.seed,
               "address": list(result.address), "outcomes": result.summary,
               "rules": {r: {"fired": result.rule_fires[r], "cost": result.rule_cost[r]} for r in result.rule_fires}}
    if result.launch_day is not None:  # outcomes are measured from the launch (docs/MODEL.md, "Launch day")
        summary["launch_day"] = result.launch_day
    if extra:
        summary.update(extra)
    files = [out / "summary.json", out / "timeseries.parquet", out / "customers.parquet"]
    write_json(files[0], summary)
    write_parquet(files[1], result.timeseries)
    write_parquet(files[2], result.customers)
    if result.transactions is not None:
        files.append(out / "transactions.parquet")
        write_parquet(files[-1], result.transactions)
    return files
