"""A mutation fuzzer over the shipped policies, scenarios and batch specs.

Each shipped file is mutated many times, structurally (on its data: a key dropped, renamed to a hostile
name, a value replaced by a hostile number, name or shape) and textually (on its text: a line dropped or
doubled, the text cut, YAML punctuation inserted, a number token replaced). Every mutant must either load
(`lab validate` exits 0) or be refused with well-formed one-line diagnostics (`FILE:LINE:COL: message`) and
exit 2, never an internal error. The seed is fixed, so a failure reproduces; LAB_FUZZ_SCALE multiplies the
number of mutants (default 1: 1,370 mutants and 30 hostile names, well under a minute).
"""

from __future__ import annotations

import copy
import math
import os
import random
import re
from pathlib import Path

import pytest
import yaml

from lab.cli import main
from lab.config import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261202
SCALE = float(os.environ.get("LAB_FUZZ_SCALE", "1"))
DIAG = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")
MORE = re.compile(r"^lab: [\d,]+ more problems? not shown")

HOSTILE_NUMBERS = [0, -1, 1, 2**63, -(2**63), 10**400, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan,
                   0.1, 1e-300, 1e300, 365 * 10**9, 0.5, -0.0]
HOSTILE_NAMES = ["", " ", "a\nb", "x" * 300, "x" * 5000, "\u202e", "é", "none", "points", "../../etc/passwd",
                 "/etc/passwd", "policies", "a:b", "- x", "{}", "[1]", "*a", "&a", "!!python/object", "\t", "\x00",
                 "%s%n", "{value}", "__class__", "1e999", "null", "true", "01", "名前", "a" * 65]
HOSTILE_SHAPES = [None, [], {}, [[]], [{}], {"a": 1}, [1, 2, 3], True, "text", {"": None}]
PUNCTUATION = [":", "-", "[", "]", "{", "}", "&a ", "*a", "!!str ", "!!python/object:os.system ", "\t", "'", '"',
               "#", "|", ">", "%", "@", "`", "<<: ", "? ", "---\n", "...\n", "\\", "\ufeff", ",", "  "]

POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
BATCHES = sorted((ROOT / "scenarios" / "batches").glob("*.yaml"))
#: Mutants per shipped file of each kind (scaled).
PER_FILE = {"policy": 150, "scenario": 80, "batch": 150}


# --------------------------------------------------------------------------- structural mutations
def _paths(data, here=()):
    """Every (path, value) in a YAML data tree."""
    yield here, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, here + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, here + (i,))


def _set(data, path, value):
    if not path:
        return value
    obj = data
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value
    return data


#: Mappings whose keys are user-chosen names, and keys whose values name something: mutated more often.
NAME_MAPS = {"points", "credit", "levels", "categories", "segments", "stacking", "factors"}
NAME_KEYS = {"name", "id", "ledger", "line", "category", "group", "free_item", "tier", "scenario", "policies"}


def _named(path) -> bool:
    return (len(path) >= 2 and path[-2] in NAME_MAPS) or (path and path[-1] in NAME_KEYS)


def _structural(rng: random.Random, data):
    data = copy.deepcopy(data)
    paths = [p for p, _ in _paths(data) if p]
    if not paths:
        return data
    named = [p for p in paths if _named(p)]
    if named and rng.random() < 0.4:  # a name, or what holds names: hostile names go there
        path = rng.choice(named)
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        if isinstance(parent, dict) and len(path) >= 2 and path[-2] in NAME_MAPS and rng.random() < 0.6:
            parent[rng.choice(HOSTILE_NAMES)] = parent.pop(path[-1])
        elif rng.random() < 0.3:
            _set(data, path, copy.deepcopy(rng.choice(HOSTILE_SHAPES)))
        else:
            _set(data, path, rng.choice(HOSTILE_NAMES))
        return data
    path = rng.choice(paths)
    parent = data
    for p in path[:-1]:
        parent = parent[p]
    op = rng.randrange(7)
    if op == 0:  # drop it
        del parent[path[-1]]
    elif op == 1 and isinstance(parent, dict):  # rename its key to a hostile name
        value = parent.pop(path[-1])
        parent[rng.choice(HOSTILE_NAMES)] = value
    elif op == 2:
        _set(data, path, rng.choice(HOSTILE_NUMBERS))
    elif op == 3:
        _set(data, path, rng.choice(HOSTILE_NAMES))
    elif op == 4:
        _set(data, path, copy.deepcopy(rng.choice(HOSTILE_SHAPES)))
    elif op == 5:  # another value of the file in its place
        other = copy.deepcopy(rng.choice([v for _, v in _paths(data)]))
        _set(data, path, other)
    else:  # a whole number nudged
        value = parent[path[-1]]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _set(data, path, value * rng.choice([-1, 0, 10**6, 1e-9, 1.5]) + rng.choice([0, 1, 0.5]))
        else:
            _set(data, path, [value])
    return data


