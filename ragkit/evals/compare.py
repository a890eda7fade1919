"""Two runs side by side: metric deltas, per-question wins and losses, and a regression check for CI."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ragkit.errors import ConfigError
from ragkit.evals.metrics import higher_is_better
from ragkit.evals.rundir import load_run
from ragkit.evals.scoring import sample_score

__all__ = ["Comparison", "MetricDelta", "compare_runs", "higher_is_better"]


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None  # b - a
    improved: bool | None  # None when either side is missing or they are equal


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run B compared with run A (the baseline)."""

    run_a: Path
    run_b: Path
    deltas: tuple[MetricDelta, ...]
    metric: str  # the metric that decides regressions and per-question wins
    wins: tuple[str, ...]  # sample ids better in B
    losses: tuple[str, ...]  # sample ids worse in B
    ties: int
    only_in_one: int  # samples present in one run only (different datasets or limits)

    def delta_of(self, metric: str) -> MetricDelta:
        for d in self.deltas:
            if d.metric == metric:
                return d
        raise ConfigError(
            f"metric {metric!r} is in neither run; use one of: {', '.join(x.metric for x in self.deltas)}"
        )

    def regression(self, max_drop: float) -> float | None:
        """How far the chosen metric got worse from A to B when that exceeds max_drop (in the metric's
        units, direction-aware); None when it did not regress past it."""
        d = self.delta_of(self.metric)
        if d.delta is None:
            return None
        worse = -d.delta if higher_is_better(self.metric) else d.delta
        return worse if worse > max_drop + 1e-12 else None


def compare_runs(run_a: str | Path, run_b: str | Path, metric: str | None = None) -> Comparison:
    """Compare finished runs; `metric` defaults to run A's primary metric."""
    a, b = load_run(run_a), load_run(run_b)
    metric = metric or a.primary_metric
    keys = list(dict.fromkeys([*a.metrics, *b.metrics]))
    if metric not in keys:
        raise ConfigError(f"metric {metric!r} is in neither run; use one of: {', '.join(keys)}")
    deltas = []
    for k in keys:
        va, vb = a.metrics.get(k), b.metrics.get(k)
        delta = None if va is None or vb is None else round(vb - va, 6)
        improved = None if not delta else (delta > 0) == higher_is_better(k)
        deltas.append(MetricDelta(k, va, vb, delta, improved))
    sa = {s["id"]: s for s in a.samples()}
    sb = {s["id"]: s for s in b.samples()}
    wins, losses, ties = [], [], 0
    for sid in sa.keys() & sb.keys():
        x, y = _sample_value(sa[sid], metric), _sample_value(sb[sid], metric)
        if x is None or y is None or math.isclose(x, y, abs_tol=1e-9):
            ties += 1
        elif (y > x) == higher_is_better(metric):
            wins.append(sid)
        else:
            losses.append(sid)
    return Comparison(
        run_a=a.run_dir,
        run_b=b.run_dir,
        deltas=tuple(deltas),
        metric=metric,
        wins=tuple(sorted(wins)),
        losses=tuple(sorted(losses)),
        ties=ties,
        only_in_one=len(sa.keys() ^ sb.keys()),
    )


def _sample_value(s: dict, metric: str) -> float | None:
    """A question's own value of a run metric where it has one; else its overall score."""
    group, _, name = metric.partition("/")
    if group == "retrieval":
        return s.get("retrieval", {}).get(name)
    if group == "answer":
        return s.get("scores", {}).get(name)
    if group == "latency":
        return s.get("timings", {}).get(name.split("_p")[0])
    return sample_score(s)
