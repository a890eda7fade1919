"""Batch evaluation: every question through the KB (`scoring.evaluate_item`), judged, written to a run folder.

dataset -> judge -> questions (one thread or a pool) -> `RunDir` (rundir.py: config.json, samples.jsonl
appended as each question finishes, then metrics.json) -> report.md and report.html. A run that was killed or
interrupted has no metrics.json; running the same dataset with the same name and settings again continues it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit._version import __version__
from ragkit.errors import ConfigError
from ragkit.evals.datasets import Dataset, EvalItem, load_dataset
from ragkit.evals.judges import judge_identity, make_judge
from ragkit.evals.report import write_report
from ragkit.evals.rundir import EvalRun, RunDir, fingerprint, load_run, read_samples, slug
from ragkit.evals.scoring import (
    RECALL_KS,
    STAGES,
    EvalOptions,
    compute_metrics,
    evaluate_item,
    gold_keys,
    primary_metric_for,
)
from ragkit.kbdir import KbPaths

if TYPE_CHECKING:
    from ragkit.protocols import EvalTarget, Judge

# The names this module has always offered; they now live in scoring.py and rundir.py.
__all__ = [
    "RECALL_KS",
    "STAGES",
    "EvalOptions",
    "EvalRun",
    "ProgressFn",
    "compute_metrics",
    "evaluate_item",
    "gold_keys",
    "load_run",
    "primary_metric_for",
    "read_samples",
    "run_eval",
]

ProgressFn = Callable[[int, int, str], None]  # (done, total, current question)


def run_eval(
    kb: EvalTarget,
    dataset: Dataset | str | Path,
    *,
    name: str | None = None,
    limit: int | None = None,
    workers: int = 1,
    options: EvalOptions | None = None,
    judge: Judge | None = None,
    progress: ProgressFn | None = None,
    resume: bool = True,
    report: bool = True,
) -> EvalRun:
    """Evaluate the KB on a dataset and write `kb/runs/<timestamp>-<name>/`; returns the finished run.

    With resume=True an unfinished run of the same name, dataset and settings is continued: questions it
    already recorded are not asked again. workers > 1 asks questions in parallel threads (useful with a GPU
    or an HTTP generator; on a small CPU one worker is as fast).
    """
    opts = options or EvalOptions()
    if workers < 1:
        raise ConfigError("workers must be at least 1")
    ds = (dataset if isinstance(dataset, Dataset) else load_dataset(dataset)).head(limit)
    run_name = slug(name or ds.name)
    if judge is None and opts.generate:
        llm = kb.generator if opts.judge.startswith("llm") else None
        judge = make_judge(opts.judge, embedder=kb.embedder, generator=llm)
    runs = KbPaths(kb.root).runs
    fp = fingerprint(kb, ds, opts, _dtype(kb.config.generator) if opts.generate else None)
    run = RunDir.find_unfinished(runs, run_name, fp) if resume else None
    done = run.resume() if run is not None else []
    if run is None:
        config = _run_config(kb, ds, opts, judge, name=run_name, fingerprint=fp, limit=limit, workers=workers)
        run = RunDir.create(runs, run_name, config)
    resumed = len(done)
    seen = {s["id"] for s in done}
    todo = [(i, item) for i, item in enumerate(ds.items) if item.id not in seen]
    ask = _ask_all
    if kb.config.runtime.backend == "ray" and type(kb).__name__ == "KnowledgeBase":  # a whole KB reopens in actors
        from ragkit.evals.ray_runner import ask_all_ray as ask  # questions in a Ray actor pool, same run folder
    ask(Pending(kb, todo, judge, opts, workers, run, done, len(ds), progress))
    result = run.finish(done, name=run_name, resumed=resumed)
    if report:
        write_report(run.path)
    return result


@dataclass(frozen=True)
class Pending:
    """The questions a run still has to ask, how, and where each record goes (the run folder, then `done`):
    what the local pool (`_ask_all`) and Ray's (`ray_runner.ask_all_ray`) both take."""

    kb: EvalTarget
    todo: Sequence[tuple[int, EvalItem]]
    judge: Judge | None
    opts: EvalOptions
    workers: int
    run: RunDir
    done: list[dict[str, Any]]  # the records so far (a resumed run's first)
    total: int
    progress: ProgressFn | None
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def tick(self, question: str = "") -> None:
        """Tell the progress callback (questions done, total, the current question)."""
        if self.progress:
            self.progress(len(self.done), self.total, question)

    def record(self, rec: dict[str, Any]) -> None:
        """Append a finished question's record to the run folder and to `done` (from any thread)."""
        with self.lock:
            self.run.append(rec)
            self.done.append(rec)
            self.tick(rec["question"])


def _ask_all(work: Pending) -> None:
    """Evaluate the items, appending each record to the run folder and to `done` as it finishes."""
    kb, judge, opts = work.kb, work.judge, work.opts
    work.tick()
    if work.workers == 1:
        for i, item in work.todo:
            work.record(evaluate_item(kb, item, i, judge, opts))
        return
    with ThreadPoolExecutor(max_workers=work.workers) as pool:
        futures = [pool.submit(evaluate_item, kb, item, i, judge, opts) for i, item in work.todo]
        try:
            for fut in as_completed(futures):
                work.record(fut.result())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _run_config(
    kb: EvalTarget,
    ds: Dataset,
    opts: EvalOptions,
    judge: Judge | None,
    *,
    name: str,
    fingerprint: str,
    limit: int | None,
    workers: int,
) -> dict[str, Any]:
    """config.json of a new run: what ran, on what, with which models."""
    return {
        "name": name,
        "created": datetime.now().isoformat(timespec="seconds"),
        "ragkit_version": __version__,
        "fingerprint": fingerprint,
        "kb": str(kb.root),
        "reader": str(reader) if (reader := getattr(kb, "principal", None)) else None,  # whose documents it saw
        "dataset": {"name": ds.name, "source": ds.source, "sha256": ds.sha256, "items": len(ds)},
        "options": {**opts.as_dict(), "limit": limit, "workers": workers},
        "config": kb.config.model_dump(),
        "models": _model_identities(kb, judge, opts),
    }


def _model_identities(kb: EvalTarget, judge: Judge | None, opts: EvalOptions) -> dict[str, Any]:
    models: dict[str, Any] = {"embedder": kb.manifest.get("embedder")}
    if opts.generate:
        from ragkit.assets import resolve_generator

        g = kb.config.generator
        path = resolve_generator(g.model)
        models["generator"] = {"name": g.model, "path": str(path), "bytes": _size(path), "dtype": _dtype(g)}
    if judge is not None:
        models["judge"] = judge_identity(judge)
    return models


def _dtype(g: Any) -> str | None:
    """The dtype the transformers backend runs generator section `g`'s model in on this machine (generator.dtype
    "auto" resolved); None for the other backends, or where the setting cannot run here (loading says why)."""
    from ragkit.assets import planned_dtypes

    planned = planned_dtypes(g.model, g.dtype, g.device) if g.backend == "transformers" else None
    return planned[0] if planned else None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
