"""Evaluation runs: datasets, metrics, judges, the batch runner, reports and run comparison.

from ragkit.evals import run_eval, load_dataset, compare_runs
"""

from ragkit.evals.compare import compare_runs
from ragkit.evals.datasets import Dataset, EvalItem, load_dataset
from ragkit.evals.runner import EvalOptions, EvalRun, load_run, run_eval

__all__ = ["Dataset", "EvalItem", "EvalOptions", "EvalRun", "compare_runs", "load_dataset", "load_run", "run_eval"]
