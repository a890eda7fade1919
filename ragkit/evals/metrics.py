"""Pure metric functions: retrieval, answers, claims, abstention, cost. No models here. And METRICS, the table
of a run's metrics (key, label, direction) that the report and `eval compare` read.

Every function takes plain values and returns floats, so each is checked against hand-computed numbers.
A rate with an empty denominator is nan (not 0): "no unanswerable questions" is not "never abstained".
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ragkit.citations import strip_markers

# --- the metrics a run reports ------------------------------------------------------------------------


class Metric(NamedTuple):
    """A run metric's key in metrics.json, its label in tables, and which way is better."""

    key: str
    label: str
    higher_is_better: bool


# Every key `scoring.compute_metrics` writes, in its order. The report's tables and `eval compare`'s deltas
# both read labels and directions here. Lower is better for latencies, token counts, unsupported claims,
# false abstentions and errors.
METRICS: tuple[Metric, ...] = (
    Metric("samples/total", "samples", True),
    Metric("samples/errors", "errors", False),
    Metric("samples/answerable", "answerable samples", True),
    Metric("retrieval/recall@1", "recall@1", True),
    Metric("retrieval/recall@3", "recall@3", True),
    Metric("retrieval/recall@5", "recall@5", True),
    Metric("retrieval/recall@10", "recall@10", True),
    Metric("retrieval/mrr", "MRR", True),
    Metric("retrieval/ndcg@10", "nDCG@10", True),
    Metric("answer/exact_match", "exact match", True),
    Metric("answer/f1", "token F1", True),
    Metric("answer/contains", "answer contains gold", True),
    Metric("claims/supported_rate", "supported claims", True),
    Metric("claims/unsupported_rate", "unsupported claims", False),
    Metric("claims/per_answer", "claims per answer", True),
    Metric("citations/precision", "citation precision", True),
    Metric("citations/recall", "citation recall", True),
    Metric("abstention/rate_unanswerable", "abstains when unanswerable", True),
    Metric("abstention/false_rate_answerable", "abstains when answerable", False),
    Metric("abstention/withheld_right_answerable", "right answers withheld", False),
    Metric("abstention/hedged_rate", "abstentions that went on to guess", False),
    Metric("abstention/relevance_auroc", "relevance AUROC", True),
    Metric("abstention/suggested_min_relevance", "suggested min_relevance", True),
    Metric("latency/retrieve_p50_s", "retrieve p50 (s)", False),
    Metric("latency/retrieve_p95_s", "retrieve p95 (s)", False),
    Metric("latency/generate_p50_s", "generate p50 (s)", False),
    Metric("latency/generate_p95_s", "generate p95 (s)", False),
    Metric("latency/judge_p50_s", "judge p50 (s)", False),
    Metric("latency/judge_p95_s", "judge p95 (s)", False),
    Metric("latency/total_p50_s", "total p50 (s)", False),
    Metric("latency/total_p95_s", "total p95 (s)", False),
    Metric("tokens/in_mean", "prompt tokens (mean)", False),
    Metric("tokens/out_mean", "answer tokens (mean)", False),
    Metric("tokens/per_s", "tokens/s", True),
)
METRIC = {m.key: m for m in METRICS}


def higher_is_better(key: str) -> bool:
    """Direction of a run metric (METRICS); a per-group key ("abstention/rate_unanswerable/off-topic") has its
    base key's direction; a key not in the table counts as higher-is-better."""
    m = METRIC.get(key) or METRIC.get(key.rpartition("/")[0])
    return True if m is None else m.higher_is_better


