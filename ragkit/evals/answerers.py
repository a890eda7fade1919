"""Who answered: with generator.fallback a run's answers come from two models, and a reader comparing a pair with
one model needs each one's share and quality, not only the totals (eval samples record `generator` per answer
and `fallback` where the second model was asked)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragkit.evals import metrics as M

HEADER = ("answered by", "answers", "answerable", "contains gold", "unsupported claims")


def answered_by(samples: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    """One row per model that delivered answers (as HEADER: its answers, how many were to answerable questions,
    the share of those holding the gold answer, the judge's unsupported share of its claims), then how often
    both drafts were withheld; () for a run where a single model answered and no second one was asked."""
    ran = [s for s in samples if s.get("status") == "ok" and "abstained" in s]
    delivered = [s for s in ran if not s["abstained"] and s.get("generator")]
    names = sorted({str(s["generator"]) for s in delivered})
    asked = [s for s in ran if "fallback" in s]
    if len(names) < 2 and not asked:
        return ()
    rows = []
    for name in names:
        mine = [s for s in delivered if s["generator"] == name]
        scored = [s["scores"]["contains"] for s in mine if s.get("answerable") and "scores" in s]
        claims = [bool(c["supported"]) for s in mine for c in s.get("claims", [])]
        unsupported = M.mean(float(not c) for c in claims)
        rows.append((name, str(len(mine)), str(len(scored)), M.fmt(M.mean(scored)), M.fmt(unsupported)))
    both = [s for s in asked if s["abstained"]]
    rows.append(
        ("(asked both, both withheld)", str(len(both)), str(sum(bool(s.get("answerable")) for s in both)), "-", "-")
    )
    return tuple(rows)
