"""Evaluation runs: datasets, metrics, judges, the batch runner, reports and run comparison.

from ragkit.evals import run_eval, load_dataset, compare_runs
"""

from ragkit.evals.compare import compare_runs
from ragkit.evals.datasets import Dataset, EvalItem, load_dataset
from ragkit.evals.rundir import EvalRun, load_run
from ragkit.evals.runner import run_eval
from ragkit.evals.scoring import EvalOptions

__all__ = ["Dataset", "EvalItem", "EvalOptions", "EvalRun", "compare_runs", "load_dataset", "load_run", "run_eval"]