def _dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- textual mutations
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def _textual(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    op = rng.randrange(6)
    i = rng.randrange(len(lines))
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[i])
    elif op == 2:
        return text[: rng.randrange(len(text))]
    elif op == 3:
        at = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:at] + rng.choice(PUNCTUATION) + lines[i][at:]
    elif op == 4:
        lines[i] = (" " * rng.choice([1, 2, 3, 8])) + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
    else:
        numbers = list(_NUMBER.finditer(text))
        if numbers:
            m = rng.choice(numbers)
            new = rng.choice(["1e308", "-1", "0", ".inf", ".nan", "1e-320", "99999999999999999999999", "0x10",
                              "1_000", "1:30", "-.inf", "2.5", "1e999"])
            return text[: m.start()] + new + text[m.end():]
    return "".join(lines)


def _mutants(rng: random.Random, text: str, n: int):
    data = parse_yaml(text, "<shipped>").to_python()  # the lab's reading: 'on:' is a key, not true
    for _ in range(n):
        if rng.random() < 0.55:
            mutant = data
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                mutant = _structural(rng, mutant)
            yield _dump(mutant)
        else:
            yield _textual(rng, text)


# --------------------------------------------------------------------------- the property
def _check(capsys, path: Path, origin: str, problems: list[str]) -> None:
    try:
        rc = main(["validate", str(path)])
    except SystemExit as e:  # argparse never sees these files, but say so if it ever does
        rc = e.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    bad = ""
    if rc not in (0, 2):
        bad = f"exit {rc}"
    elif "internal error" in err or "Traceback" in err:
        bad = "internal error"
    elif rc == 0 and (err.strip() or "ok:" not in out):
        bad = "exit 0 without 'ok:'"
    elif rc == 2 and not lines:
        bad = "exit 2 without a diagnostic"
    elif rc == 2 and not all(DIAG.match(line) or MORE.match(line) for line in lines):
        bad = "a malformed diagnostic line"
    elif any(len(line) > 1500 for line in lines):
        bad = "a diagnostic line over 1,500 characters"
    if bad:
        problems.append(f"{origin}: {bad}: {err.strip()[:300]!r}\n--- mutant ---\n{path.read_text()[:600]}")


def _run(kind: str, files: list[Path], tmp_path: Path, capsys, prepare=lambda text: text) -> int:
    rng = random.Random(f"{SEED}-{kind}")
    problems: list[str] = []
    count = 0
    for src in files:
        text = prepare(src.read_text())
        for i, mutant in enumerate(_mutants(rng, text, max(1, int(PER_FILE[kind] * SCALE)))):
            f = tmp_path / f"{src.stem}-{i}.yaml"
            f.write_text(mutant, encoding="utf-8", errors="surrogatepass")
            _check(capsys, f, f"{kind} {src.name} mutant {i}", problems)
            count += 1
    assert not problems, f"{len(problems)} of {count} mutants misbehaved:\n\n" + "\n\n".join(problems[:5])
    return count


def test_mutated_policies_load_or_are_refused_cleanly(tmp_path, capsys):
    assert _run("policy", POLICIES, tmp_path, capsys) >= len(POLICIES)


def test_mutated_scenarios_load_or_are_refused_cleanly(tmp_path, capsys):
    # in a folder of its own: the policies it names are the shipped ones
    assert _run("scenario", SCENARIOS, tmp_path, capsys) >= len(SCENARIOS)


def test_mutated_batch_specs_load_or_are_refused_cleanly(tmp_path, capsys):
    def absolute(text: str) -> str:  # the spec's scenario path, made independent of the folder the mutant is in
        return re.sub(r"^scenario: (.*)$", lambda m: f"scenario: {(BATCHES[0].parent / m.group(1)).resolve()}",
                      text, flags=re.M)

    assert _run("batch", BATCHES, tmp_path, capsys, prepare=absolute) >= len(BATCHES)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_policy_name_is_accepted_or_refused_cleanly(tmp_path, capsys, name):
    data = parse_yaml((ROOT / "policies" / "points.yaml").read_text(), "points").to_python()
    data["name"] = name
    data["points"] = {name: data["points"]["points"]} if name else data["points"]
    f = tmp_path / "p.yaml"
    f.write_text(_dump(data))
    problems: list[str] = []
    _check(capsys, f, f"name {name[:20]!r}", problems)
    assert not problems, problems[0]
