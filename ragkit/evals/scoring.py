"""One question through the KB, scored: gold matching, answer scores, judged claims; and the run's metrics.

A sample record (one line of samples.jsonl) is built here and only read elsewhere: `compute_metrics` turns a
list of them into the flat metrics of metrics.json, and `sample_score` ranks them for the report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

import ragkit.evals.metrics as M
from ragkit.citations import strip_markers
from ragkit.evals.datasets import EvalItem
from ragkit.evals.judges import verdicts
from ragkit.textutil import split_sentences
from ragkit.withholding import WITHHOLDING_FLAGS

if TYPE_CHECKING:
    from ragkit.protocols import EvalTarget, Judge
    from ragkit.types import Answer, Hit

RECALL_KS = (1, 3, 5, 10)
STAGES = ("retrieve", "generate", "judge", "total")
UNSUPPORTED_PENALTY = 0.5  # sample_score: how much a fully unsupported answer loses from its F1
_CONTEXT_CHARS = 1500  # per hit kept in samples.jsonl: enough to read in a report


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """What a run does; part of its fingerprint, so a resumed run never mixes settings."""

    k: int | None = None  # chunks given to the generator (None: the KB's retrieval.top_k)
    retrieval_k: int = 10  # hits scored for recall@k / MRR / nDCG@10
    max_new_tokens: int | None = None  # None: the KB's generator.max_new_tokens
    generate: bool = True  # False: retrieval metrics only, no GPT
    judge: str = "minilm-lexical"

    def as_dict(self) -> dict[str, Any]:
        """The options as recorded in config.json and hashed into the run's fingerprint."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- gold matching ------------------------------------------------------------------------------------


def _uri_matches(uri: str, gold: str) -> bool:
    return uri == gold or uri.endswith("/" + gold.lstrip("/")) or fnmatch(uri, gold) or fnmatch(uri, "*/" + gold)


def gold_keys(item: EvalItem, hits: Sequence[Hit]) -> tuple[list[list[str]], int]:
    """For each hit, the gold keys it matches; and the number of gold keys (0: no retrieval gold).

    The best evidence the item has decides: chunk ids, then document uris, then passages, then the answer
    strings (one key, "answer": any hit that contains a gold answer is relevant).
    """
    if item.gold_chunk_ids:
        golds = set(item.gold_chunk_ids)
        return [[f"chunk:{h.chunk.id}"] if h.chunk.id in golds else [] for h in hits], len(golds)
    if item.gold_uris:
        return [[f"uri:{g}" for g in item.gold_uris if _uri_matches(h.chunk.uri, g)] for h in hits], len(item.gold_uris)
    if item.gold_passages:
        return [
            [f"passage:{i}" for i, p in enumerate(item.gold_passages) if M.passage_matches(p, h.chunk.text)]
            for h in hits
        ], len(item.gold_passages)
    if item.answers and item.answerable:
        return [["answer"] if M.contains_answer(h.chunk.text, item.answers) == 1.0 else [] for h in hits], 1
    return [[] for _ in hits], 0


# --- one question -------------------------------------------------------------------------------------


def _hit_record(h: Hit, golds: list[str] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "rank": h.rank,
        "chunk_id": h.chunk.id,
        "uri": h.chunk.uri,
        "location": h.chunk.location,
        "score": round(h.score, 4),
    }
    if golds is not None:
        rec["relevant"] = bool(golds)
    return rec


