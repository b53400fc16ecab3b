"""Scenario batches at research scale: a design over scenario and policy parameters, many runs, one Parquet dataset.

A batch spec (YAML) names a base scenario, the policies, the factors to vary
(any scenario or policy parameter, by path), a design (grid, Latin hypercube, Sobol', Saltelli
or Morris) and the replications per design point. One concept per module:

==================  ==========================================================
``spec``            the spec's declarations and the checked `Batch`
``load``            `load_spec`: the spec, its scenario and policies, the design
``factors``         one varied parameter, checked against what it allows
``overrides``       factor paths: resolve a parameter by name, set its value
``design``          grid, Latin hypercube, Sobol', Saltelli and Morris designs
``tasks``           one task: every policy at one (design point, replication)
``dataset``         the Parquet tables, written in atomic chunks, read back
``identity``        what makes a batch this batch; the resume check
``executors``       local processes or a Dask cluster; surviving worker death
``progress``        done/total, rate, ETA on the terminal
``driver``          `run_batch`: run or resume a batch into its folder
==================  ==========================================================

The statistics of a dataset live in `lab.metrics.batch_summary` and
`lab.metrics.sensitivity`, its figures and HTML report in `lab.report.batch`,
and the `lab batch` / `lab batch-report` commands in `lab.cli`.
docs/BATCHES.md describes the spec, the dataset and the guarantees.
"""

from __future__ import annotations

from lab.batch.dataset import BatchData, read_dataset
from lab.batch.driver import BatchRun, run_batch
from lab.batch.load import load_spec
from lab.batch.spec import Batch, BatchError
from lab.batch.tasks import apply_point, run_task

__all__ = ["Batch", "BatchData", "BatchError", "BatchRun", "apply_point", "load_spec", "read_dataset", "run_batch",
           "run_task"]
