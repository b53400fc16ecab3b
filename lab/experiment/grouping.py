"""How a study's runs are grouped for its processes: some policies x some worlds, each group run together.

A comparison (`lab.experiment.compare`) and a robust study (`lab.experiment.robust`) run every policy on the
same worlds. Their runs go in groups of worlds x policies: in a group, each policy's runs of the group's worlds
are one stack (`lab.engine.stack`), and the group's policies share their warm-up
(`lab.engine.stack.policy_runs`). A group's stacks are held at once, so the memory budget counts its runs
(`lab.experiment.memory.runs_held`). A stack's fixed cost per simulated day is paid once for all its worlds,
so the groups take as many worlds as the budget allows and the policies are split among the processes before
the worlds are (`stack_shape`; benchmarks/README.md, "Stacks of policies", has the costs that chose it). Only
the speed depends on the grouping: every run gives the bits of its run alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, TypeVar

from lab.experiment.memory import STACK_WORLDS

if TYPE_CHECKING:
    from lab.policy.runtime import CompiledPolicy

__all__ = ["heaviest_first", "policy_groups", "policy_weight", "runs_of", "shared_groups", "stack_shape",
           "study_groups"]

World = TypeVar("World")
Group = TypeVar("Group")


def study_groups(of_world: Mapping[World, Sequence[str]], policies: Sequence[str], weight: Mapping[str, int],
                 held: int | None, size: int, jobs: int) -> list[tuple[list[str], list[World]]]:
    """A study's runs in groups, the heaviest first; `of_world` names each world's policies still to run. The
    worlds every one of `policies` still runs go in groups of policies x worlds (`shared_groups`); the rest (a
    resumed study's unfinished worlds) one policy a group of at most `size` worlds."""
    complete = [w for w, ps in of_world.items() if len(ps) == len(policies)]
    rest: dict[str, list[World]] = {}
    for w, ps in of_world.items():
        if len(ps) < len(policies):
            for p in ps:
                rest.setdefault(p, []).append(w)
    groups = shared_groups(complete, policies, weight, held, jobs)
    groups += [([p], ws[i:i + size]) for p, ws in rest.items() for i in range(0, len(ws), size)]
    return heaviest_first(groups, weight, runs_of)


def shared_groups(worlds: Sequence[World], policies: Sequence[str], weight: Mapping[str, int], held: int | None,
                  jobs: int) -> list[tuple[list[str], list[World]]]:
    """Worlds that every one of `policies` runs, in groups for `jobs` processes that may each hold `held` runs
    (None: no bound): each group's policies (in their order) and worlds (in theirs), the heaviest group first."""
    if not worlds or not policies:
        return []
    per_world, per_policy = stack_shape(len(worlds), len(policies), held, jobs)
    groups = [(together, list(worlds[i:i + per_world])) for together in policy_groups(policies, weight, per_policy)
              for i in range(0, len(worlds), per_world)]
    return heaviest_first(groups, weight, runs_of)


def runs_of(group: tuple[Sequence[str], Sized]) -> Iterator[str]:
    """The policy of each run of a group (its policies, its worlds): every policy once for each world."""
    policies, worlds = group
    return (p for p in policies for _ in range(len(worlds)))


def heaviest_first(groups: Iterable[Group], weight: Mapping[str, int],
                   runs: Callable[[Group], Iterable[str]]) -> list[Group]:
    """`groups` in the order the processes take them: the heaviest first (the weights of their runs' policies,
    `runs(group)` naming the policy of each run), so that the last to finish is a light one; ties keep their
    order."""
    return sorted(groups, key=lambda g: -sum(weight[p] for p in runs(g)))


def stack_shape(worlds: int, policies: int, held: int | None, jobs: int) -> tuple[int, int]:
    """How many worlds and how many policies go in each group: at most STACK_WORLDS worlds and `held` runs
    (None: no bound) a group, enough groups to give each of `jobs` processes one where there are runs for it,
    and within that as many worlds as can be (the fewest parts of the worlds), then as many policies (the more
    policies a group has, the more of them share a warm-up). With fewer runs than processes, one run a group."""
    for parts in range(1, worlds + 1):
        per = -(-worlds // parts)
        if -(-worlds // per) != parts or per > STACK_WORLDS:  # (the same groups as fewer parts, or too many)
            continue
        most = policies if held is None else min(policies, held // per)
        wanted = -(-jobs // parts)  # groups of policies for each part of the worlds, to keep the processes busy
        if most >= 1 and wanted <= policies:
            return per, max(p for p in range(1, most + 1) if -(-policies // p) >= wanted)
    return 1, 1


def policy_weight(policy: CompiledPolicy) -> int:
    """A policy's cost relative to the others', as the groups are balanced and ordered by it: one for the
    simulation, one more for each rule (the shipped policies' costs rank so: benchmarks/README.md, "Stacks of
    policies"). No result depends on it."""
    return 1 + len(policy.rules)


def policy_groups(policies: Sequence[str], weight: Mapping[str, int], per: int) -> list[list[str]]:
    """The policies in groups of at most `per`, as even in weight as the greedy way makes them (the heaviest
    first, each to the lightest group with room); each group keeps the policies' order."""
    count = -(-len(policies) // per)
    groups: list[list[str]] = [[] for _ in range(count)]
    totals = [0] * count
    for p in sorted(policies, key=lambda q: -weight[q]):
        g = min((i for i in range(count) if len(groups[i]) < per), key=lambda i: totals[i])
        groups[g].append(p)
        totals[g] += weight[p]
    order = list(policies)
    return [sorted(g, key=order.index) for g in groups]
