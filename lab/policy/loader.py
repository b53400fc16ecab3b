"""Load a policy file: YAML -> checked `Policy` -> compiled against a world.

Checking goes in three passes, each reporting every problem it finds as
`FILE:LINE:COL: message`: the YAML itself (lab.config), the shape and types
of every key (lab.config.build against lab.policy.model), then the meaning:
references between parts of the policy (ledgers, tiers, groups, categories),
actions on triggers that cannot carry them, and every expression, compiled
and type-checked against the fields the lab declares. What is wrong with an
action is said by its handler (lab.policy.actions); this module only places
the handler's problems in the file.

A file whose shape is wrong only inside some of its rules has the meaning of
its other rules checked too (`read_policy`), so that one reading reports the
problems of every rule, not those of the broken rules first and the others'
after they are mended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from lab.config import SourceMap, build, diag_at, read_yaml
from lab.config.node import Node
from lab.errors import (Diagnostic, Diagnostics, LabError, TooMany, declare_meanings, name_problem, name_problems,
                        printable, suggest)
from lab.policy import model as m
from lab.policy.fields import FIELDS
from lab.policy.goals import unseen_message, unseen_rewards
from lab.policy.files import find_policy, is_path, looked_in, policy_names
from lab.policy.actions import CheckContext, handler_for
from lab.policy.runtime import MAX_RULES, CompiledPolicy, World, compile_policy

# "Did you mean" by meaning as well as spelling: an unknown field is matched with the fields of its kind.
declare_meanings({f.name: f"{f.unit} {f.meaning}" for f in FIELDS if f.expression})


def too_many_rules(count: str) -> str:
    """Why a policy may not have more than MAX_RULES rules, and what to do instead."""
    return (f"a policy may have at most {MAX_RULES} rules (each transaction records the rules that fired as one bit "
            f"per rule), this one has {count}; merge rules that share a trigger, e.g. with if_else(...) in an amount, "
            "or split the programme into several policies")


#: The lists of a policy file whose length the reader caps (see lab.config.parse_yaml): its rules.
LONGEST: dict[tuple[str | int, ...], tuple[int, str]] = {
    ("rules",): (MAX_RULES, too_many_rules(f"{MAX_RULES + 1} or more (the reading stopped here)"))}


def read_policy(path: str | Path, world: World | None = None) -> tuple[m.Policy, SourceMap]:
    """Parse and shape-check a policy file; its references and expressions are checked by `compile_checked`.

    When the shape is wrong only inside rules, the LabError also lists what is wrong with the meaning of the
    other rules (`_the_other_rules`, checked against `world` as `compile_checked` would), so that every problem
    of the file is reported at once (the first MAX_DIAGNOSTICS in file order, then a note that the list
    stopped). The reading stops at rule MAX_RULES + 1, before the rest is composed, built or compiled: a file of
    thousands of rules is refused in milliseconds with one diagnostic, not after collecting a problem per
    rule."""
    file = str(path)
    node = read_yaml(path, LONGEST)
    try:
        return build(node, m.Policy, file)
    except LabError as shape:
        more = _the_other_rules(node, shape.diagnostics, file, world)
        if not more:
            raise
        every = Diagnostics(file)
        try:
            for d in sorted([*shape.diagnostics, *more], key=lambda d: (d.line, d.col)):
                every.add(d.line, d.col, d.code, d.message, d.path)
        except TooMany:
            pass
        raise every.error(sort=True) from None


def _the_other_rules(node: Node, shape: tuple[Diagnostic, ...], file: str, world: World | None) -> list[Diagnostic]:
    """The problems of meaning of the rules whose shape is right, in a file whose every problem of shape is inside
    a rule (none if a problem is elsewhere: a broken ledger or tier would make the rules' references to it look
    wrong, and the file without the broken rules does not build).

    The broken rules are left out and the rest built and compiled as the whole file would be. A problem is kept
    only where leaving them out cannot have caused it: a group no rule is in is not said (a broken rule may be
    in it, under a misspelt key or in a shape that cannot be read), nor an id used twice unless every broken
    rule's id can be read and differs from it (else the first use may be a broken rule's)."""
    rules = node.get("rules")
    if rules is None or rules.kind != "seq":
        return []
    broken = {d.path[1] for d in shape if d.path[:1] == ("rules",) and len(d.path) > 1 and isinstance(d.path[1], int)}
    kept = [i for i in range(len(rules.value)) if i not in broken]
    if not kept:
        return []
    pruned = dataclasses.replace(node, value=tuple(
        (k, dataclasses.replace(v, value=tuple(rules.value[i] for i in kept)) if v is rules else v)
        for k, v in node.value))
    try:
        policy, where = build(pruned, m.Policy, file)
    except LabError:  # a problem of shape outside the rules, still there: nothing more can be said
        return []
    try:
        compile_checked(policy, where, file, world)
    except LabError as meaning:
        found = meaning.diagnostics
    else:
        return []
    ids = [_scalar(rules.value[i], "id") for i in sorted(broken)]
    out = []
    for d in found:
        if d.path[:1] == ("rules",) and len(d.path) > 1 and isinstance(d.path[1], int):
            if d.code == "duplicate-name" and (None in ids or policy.rules[d.path[1]].id in ids):
                continue
            out.append(dataclasses.replace(d, path=("rules", kept[d.path[1]], *d.path[2:])))
        elif d.path[:1] not in (("rules",), ("stacking",)):
            out.append(d)
    return out


def _scalar(node: Node, key: str) -> object | None:
    """The text (or number) at `key` of a mapping node; None when the node is no mapping or the key no scalar."""
    value = node.get(key)
    return value.value if value is not None and value.kind == "scalar" else None


def check_references(policy: m.Policy, where: SourceMap, file: str, world: World | None) -> list[Diagnostic]:
    """Problems with what a policy refers to: ledgers, lines, tiers, groups, categories, triggers."""
    out: list[Diagnostic] = []

    def err(path: tuple[str | int, ...], msg: str, code: str = "invalid") -> None:
        out.append(diag_at(file, where, path, msg, code=code))

    problem = name_problem(policy.name, "the policy's name")
    if problem is not None:
        err(("name",), problem, "name")
    named: list[tuple[tuple[str, ...], Iterable[str], str]] = [
        (("points",), policy.points, "a points ledger's name"), (("credit",), policy.credit, "a credit line's name"),
        (("tiers", "levels"), policy.tiers.levels if policy.tiers else (), "a tier's name"),
        (("stacking",), policy.stacking, "a rule group's name")]
    for at, names, what in named:
        for n, problem in name_problems(names, what):
            err(at + (n,), problem, "name")
    for i, rule in enumerate(policy.rules):
        problem = name_problem(rule.id, "a rule id")
        if problem is not None:
            err(("rules", i, "id"), problem, "name")
        if rule.group is not None and (problem := name_problem(rule.group, "a rule group")) is not None:
            err(("rules", i, "group"), problem, "name")

    points, lines = tuple(policy.points), tuple(policy.credit)
    for name in set(points) & set(lines):
        err(("credit", name),
            f"ledger name '{printable(name)}' is used for both points and credit; give them different names")
    tiers = tuple(policy.tiers.levels) if policy.tiers else ()
    if policy.tiers is not None:
        t = policy.tiers
        if not t.levels:
            err(("tiers", "levels"), "tiers need at least one level, e.g. levels: {member: {}, gold: {qualify: 1000}}",
                "required")
        bars = [lvl.qualify for lvl in t.levels.values()]
        if bars and bars[0] != 0:
            err(("tiers", "levels", tiers[0], "qualify"),
                f"the first tier '{printable(tiers[0])}' is where everyone starts; its qualify must be 0")
        for a, b, name in zip(bars, bars[1:], tiers[1:]):
            if b < a:
                err(("tiers", "levels", name, "qualify"),
                    f"tier '{printable(name)}' needs a qualify of at least {a:g} (tiers go from lowest to highest)")
        if t.metric == "points":
            if t.ledger is None:
                err(("tiers", "metric"), "metric 'points' needs 'ledger: <a points ledger>' in tiers")
            elif t.ledger not in points:
                err(("tiers", "ledger"), f"unknown points ledger '{printable(t.ledger)}'" + suggest(t.ledger, points))
    cats = world.categories if world else None
    ids: dict[str, int] = {}
    groups: set[str] = set()
    for i, rule in enumerate(policy.rules):
        if rule.id in ids:
            err(("rules", i, "id"),
                f"rule id '{printable(rule.id)}' is used twice (first by the rule on line "
                f"{where.at(('rules', ids[rule.id]))[0]}); rule ids must be unique", "duplicate-name")
        ids.setdefault(rule.id, i)
        if rule.group:
            groups.add(rule.group)
        ctx = CheckContext(policy, rule.on.tag, cats)
        for j, act in enumerate(rule.do):
            base = ("rules", i, "do", j, act.tag)
            for key, cat in handler_for(act).categories(act).items():
                problem = name_problem(cat, "a category's name")
                if problem is not None:
                    err(base + (key,), problem, "name")
            for below, msg in handler_for(act).check(act, ctx):
                err(base + below, msg)
    for g in policy.stacking:
        if g not in groups:
            err(("stacking", g), f"no rule is in group '{printable(g)}'" + suggest(g, groups), "unknown-name")
    if policy.budget is not None and policy.budget.amount == 0:
        err(("budget", "amount"), "a budget of 0 stops every rule with a cost; remove the budget or give an amount")
    return out


#: Problems after which the policy is not compiled: a bad name or an empty tier list cannot become a field.
_BLOCKING = frozenset({"name", "required"})


def compile_checked(policy: m.Policy, where: SourceMap, file: str, world: World | None) -> CompiledPolicy:
    """Check references and expressions; raise LabError listing every problem, else return the compiled policy."""
    diags = check_references(policy, where, file, world)
    if any(d.code in _BLOCKING for d in diags):  # the expression schema cannot be built from these names
        raise LabError(sorted(diags, key=lambda d: (d.file, d.line, d.col)))
    compiled, problems = compile_policy(policy, world or World.permissive(policy))
    for p in problems:
        expr = _expr_at(policy, p.path)
        if expr is not None and hasattr(expr, "diagnostic"):
            diags.append(dataclasses.replace(expr.diagnostic(p.message, p.offset), code="expression", path=p.path))
        else:
            diags.append(diag_at(file, where, p.path, p.message))
    if diags:
        raise LabError(sorted(diags, key=lambda d: (d.file, d.line, d.col)))
    return dataclasses.replace(compiled, warnings=tuple(policy_warnings(policy, where, file)))


def policy_warnings(policy: m.Policy, where: SourceMap, file: str) -> list[Diagnostic]:
    """What a valid policy does that the model cannot respond to: points earned towards no reward the lab can
    read (lab.policy.goals), which the goal gradient and points hope would otherwise ignore in silence."""
    return [diag_at(file, where, ("rules", i, "do", j, policy.rules[i].do[j].tag, "ledger"), unseen_message(name),
                    code="unseen-reward")
            for name, (i, j) in unseen_rewards(policy)]


def _expr_at(policy: m.Policy, path: tuple[str | int, ...]) -> object | None:
    try:
        rule = policy.rules[int(path[1])]
        if path[2] == "when":
            return rule.when
        return getattr(rule.do[int(path[3])], str(path[5]))
    except (IndexError, AttributeError, ValueError, TypeError):
        return None


def load_policy(path: str | Path, world: World | None = None) -> CompiledPolicy:
    """Read, check and compile a policy file (or a shipped policy's name, e.g. 'points'); LabError on any problem.

    Without a world (a policy checked on its own), category and segment names
    cannot be checked: they are checked when a scenario uses the policy."""
    try:
        given = Path(path).is_file()
    except (OSError, ValueError):  # a name too long for a file name, a NUL byte, ...
        given = False
    if not given:
        found = find_policy(str(path))
        if found is None and not is_path(str(path)):
            raise LabError.at("<command line>", 1, 1, f"policy '{printable(path)}' not found (looked "
                              f"{looked_in(None)}; a path needs a / or .yaml){suggest(str(path), policy_names())}",
                              "unknown-name")
        path = found if found is not None else path
    policy, where = read_policy(path, world)
    return compile_checked(policy, where, str(path), world)