def fmt(value: float | None) -> str:
    """A metric for a table: 3 decimals, '-' when there is nothing to report."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


# --- retrieval ----------------------------------------------------------------------------------------
# A ranked list is given as, per hit, the set of gold keys it matches (empty = not relevant), plus the
# number of gold keys the question has. A key counts once: a second chunk of an already-found gold document
# adds nothing, so recall and nDCG stay within [0, 1].


def recall_at_k(hit_golds: Sequence[Iterable[str]], n_gold: int, k: int) -> float:
    """Share of the n_gold gold keys matched by the top k hits."""
    if n_gold <= 0:
        return math.nan
    found = set().union(*(set(g) for g in hit_golds[:k])) if hit_golds[:k] else set()
    return min(len(found), n_gold) / n_gold


def reciprocal_rank(hit_golds: Sequence[Iterable[str]], k: int | None = None) -> float:
    """1 / rank of the first relevant hit within the top k (0 when none is)."""
    for rank, golds in enumerate(hit_golds[:k] if k else hit_golds, start=1):
        if set(golds):
            return 1.0 / rank
    return 0.0


def ndcg_at_k(hit_golds: Sequence[Iterable[str]], n_gold: int, k: int = 10) -> float:
    """Binary-gain nDCG@k: a hit gains 1 when it matches a gold key not matched above it."""
    if n_gold <= 0:
        return math.nan
    seen: set[str] = set()
    dcg = 0.0
    for rank, golds in enumerate(hit_golds[:k], start=1):
        new = set(golds) - seen
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            seen |= new
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(n_gold, k) + 1))
    return dcg / ideal


def passage_matches(passage: str, chunk_text: str, threshold: float = 0.6) -> bool:
    """True when a chunk holds the passage or the passage holds the chunk (whitespace and case folded), or
    when `threshold` of the shorter one's tokens occur in the other (chunk boundaries rarely align)."""
    a, b = " ".join(passage.lower().split()), " ".join(chunk_text.lower().split())
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    ta, tb = Counter(a.split()), Counter(b.split())
    shorter, longer = (ta, tb) if sum(ta.values()) <= sum(tb.values()) else (tb, ta)
    return sum((shorter & longer).values()) / sum(shorter.values()) >= threshold


# --- answers (SQuAD v1.1 evaluation script's normalisation) -------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)


def _is_punct(ch: str) -> bool:
    """ASCII punctuation as SQuAD has it, and Unicode's too: dpkg's spec quotes its states in curly quotes
    (‘triggers-pending’), which kept the gold "triggers-pending" out of a right answer."""
    return ch in _ASCII_PUNCT or (ch > "\x7f" and unicodedata.category(ch).startswith("P"))


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and articles, squeeze whitespace (SQuAD's normalize_answer, with Unicode
    punctuation)."""
    text = "".join(ch for ch in text.lower() if not _is_punct(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer (nan without golds)."""
    if not golds:
        return math.nan
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best SQuAD token F1 of the prediction against the gold answers (nan without golds)."""
    if not golds:
        return math.nan
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        if not pred or not ref:
            best = max(best, float(pred == ref))
            continue
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            p, r = common / len(pred), common / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best


def contains_answer(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when a normalised gold answer occurs in the normalised prediction, as whole words (nan without
    golds). Sentence answers from a chat model rarely match exactly; this asks whether the fact is there."""
    if not golds:
        return math.nan
    # a citation marker is no part of the answer: "[1]" held the gold "1" in "... is 16 bytes [1]" (Nettle trial)
    prediction = strip_markers(prediction, " ")
    # SQuAD's normalisation deletes punctuation, which glues code together ("object.__contains__(self" ->
    # "objectcontainsself"); a match under either deleting it or reading it as a space counts
    for norm in (normalize_answer, _spaced):
        pred = f" {norm(prediction)} "
        if any(f" {g} " in pred for g in map(norm, golds) if g):
            return 1.0
    return 0.0


def _spaced(text: str) -> str:
    return normalize_answer("".join(" " if _is_punct(ch) else ch for ch in text))


