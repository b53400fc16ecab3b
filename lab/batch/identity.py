"""What makes a batch this batch: its identity in the manifest, and the check that a resume continues the same batch.

The identity names every input by hash (spec, scenario, policy files), the
seed, the sizes, the factors, the design table, a hash of the lab's own
sources and how the workers compute (`numerics`: lab.experiment.numerics).
`--resume` compares it with the stored manifest and refuses to mix runs of
different batches (or of different code or arithmetic, unless allowed) in one
dataset.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.batch.spec import Batch, BatchError
from lab.batch.tasks import SERIES
from lab.experiment.manifest import file_hash, versions
from lab.experiment.numerics import SAME_BITS, differences
from lab.experiment.run import json_safe
from lab.metrics.outcomes import OUTCOMES
from lab.scenario.scale import scaled_from

__all__ = ["FORMAT", "check_same", "code_hash", "identity", "other_batch", "session"]

#: The dataset format version (bumped when the tables or the runs' addressing change). 2: design points share
#: their random streams by default (`streams: shared`, address (replication,)); format-1 stores used
#: (point, replication).
FORMAT = 2


def identity(batch: Batch, numerics: dict[str, Any]) -> dict[str, Any]:
    """What makes a batch this batch: inputs by hash, seed, sizes, factors, design table, code and the workers'
    arithmetic, `numerics` (their fingerprint: lab.experiment.numerics); compared on --resume."""
    d = batch.spec.design
    return json_safe({
        "format": FORMAT,
        "name": batch.spec.name,
        "spec": {"path": str(batch.spec_path), "sha256": file_hash(batch.spec_path)},
        "scenario": {"path": str(batch.scenario_path), "sha256": file_hash(batch.scenario_path)},
        "policies": {p.name: {"path": str(p.path), "sha256": file_hash(p.path)} for p in batch.policies},
        "seed": batch.seed,
        "streams": batch.streams,
        "replications": batch.replications,
        "customers": batch.customers,
        "store_scaled_from": scaled_from(batch.scenario),  # (None: the store as written)
        "days": batch.days,
        # the days the outcomes cover in the base scenario (a factor on days or launch_day moves them per point):
        # for the report's words; not compared on --resume (days is, and launch_day is in the scenario's hash)
        "horizon": {"days": batch.days or batch.scenario.days, "launch_day": batch.scenario.launch_day},
        "design": {"type": d.tag, "samples": getattr(d, "samples", len(batch.points)), "seed": batch.design_seed,
                   **d.extra()},
        "factors": [f.describe() for f in batch.factors],
        "outcomes": list(OUTCOMES),
        "series_variables": list(SERIES),
        "total_runs": batch.total_runs,
        "code_sha256": code_hash(),
        "numerics": numerics,
        "points": [{"point": i, **p} for i, p in enumerate(batch.points)],
    })  # type: ignore[return-value]


def code_hash() -> str:
    """sha256 over the lab package's Python sources: the model that produced the numbers, edits included."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]  # the lab package
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


_COMPARED = ("format", "streams", "seed", "replications", "customers", "store_scaled_from", "days", "design", "factors",
             "points")


def other_batch(old: dict[str, Any], name: str, spec_path: Path, out: Path) -> str | None:
    """The refusal to say when the store `out`, whose manifest is `old`, holds another batch than batch `name`
    (of the spec at `spec_path`): one of another name; None when it holds a batch of this name (whose inputs
    `check_same` compares: a path as written may differ from one session to the next)."""
    if old.get("name") in (name, None):  # (None: a manifest that could not be read says nothing of it)
        return None
    was_path = (old.get("spec") or {}).get("path")
    return (f"{out} holds another batch ('{old.get('name')}', from {was_path}), not '{name}' from {spec_path}; "
            "choose another --out")


def check_same(old: dict[str, Any], new: dict[str, Any], out: Path, allow_code_change: bool) -> None:
    """Raise BatchError unless the stored identity `old` and the current `new` describe the same batch: another
    batch altogether is said alone; otherwise what changed, the inputs and options before the code."""
    other = other_batch(old, new["name"], Path(new["spec"]["path"]), out)
    if other is not None:
        raise BatchError(f"cannot resume: {other}")
    problems = []
    if old.get("format") != new["format"]:
        problems.append(f"the store was written in dataset format {old.get('format')} and this lab writes format "
                        f"{new['format']} (format 2: design points share their customers' random streams unless the "
                        "spec says 'streams: independent'), so resumed runs would not match the stored ones")
    for what in ("spec", "scenario"):
        if old.get(what, {}).get("sha256") != new[what]["sha256"]:
            problems.append(f"the {what} file {new[what]['path']} changed since the batch started (sha256 differs)")
    oldp = old.get("policies", {})
    if list(oldp) != list(new["policies"]):
        problems.append(f"the policies differ (stored: {', '.join(oldp)}; now: {', '.join(new['policies'])})")
    else:
        for name, v in new["policies"].items():
            if oldp[name].get("sha256") != v["sha256"]:
                problems.append(f"the policy file {v['path']} changed since the batch started (sha256 differs)")
    for key in _COMPARED:
        if old.get(key) != new[key]:
            problems.append(f"'{key}' differs from the stored batch "
                            f"({_brief(old.get(key))} then, {_brief(new[key])} now)")
    if old.get("code_sha256") != new["code_sha256"] and not allow_code_change:
        problems.append("the lab's code changed since the batch started (code_sha256 differs), so resumed runs could "
                        "differ from the stored ones; if the change cannot affect results, add --allow-code-change")
    was = old.get("numerics")  # (absent from stores written before it was recorded: their code differs anyway)
    if was is not None and [was.get(k) for k in SAME_BITS] != [new["numerics"][k] for k in SAME_BITS] \
            and not allow_code_change:
        problems.append("the workers compute floating-point functions otherwise than the ones that started the "
                        f"batch ({'; '.join(differences(was, new['numerics']))}), so resumed runs could differ from "
                        "the stored ones in their last digits; resume with the packages and the kind of machine "
                        "the batch started on, or add --allow-code-change to accept the difference")
    if problems:
        raise BatchError(f"cannot resume {out}: " + "; ".join(problems)
                         + ". Resuming must rerun the same batch: restore the files and use the same options, "
                         "or start afresh "
                         "with another --out")


def _brief(v: object) -> str:
    """A stored or current value as a person reads it: no Python reprs (None: customers or days not set by the
    spec or the command line, so the scenario's own)."""
    if v is None:
        text = "the scenario's own"
    elif isinstance(v, dict):
        text = ", ".join(f"{k} {_brief(x)}" for k, x in v.items())
    elif isinstance(v, list | tuple):
        text = f"{len(v)} entries" if v and isinstance(v[0], dict) else ", ".join(_brief(x) for x in v)
    else:
        text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def session(command: Sequence[str], executor: str, jobs: int | None, resumed: bool,
            numerics: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of one session (a start or a resume) of a batch, with its workers' arithmetic."""
    return {"started": datetime.now(UTC).isoformat(timespec="seconds"), "command": list(command),
            "cwd": os.getcwd(), "executor": executor, "jobs": jobs, "resumed": resumed, "versions": _versions(executor),
            "numerics": numerics}


def _versions(executor: str) -> dict[str, str]:
    out = versions()
    if executor == "dask":
        from importlib import metadata

        for name in ("dask", "distributed"):
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = "not installed"
    return out

