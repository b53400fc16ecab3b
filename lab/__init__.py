"""Loyalty Lab: simulate customers under loyalty policies written in YAML, and compare the policies honestly.

The Python API is the one the `lab` command uses::

    import lab
    scenario = lab.load_scenario("scenarios/classroom.yaml")        # policies compiled against the scenario
    comp = lab.compare(scenario, lab.CompareOptions(replications=10, jobs=2))
    comp.summary()            # the summary.json contract
    comp.replications         # pandas: policy x replication x outcome
    comp.timeseries           # pandas: policy x replication x period
    lab.write_report(comp, "results/classroom")                       # report.html and the figures

The names are imported on first use (PEP 562), so `import lab` and the `lab` command's quick subcommands
(`--help`, `validate`, `explain`) do not pay for pandas, scipy.stats and matplotlib.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from lab.errors import Diagnostic, LabError
    from lab.experiment.compare import (
        CompareOptions,
        Comparison,
        compare,
        write_comparison,
    )
    from lab.experiment.run import run_policy, write_run
    from lab.policy.loader import load_policy
    from lab.scenario.loader import LoadedScenario, load_scenario

# public name -> the module that defines it
_LAZY = {
    "Diagnostic": "lab.errors",
    "LabError": "lab.errors",
    "CompareOptions": "lab.experiment.compare",
    "Comparison": "lab.experiment.compare",
    "compare": "lab.experiment.compare",
    "write_comparison": "lab.experiment.compare",
    "run_policy": "lab.experiment.run",
    "write_run": "lab.experiment.run",
    "load_policy": "lab.policy.loader",
    "LoadedScenario": "lab.scenario.loader",
    "load_scenario": "lab.scenario.loader",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used, and keep the name."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lab' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def write_report(comp: Comparison, out_dir: Any) -> Any:
    """Write report.html and the PNG figures of a comparison into out_dir; returns the report's path."""
    from pathlib import Path

    from lab.report import write_report as _write

    return _write(comp, Path(out_dir))


__all__ = [
    "CompareOptions", "Comparison", "Diagnostic", "LabError", "LoadedScenario", "compare", "load_policy",
    "load_scenario", "run_policy", "write_comparison", "write_report", "write_run",
]
__version__ = "0.1.0"