# --- claims, citations, abstention --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    """One answer sentence judged against the context.

    supported: the judge finds it supported by the retrieved context as a whole.
    cited_supported: per citation of this claim, whether the cited chunk supports it.
    """

    claim: str
    support: float  # the judge's support probability against the whole retrieved context, 0..1
    supported: bool
    cited_supported: tuple[bool, ...] = ()


def claim_rates(verdicts: Sequence[ClaimVerdict]) -> dict[str, float]:
    """Supported/unsupported claim rates and citation precision/recall, micro-averaged over the claims.

    citation precision = supporting citations / citations; citation recall = claims with at least one
    supporting citation / claims.
    """
    n = len(verdicts)
    citations = [ok for v in verdicts for ok in v.cited_supported]
    supported = sum(v.supported for v in verdicts)
    return {
        "supported_claim_rate": supported / n if n else math.nan,
        "unsupported_claim_rate": (n - supported) / n if n else math.nan,
        "citation_precision": sum(citations) / len(citations) if citations else math.nan,
        "citation_recall": sum(any(v.cited_supported) for v in verdicts) / n if n else math.nan,
    }


def abstention_rates(answerable: Sequence[bool], abstained: Sequence[bool]) -> dict[str, float]:
    """abstention_rate on unanswerable questions (higher is better) and false_abstention_rate on answerable
    ones (lower is better)."""
    unans = [a for ok, a in zip(answerable, abstained, strict=True) if not ok]
    ans = [a for ok, a in zip(answerable, abstained, strict=True) if ok]
    return {
        "abstention_rate": sum(unans) / len(unans) if unans else math.nan,
        "false_abstention_rate": sum(ans) / len(ans) if ans else math.nan,
    }


def relevance_separation(answerable: Sequence[bool], relevance: Sequence[float]) -> dict[str, float]:
    """How well the question-to-best-source relevance (cosine) tells unanswerable questions from answerable ones.

    auroc: the chance that an answerable question scores above an unanswerable one (ties count half; 0.5 is
    chance, 1.0 perfect separation). floor: the min_relevance that maximises abstention on unanswerable
    questions minus false abstention on answerable ones (the lowest such, set halfway between two observed
    scores; ask abstains below it). Both nan without both kinds of question.
    """
    ans = [r for ok, r in zip(answerable, relevance, strict=True) if ok]
    unans = [r for ok, r in zip(answerable, relevance, strict=True) if not ok]
    if not ans or not unans:
        return {"auroc": math.nan, "floor": math.nan}
    auroc = sum((a > u) + 0.5 * (a == u) for a in ans for u in unans) / (len(ans) * len(unans))
    values = sorted(set(ans + unans))
    best, floor = 0.0, 0.0  # floor 0: abstaining on nothing
    for lower, upper in zip(values, [*values[1:], values[-1] + 0.02], strict=True):
        cut = (lower + upper) / 2  # abstain on every score up to `lower`
        gain = sum(u < cut for u in unans) / len(unans) - sum(a < cut for a in ans) / len(ans)
        if gain > best + 1e-12:
            best, floor = gain, cut
    return {"auroc": auroc, "floor": floor}


# --- cost ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100, linear interpolation) of the values; nan when there are none."""
    vals = [v for v in values if not math.isnan(v)]
    return float(np.percentile(vals, q)) if vals else math.nan


def tokens_per_second(completion_tokens: Sequence[int], generate_seconds: Sequence[float]) -> float:
    """Generated tokens per second of generation time, summed over samples."""
    seconds = sum(generate_seconds)
    return sum(completion_tokens) / seconds if seconds > 0 else math.nan


# --- classification (judge accuracy) ------------------------------------------------------------------


def binary_scores(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    """Balanced accuracy, precision, recall and F1 of the positive class (truth/predicted True = positive)."""
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    tn = sum(not t and not p for t, p in zip(truth, predicted, strict=True))
    tpr = tp / (tp + fn) if tp + fn else math.nan
    tnr = tn / (tn + fp) if tn + fp else math.nan
    precision = tp / (tp + fp) if tp + fp else math.nan
    f1 = 2 * precision * tpr / (precision + tpr) if tp else 0.0
    return {
        "balanced_accuracy": (tpr + tnr) / 2,
        "precision": precision,
        "recall": tpr,
        "f1": f1,
        "accuracy": (tp + tn) / len(truth) if truth else math.nan,
        "n": float(len(truth)),
    }


def mean(values: Iterable[float]) -> float:
    """Mean of the non-nan values; nan when there are none."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


# The summary table's metrics, in its order (labels and directions: metrics.METRICS)
SUMMARY = tuple(
    METRIC[k]
    for k in (
        "retrieval/recall@1",
        "retrieval/recall@5",
        "retrieval/mrr",
        "retrieval/ndcg@10",
        "answer/exact_match",
        "answer/f1",
        "answer/contains",
        "claims/supported_rate",
        "claims/unsupported_rate",
        "citations/precision",
        "citations/recall",
        "abstention/rate_unanswerable",
        "abstention/false_rate_answerable",
        "abstention/withheld_right_answerable",
        "abstention/relevance_auroc",
        "latency/retrieve_p50_s",
        "latency/generate_p50_s",
        "latency/generate_p95_s",
        "latency/judge_p50_s",
        "latency/total_p50_s",
        "latency/total_p95_s",
        "tokens/in_mean",
        "tokens/out_mean",
        "tokens/per_s",
    )
)


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, label) of SUMMARY's metrics this run has; per-construction rates follow their overall rate."""
    rows: list[tuple[str, str]] = []
    for m in SUMMARY:
        subs = sorted(k for k in metrics if k.startswith(m.key + "/") and metrics[k] is not None)
        rows += [(m.key, m.label)] * (metrics.get(m.key) is not None)
        rows += [(k, f"{m.label} ({k.rpartition('/')[2]})") for k in subs]
    return rows
