"""The run folder `kb/runs/<timestamp>-<name>/`: created, appended to, resumed, finished, read back.

A run folder holds config.json (resolved config, model identities, dataset hash, fingerprint), samples.jsonl
(one line per question, appended as each finishes) and, once all questions are done, metrics.json (which
marks the run finished), report.md and report.html. An unfinished folder whose fingerprint matches a new
run of the same name is continued instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit.errors import ConfigError
from ragkit.evals.scoring import compute_metrics, primary_metric_for
from ragkit.fsutil import atomic_write, atomic_write_lines

if TYPE_CHECKING:
    from ragkit.evals.datasets import Dataset
    from ragkit.evals.scoring import EvalOptions
    from ragkit.protocols import EvalTarget

CONFIG, SAMPLES, METRICS_FILE = "config.json", "samples.jsonl", "metrics.json"


@dataclass(frozen=True, slots=True)
class EvalRun:
    """A finished (or resumed-and-finished) run: where it is and its flat metrics."""

    run_dir: Path
    name: str
    metrics: dict[str, float | None]
    primary_metric: str
    n_samples: int
    n_errors: int
    resumed: int  # samples that a previous, interrupted attempt had already written

    @property
    def primary(self) -> float | None:
        return self.metrics.get(self.primary_metric)

    def samples(self) -> list[dict[str, Any]]:
        """The per-question records of samples.jsonl."""
        return read_samples(self.run_dir / SAMPLES)


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Records of a samples.jsonl; a last line cut off by a kill is ignored."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def slug(name: str) -> str:
    """A run name as it appears in the folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def fingerprint(kb: EvalTarget, dataset: Dataset, opts: EvalOptions, dtype: str | None = None) -> str:
    """What makes two runs the same run: the dataset's content, the KB's config, the options, who reads (a run
    resumed by another principal would show them the first one's samples) and the dtype the generator runs in
    (generator.dtype "auto" resolves per machine: a run begun in bf16 is not resumed in fp32)."""
    payload = json.dumps(
        {
            "dataset": dataset.sha256,
            "config": kb.config.model_dump(exclude={"runtime"}),  # local or Ray: the same run, resumable by either
            "options": opts.as_dict(),
            **({"reader": repr(reader)} if (reader := getattr(kb, "principal", None)) else {}),
            **({"dtype": dtype} if dtype else {}),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _dumps(rec: dict[str, Any]) -> str:
    return json.dumps(rec, ensure_ascii=False)


class RunDir:
    """One run folder; `path` is where it lives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples_path = path / SAMPLES

    @classmethod
    def find_unfinished(cls, runs: Path, name: str, fingerprint: str) -> RunDir | None:
        """The newest folder of this run name with no metrics.json and the same fingerprint, if any."""
        if not runs.is_dir():
            return None
        for d in sorted(runs.iterdir(), reverse=True):
            if not d.name.endswith("-" + name) or (d / METRICS_FILE).exists():
                continue
            try:
                cfg = json.loads((d / CONFIG).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if cfg.get("fingerprint") == fingerprint:
                return cls(d)
        return None

    @classmethod
    def create(cls, runs: Path, name: str, config: dict[str, Any]) -> RunDir:
        """A new folder runs/<timestamp>-<name>[-n] (never a previous run's) holding config.json."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = runs / f"{stamp}-{name}"
        n = 1
        while path.exists():
            n += 1
            path = runs / f"{stamp}-{name}-{n}"
        path.mkdir(parents=True)
        atomic_write(path / CONFIG, json.dumps(config, indent=2, default=str))
        return cls(path)

    def read_samples(self) -> list[dict[str, Any]]:
        """The records written so far."""
        return read_samples(self.samples_path)

    def resume(self) -> list[dict[str, Any]]:
        """The records an interrupted attempt wrote; samples.jsonl is rewritten with only whole records, so
        appends never land after a line cut off by a kill."""
        done = self.read_samples()
        atomic_write_lines(self.samples_path, [_dumps(s) for s in done])
        return done

    def append(self, rec: dict[str, Any]) -> None:
        """Add one record at the end of samples.jsonl, flushed (callers serialise concurrent appends)."""
        with self.samples_path.open("a", encoding="utf-8") as f:
            f.write(_dumps(rec) + "\n")

    def finish(self, samples: Sequence[dict[str, Any]], *, name: str, resumed: int) -> EvalRun:
        """Write samples.jsonl in dataset order and metrics.json (which marks the run finished)."""
        done = sorted(samples, key=lambda s: s["index"])
        # Parallel workers and resumed runs append in finishing order; a finished run lists the questions in
        # dataset order, so two runs' files line up for diff and for readers. Replaced atomically: a kill here
        # leaves the appended file, which is complete.
        atomic_write_lines(self.samples_path, [_dumps(s) for s in done])
        metrics = compute_metrics(done)
        primary = primary_metric_for(metrics)
        atomic_write(
            self.path / METRICS_FILE, json.dumps({"primary_metric": primary, **metrics}, indent=2, sort_keys=True)
        )
        return _eval_run(self.path, name, metrics, primary, done, resumed)


def load_run(run_dir: str | Path) -> EvalRun:
    """A finished run from its directory (metrics.json must exist)."""
    d = Path(run_dir)
    path = d / METRICS_FILE
    if not d.is_dir():
        raise ConfigError(f"{d}: no such run folder; runs are the folders under KB/runs/")
    if not path.exists():
        raise ConfigError(f"{d}: no metrics.json; not a finished eval run (re-run `ragkit eval run` to finish it)")
    data = json.loads(path.read_text(encoding="utf-8"))
    primary = data.pop("primary_metric", "answer/f1")
    return _eval_run(d, d.name, data, primary, read_samples(d / SAMPLES), resumed=0)


def _eval_run(
    path: Path, name: str, metrics: dict[str, float | None], primary: str, samples: Sequence[dict], resumed: int
) -> EvalRun:
    return EvalRun(
        run_dir=path,
        name=name,
        metrics=metrics,
        primary_metric=primary,
        n_samples=len(samples),
        n_errors=sum(s.get("status") != "ok" for s in samples),
        resumed=resumed,
    )
