"""Loyalty Lab: simulate customers under loyalty policies written in YAML, and compare the policies honestly.

The Python API is the one the `lab` command uses::

    import lab
    scenario = lab.load_scenario("scenarios/classroom.yaml")        # policies compiled against the scenario
    comp = lab.compare(scenario, lab.CompareOptions(replications=10, jobs=2))
    comp.summary()            # the summary.json contract
    comp.replications         # pandas: policy x replication x outcome
    comp.timeseries           # pandas: policy x replication x period
    lab.write_report(comp, "results/classroom")                       # report.html and the figures
"""

from lab.errors import Diagnostic, LabError
from lab.experiment.compare import CompareOptions, Comparison, compare, write_comparison
from lab.experiment.run import run_policy, write_run
from lab.policy.loader import load_policy
from lab.scenario.loader import LoadedScenario, load_scenario


def write_report(comp: Comparison, out_dir):  # noqa: ANN001 - thin re-export, imports matplotlib lazily
    """Write report.html and the PNG figures of a comparison into out_dir; returns the report's path."""
    from pathlib import Path

    from lab.report import write_report as _write

    return _write(comp, Path(out_dir))


__all__ = [
    "CompareOptions", "Comparison", "Diagnostic", "LabError", "LoadedScenario", "compare", "load_policy",
    "load_scenario", "run_policy", "write_comparison", "write_report", "write_run",
]
__version__ = "0.1.0"
