"""How long the lab takes to refuse hostile policy files (issue 14: "keep every refusal under a second").

Each case is written once under a temporary folder, then loaded in-process with
`lab.policy.loader.load_policy` three times; the table gives the median wall time
(time.perf_counter), the code of the first diagnostic and how many diagnostics the
refusal holds. A case the lab accepted would print "ACCEPTED" (none should).
It is a measurement, not a test (tests/test_refusals.py checks the codes).

    python benchmarks/bench_refusals.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.errors import LabError  # noqa: E402
from lab.policy.loader import load_policy  # noqa: E402


def many_rules(n: int, *, unknown_fields: bool) -> str:
    """A policy of n rules, each legal, or each reading a field that does not exist."""
    lines = ["name: many", "rules:"]
    for i in range(n):
        when = f"customer.shoe_size_{i} > 1" if unknown_fields else f"purchase.amount > {i % 97}"
        lines += [f"  - id: r{i}", "    on: purchase", f"    when: \"{when}\"",
                  "    do: [{discount: {percent: 1}}]"]
    return "\n".join(lines) + "\n"


def garbage_keys(nbytes: int) -> str:
    """A policy mapping of about nbytes of keys the policy does not have."""
    out, size, i = ["name: garbage"], 13, 0
    while size < nbytes:
        line = f"garbage_key_{i:07d}: {i}"
        out.append(line)
        size += len(line) + 1
        i += 1
    return "\n".join(out) + "\n"


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, 10):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    lines.append("name: laughs")
    lines.append("rules: *a9")
    return "\n".join(lines) + "\n"


def deeply_nested(depth: int) -> str:
    return "name: deep\nrules: " + "[" * depth + "]" * depth + "\n"


CASES: list[tuple[str, Callable[[], str]]] = [
    ("6,000 rules reading unknown fields", lambda: many_rules(6000, unknown_fields=True)),
    ("8,000 legal rules", lambda: many_rules(8000, unknown_fields=False)),
    ("300 KB of garbage keys", lambda: garbage_keys(300_000)),
    ("billion laughs (10^10 nodes)", billion_laughs),
    ("nested 50,000 deep", lambda: deeply_nested(50_000)),
]


def refuse(path: Path) -> tuple[float, str, int]:
    """Seconds to refuse the file, the first diagnostic's code, the number of diagnostics."""
    start = time.perf_counter()
    try:
        load_policy(path)
    except LabError as e:
        took = time.perf_counter() - start
        return took, e.diagnostics[0].code, len(e.diagnostics)
    return time.perf_counter() - start, "ACCEPTED", 0


def main() -> None:
    print(f"{'case':<38} {'size':>9} {'median s':>9} {'runs (s)':>22} {'code':>12} {'diags':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in CASES:
            path = Path(tmp) / "hostile.yaml"
            text = make()
            path.write_text(text)
            runs = [refuse(path) for _ in range(3)]
            times = [r[0] for r in runs]
            _, code, count = runs[0]
            shown = " ".join(f"{t:.3f}" for t in times)
            print(f"{name:<38} {len(text.encode()) / 1024:>7.0f}KB {statistics.median(times):>9.3f} {shown:>22} "
                  f"{code:>12} {count:>6}")


if __name__ == "__main__":
    main()