def evaluate_item(kb: EvalTarget, item: EvalItem, index: int, judge: Judge | None, opts: EvalOptions) -> dict:
    """Run one question and score it. Any failure is recorded in the returned record (status "error")."""
    rec: dict[str, Any] = {
        "id": item.id,
        "index": index,
        "question": item.question,
        "category": item.category,
        "answerable": item.answerable,
        "gold_answers": list(item.answers),
        "status": "ok",
    }
    if item.construction:
        rec["construction"] = item.construction
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        # Retrieval is scored on its own search at retrieval_k; `kb.ask` below searches again at k and its
        # own retrieve time replaces this one (one search per item is a follow-up that needs its own test).
        ranked = kb.search(item.question, k=opts.retrieval_k)
        timings["retrieve"] = time.perf_counter() - t0
        hit_golds, n_gold = gold_keys(item, ranked)
        rec["retrieved"] = [_hit_record(h, g) for h, g in zip(ranked, hit_golds, strict=True)]
        if n_gold:
            rec["retrieval"] = {
                **{f"recall@{k}": M.recall_at_k(hit_golds, n_gold, k) for k in RECALL_KS},
                "mrr": M.reciprocal_rank(hit_golds),
                "ndcg@10": M.ndcg_at_k(hit_golds, n_gold, 10),
            }
        if opts.generate:
            ans = kb.ask(item.question, k=opts.k, max_new_tokens=opts.max_new_tokens)
            answer_fields, ask_timings = _answer_fields(item, ans)
            rec.update(answer_fields)
            timings.update(ask_timings)  # ask's own retrieve time replaces the search's above
            t0 = time.perf_counter()
            rec["claims"] = _judge_claims(ans, judge)
            timings["judge"] = time.perf_counter() - t0
    except Exception as exc:  # recorded per sample, never dropped; the run goes on
        rec["status"] = "error"
        rec["error"] = f"{type(exc).__name__}: {exc}"
    timings["total"] = time.perf_counter() - t_start
    rec["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return rec


def _answer_fields(item: EvalItem, ans: Answer) -> tuple[dict[str, Any], dict[str, float]]:
    """The answer's part of a sample record, scored against the gold answers; and ask's stage timings."""
    fields_: dict[str, Any] = {
        "answer": ans.text,
        "raw_answer": ans.raw_text,
        "generator": ans.generator,
        "abstained": ans.abstained,
        "relevance": None if ans.relevance is None else round(ans.relevance, 6),
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": ans.completion_tokens,
        "flagged_unsupported": list(ans.unsupported),
        "contexts": [{**_hit_record(h), "text": h.chunk.text[:_CONTEXT_CHARS]} for h in ans.hits],
        "citations": [
            {"n": c.n, "chunk_id": c.chunk_id, "kind": c.kind, "sentence": c.sentence} for c in ans.citations
        ],
    }
    measured = {"grounding": ans.grounding, "coverage": ans.coverage, "confidence": ans.confidence}
    measured["verified"] = ans.verified
    if ans.draft:  # ragkit abstained after generating: what it withheld, and why (the check's flag)
        why = next((f.kind for f in ans.flags if f.kind in WITHHOLDING_FLAGS), None)
        if why is None and any(f.kind == "echoed_instruction" for f in ans.flags):
            why = "echoed_instruction"  # all it said was removed as a copied instruction, and so was its retry
        fields_["withheld"] = {"draft": ans.draft, "reason": why, **measured}
    else:
        fields_.update({k: v for k, v in measured.items() if v is not None})
    if any(f.kind == "hedged" for f in ans.flags):  # the model said it does not know, then guessed (raw_answer)
        fields_["hedged"] = True
    freed = next((f for f in ans.flags if f.kind == "released"), None)
    if freed is not None:  # a coverage check withheld it and the model's reading delivered it (ragkit.withholding)
        fields_["released"] = {"detail": freed.detail}
    second = next((f for f in ans.flags if f.kind == "fallback"), None)
    if second is not None:  # generator.fallback was asked too (ragkit.fallback): the draft not delivered, and why
        fields_["fallback"] = {"draft": second.text, "detail": second.detail}
    if item.answers:
        said = "" if ans.abstained else ans.text
        fields_["scores"] = {
            "exact_match": M.exact_match(said, item.answers),
            "f1": M.token_f1(strip_markers(said), item.answers),
            "contains": M.contains_answer(said, item.answers),
        }
    timings = {"retrieve": ans.timings.get("retrieve", math.nan), "generate": ans.timings.get("generate", math.nan)}
    if "verify" in ans.timings:  # the fallback model's readings (ragkit.fallback), when it read
        timings["verify"] = ans.timings["verify"]
    return fields_, timings


def _judge_claims(ans: Answer, judge: Judge | None) -> list[dict[str, Any]]:
    """The answer's sentences (claims), each judged against all its context and against each chunk it cites;
    none when it abstained or there is no judge."""
    claims = [] if ans.abstained else split_sentences(strip_markers(ans.text))
    if not claims or judge is None:
        return []
    everything = "\n\n".join(h.chunk.text for h in ans.hits)
    overall = verdicts(judge, claims, [everything] * len(claims), [ans.question] * len(claims))
    cites: dict[str, list[int]] = {}  # claim -> the numbers [n] its sentence cites, in citation order
    for c in ans.citations:
        cites.setdefault(c.sentence, []).append(c.n)
    pairs = [(i, n) for i, claim in enumerate(claims) for n in cites.get(claim, [])]
    cited = [claims[i] for i, _ in pairs]
    per_cite = verdicts(judge, cited, [ans.hits[n - 1].chunk.text for _, n in pairs], [ans.question] * len(pairs))
    cited_supported: dict[int, list[bool]] = {}
    cited_support: dict[int, float] = {}
    for (i, _), (p, ok) in zip(pairs, per_cite, strict=True):
        cited_supported.setdefault(i, []).append(ok)
        cited_support[i] = max(p, cited_support.get(i, 0.0))
    # A sentence its own cited source supports is supported (rule JC, docs/design-notes.md): joined with the
    # other sources it can only lose support through the role check, to a rival in an unrelated source.
    return [
        {
            "claim": claim,
            "support": round(max(overall[i][0], cited_support.get(i, 0.0)), 4),
            "supported": overall[i][1] or any(cited_supported.get(i, [])),
            "citations": list(cites.get(claim, [])),
            "cited_supported": cited_supported.get(i, []),
        }
        for i, claim in enumerate(claims)
    ]


# --- aggregation --------------------------------------------------------------------------------------


def abstention_by_construction(answered: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Abstention per construction: abstention/rate_unanswerable/<name> for unanswerable items and
    abstention/false_rate_answerable/<name> for answerable ones; nothing for items without a construction."""
    out: dict[str, float] = {}
    names = sorted({(s.get("construction"), bool(s["answerable"])) for s in answered if s.get("construction")})
    for name, answerable in names:
        group = [
            bool(s["abstained"]) for s in answered if s.get("construction") == name and s["answerable"] == answerable
        ]
        base = "abstention/false_rate_answerable" if answerable else "abstention/rate_unanswerable"
        out[f"{base}/{name}"] = sum(group) / len(group)
    return out


def withheld_right(answered: Sequence[dict[str, Any]]) -> float:
    """Share of answerable questions (with gold answers) whose answer a check withheld although the draft held a
    gold answer: the right answers the abstention checks cost (the rest of false abstention withheld wrong
    drafts, or the model abstained itself); nan without such questions."""
    golden = [s for s in answered if s["answerable"] and s.get("gold_answers")]
    lost = [
        "withheld" in s and M.contains_answer(str(s["withheld"]["draft"]), s["gold_answers"]) == 1.0 for s in golden
    ]
    return sum(lost) / len(lost) if lost else math.nan


def compute_metrics(samples: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Flat metrics over sample records (the keys of metrics.METRICS); a metric with nothing to average is None."""
    ok = [s for s in samples if s.get("status") == "ok"]
    out: dict[str, float] = {
        "samples/total": float(len(samples)),
        "samples/errors": float(len(samples) - len(ok)),
        "samples/answerable": float(sum(bool(s.get("answerable")) for s in samples)),
    }
    retrieval = [s["retrieval"] for s in ok if "retrieval" in s]
    for key in [*(f"recall@{k}" for k in RECALL_KS), "mrr", "ndcg@10"]:
        out[f"retrieval/{key}"] = M.mean(r[key] for r in retrieval)
    scored = [s["scores"] for s in ok if "scores" in s and s.get("answerable")]
    for key in ("exact_match", "f1", "contains"):
        out[f"answer/{key}"] = M.mean(sc[key] for sc in scored)
    answered = [s for s in ok if "abstained" in s]
    verdict_list = [
        M.ClaimVerdict(c["claim"], c["support"], c["supported"], tuple(c["cited_supported"]))
        for s in answered
        for c in s.get("claims", [])
    ]
    rates = M.claim_rates(verdict_list)
    out["claims/supported_rate"] = rates["supported_claim_rate"]
    out["claims/unsupported_rate"] = rates["unsupported_claim_rate"]
    out["claims/per_answer"] = len(verdict_list) / len(answered) if answered else math.nan
    out["citations/precision"] = rates["citation_precision"]
    out["citations/recall"] = rates["citation_recall"]
    abst = M.abstention_rates([bool(s["answerable"]) for s in answered], [bool(s["abstained"]) for s in answered])
    out["abstention/rate_unanswerable"] = abst["abstention_rate"]
    out["abstention/false_rate_answerable"] = abst["false_abstention_rate"]
    out |= abstention_by_construction(answered)
    out["abstention/withheld_right_answerable"] = withheld_right(answered)
    # the model's own "I don't know" that went on to guess (flag hedged): delivered as the phrase, but a sign
    abstained = [s for s in answered if s["abstained"]]
    out["abstention/hedged_rate"] = (
        sum(bool(s.get("hedged")) for s in abstained) / len(abstained) if abstained else math.nan
    )
    measured = [s for s in answered if s.get("relevance") is not None]
    sep = M.relevance_separation([bool(s["answerable"]) for s in measured], [float(s["relevance"]) for s in measured])
    out["abstention/relevance_auroc"] = sep["auroc"]
    out["abstention/suggested_min_relevance"] = sep["floor"]
    for stage in STAGES:
        vals = [s["timings"][stage] for s in ok if stage in s.get("timings", {})]
        out[f"latency/{stage}_p50_s"] = M.percentile(vals, 50)
        out[f"latency/{stage}_p95_s"] = M.percentile(vals, 95)
    out["tokens/in_mean"] = M.mean(float(s["prompt_tokens"]) for s in answered)
    out["tokens/out_mean"] = M.mean(float(s["completion_tokens"]) for s in answered)
    out["tokens/per_s"] = M.tokens_per_second(
        [s["completion_tokens"] for s in answered], [s["timings"].get("generate", 0.0) for s in answered]
    )
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 6)) for k, v in out.items()}


def primary_metric_for(metrics: dict[str, float | None]) -> str:
    """answer/f1 when answers were generated and scored, else retrieval/ndcg@10."""
    return "answer/f1" if metrics.get("answer/f1") is not None else "retrieval/ndcg@10"


def sample_score(s: dict[str, Any]) -> float:
    """How well one question went, 0..1, for picking the worst examples.

    An error scores 0. An unanswerable question scores 1 when the model abstained, else 0. Otherwise the
    base is the answer's token F1 or its gold-contained score, whichever is higher (without generated
    answers, the retrieval MRR), less UNSUPPORTED_PENALTY times the share of unsupported claims, floored at 0.
    """
    if s.get("status") != "ok":
        return 0.0
    if not s.get("answerable", True):
        return 1.0 if s.get("abstained") else 0.0
    claims = s.get("claims", [])
    bad = sum(not c["supported"] for c in claims) / len(claims) if claims else 0.0
    sc = s.get("scores", {})
    base = max(sc.get("f1") or 0.0, sc.get("contains") or 0.0) if sc else s.get("retrieval", {}).get("mrr", 1.0)
    return max(0.0, base - UNSUPPORTED_PENALTY * bad)
