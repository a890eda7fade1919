"""Batch evaluation: every question through `kb.search` and `kb.ask`, judged, written to `runs/<id>/`.

A run directory holds config.json (resolved config, model identities, dataset hash), samples.jsonl (one line
per question, appended as each finishes; a failing question is recorded with its error) and, once all
questions are done, metrics.json, report.md and report.html. A run that was killed or interrupted has no
metrics.json; running the same dataset with the same name and settings again continues it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit import __version__
from ragkit.errors import ConfigError
from ragkit.evals import metrics as M
from ragkit.evals.datasets import Dataset, EvalItem, load_dataset
from ragkit.evals.judges import Judge, make_judge, verdicts
from ragkit.textutil import split_sentences

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase
    from ragkit.types import Hit

ProgressFn = Callable[[int, int, str], None]  # (done, total, current question)

RECALL_KS = (1, 3, 5, 10)
STAGES = ("retrieve", "generate", "judge", "total")
_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_CONTEXT_CHARS = 1500  # per hit kept in samples.jsonl: enough to read in a report


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """What a run does; part of its fingerprint, so a resumed run never mixes settings."""

    k: int | None = None  # chunks given to the generator (None: the KB's retrieval.top_k)
    retrieval_k: int = 10  # hits scored for recall@k / MRR / nDCG@10
    max_new_tokens: int | None = None  # None: the KB's generator.max_new_tokens
    generate: bool = True  # False: retrieval metrics only, no GPT
    judge: str = "minilm-lexical"


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
        return read_samples(self.run_dir / "samples.jsonl")


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


def evaluate_item(kb: KnowledgeBase, item: EvalItem, index: int, judge: Judge | None, opts: EvalOptions) -> dict:
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
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        ranked = kb.search(item.question, k=opts.retrieval_k)
        timings["retrieve"] = time.perf_counter() - t0  # replaced by ask's own when generating
        hit_golds, n_gold = gold_keys(item, ranked)
        rec["retrieved"] = [_hit_record(h, g) for h, g in zip(ranked, hit_golds, strict=True)]
        if n_gold:
            rec["retrieval"] = {
                **{f"recall@{k}": M.recall_at_k(hit_golds, n_gold, k) for k in RECALL_KS},
                "mrr": M.reciprocal_rank(hit_golds),
                "ndcg@10": M.ndcg_at_k(hit_golds, n_gold, 10),
            }
        if opts.generate:
            _answer_and_judge(kb, item, judge, opts, rec, timings)
    except Exception as exc:  # recorded per sample, never dropped; the run goes on
        rec["status"] = "error"
        rec["error"] = f"{type(exc).__name__}: {exc}"
    timings["total"] = time.perf_counter() - t_start
    rec["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return rec


def _answer_and_judge(
    kb: KnowledgeBase, item: EvalItem, judge: Judge | None, opts: EvalOptions, rec: dict, timings: dict
) -> None:
    ans = kb.ask(item.question, k=opts.k, max_new_tokens=opts.max_new_tokens)
    timings["retrieve"] = ans.timings.get("retrieve", math.nan)
    timings["generate"] = ans.timings.get("generate", math.nan)
    rec.update(
        answer=ans.text,
        raw_answer=ans.raw_text,
        abstained=ans.abstained,
        relevance=None if ans.relevance is None else round(ans.relevance, 6),
        prompt_tokens=ans.prompt_tokens,
        completion_tokens=ans.completion_tokens,
        flagged_unsupported=list(ans.unsupported),
        contexts=[{**_hit_record(h), "text": h.chunk.text[:_CONTEXT_CHARS]} for h in ans.hits],
        citations=[{"n": c.n, "chunk_id": c.chunk_id, "kind": c.kind, "sentence": c.sentence} for c in ans.citations],
    )
    if item.answers:
        rec["scores"] = {
            "exact_match": M.exact_match(ans.text if not ans.abstained else "", item.answers),
            "f1": M.token_f1(_MARKER.sub("", ans.text) if not ans.abstained else "", item.answers),
            "contains": M.contains_answer(ans.text if not ans.abstained else "", item.answers),
        }
    claims = [] if ans.abstained else split_sentences(_MARKER.sub("", ans.text))
    t0 = time.perf_counter()
    judged: list[dict[str, Any]] = []
    if claims and judge is not None:
        everything = "\n\n".join(h.chunk.text for h in ans.hits)
        overall = verdicts(judge, claims, [everything] * len(claims))
        cited = [(i, c.n) for i, claim in enumerate(claims) for c in ans.citations if c.sentence == claim]
        per_cite = verdicts(judge, [claims[i] for i, _ in cited], [ans.hits[n - 1].chunk.text for _, n in cited])
        for i, claim in enumerate(claims):
            mine = [(n, v) for (j, n), v in zip(cited, per_cite, strict=True) if j == i]
            judged.append(
                {
                    "claim": claim,
                    "support": round(overall[i][0], 4),
                    "supported": overall[i][1],
                    "citations": [n for n, _ in mine],
                    "cited_supported": [v[1] for _, v in mine],
                }
            )
    timings["judge"] = time.perf_counter() - t0
    rec["claims"] = judged


# --- aggregation --------------------------------------------------------------------------------------


def compute_metrics(samples: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Flat metrics over sample records; a metric with nothing to average is None."""
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


# --- files --------------------------------------------------------------------------------------------


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


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def _fingerprint(kb: KnowledgeBase, dataset: Dataset, opts: EvalOptions) -> str:
    payload = json.dumps(
        {"dataset": dataset.sha256, "config": kb.config.model_dump(), "options": _opts(opts)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _opts(opts: EvalOptions) -> dict[str, Any]:
    return {f: getattr(opts, f) for f in EvalOptions.__dataclass_fields__}


def _find_unfinished(runs: Path, slug: str, fingerprint: str) -> Path | None:
    if not runs.is_dir():
        return None
    for d in sorted(runs.iterdir(), reverse=True):
        if not d.name.endswith("-" + slug) or (d / "metrics.json").exists():
            continue
        try:
            cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if cfg.get("fingerprint") == fingerprint:
            return d
    return None


def _model_identities(kb: KnowledgeBase, judge: Judge | None, opts: EvalOptions) -> dict[str, Any]:
    models: dict[str, Any] = {"embedder": kb.manifest.get("embedder")}
    if opts.generate:
        from ragkit.assets import resolve_generator

        path = resolve_generator(kb.config.generator.model)
        models["generator"] = {"name": kb.config.generator.model, "path": str(path), "bytes": _size(path)}
    if judge is not None:
        models["judge"] = {"name": judge.name, "threshold": judge.threshold}
        for attr in ("weights", "bias"):
            if hasattr(judge, attr):
                models["judge"][attr] = getattr(judge, attr)
    return models


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _clean_rewrite(path: Path, samples: Sequence[dict[str, Any]]) -> None:
    """Rewrite samples.jsonl with only whole records, so appends never land after a cut-off line."""
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- the run ------------------------------------------------------------------------------------------


def run_eval(
    kb: KnowledgeBase,
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
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    ds = ds.head(limit)
    slug = _slug(name or ds.name)
    if judge is None and opts.generate:
        judge = make_judge(
            opts.judge, embedder=kb.embedder, generator=kb.generator if opts.judge.startswith("llm") else None
        )
    runs = kb.root / "runs"
    fingerprint = _fingerprint(kb, ds, opts)
    run_dir = _find_unfinished(runs, slug, fingerprint) if resume else None
    samples_path = (run_dir or runs) / "samples.jsonl"
    done: list[dict[str, Any]] = []
    if run_dir is not None:
        done = read_samples(samples_path)
        _clean_rewrite(samples_path, done)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = runs / f"{stamp}-{slug}"
        n = 1
        while run_dir.exists():  # never overwrite a previous run
            n += 1
            run_dir = runs / f"{stamp}-{slug}-{n}"
        run_dir.mkdir(parents=True)
        samples_path = run_dir / "samples.jsonl"
        config = {
            "name": slug,
            "created": datetime.now().isoformat(timespec="seconds"),
            "ragkit_version": __version__,
            "fingerprint": fingerprint,
            "kb": str(kb.root),
            "dataset": {"name": ds.name, "source": ds.source, "sha256": ds.sha256, "items": len(ds)},
            "options": {**_opts(opts), "limit": limit, "workers": workers},
            "config": kb.config.model_dump(),
            "models": _model_identities(kb, judge, opts),
        }
        (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    resumed = len(done)
    seen = {s["id"] for s in done}
    todo = [(i, item) for i, item in enumerate(ds.items) if item.id not in seen]
    lock = threading.Lock()
    finished = len(done)
    with samples_path.open("a", encoding="utf-8") as f:

        def record(rec: dict[str, Any]) -> None:
            nonlocal finished
            with lock:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                done.append(rec)
                finished += 1
                if progress:
                    progress(finished, len(ds), rec["question"])

        if progress:
            progress(finished, len(ds), "")
        if workers == 1:
            for i, item in todo:
                record(evaluate_item(kb, item, i, judge, opts))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(evaluate_item, kb, item, i, judge, opts) for i, item in todo]
                try:
                    for fut in as_completed(futures):
                        record(fut.result())
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    done.sort(key=lambda s: s["index"])
    # Parallel workers and resumed runs append in finishing order; a finished run lists the questions in
    # dataset order, so two runs' files line up for diff and for readers. Replaced atomically: a kill here
    # leaves the appended file, which is complete.
    tmp = samples_path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done), encoding="utf-8")
    tmp.replace(samples_path)
    metrics = compute_metrics(done)
    primary = primary_metric_for(metrics)
    (run_dir / "metrics.json").write_text(
        json.dumps({"primary_metric": primary, **metrics}, indent=2, sort_keys=True), encoding="utf-8"
    )
    if report:
        from ragkit.evals.report import write_report

        write_report(run_dir)
    return EvalRun(
        run_dir=run_dir,
        name=slug,
        metrics=metrics,
        primary_metric=primary,
        n_samples=len(done),
        n_errors=sum(s.get("status") != "ok" for s in done),
        resumed=resumed,
    )


def load_run(run_dir: str | Path) -> EvalRun:
    """A finished run from its directory (metrics.json must exist)."""
    d = Path(run_dir)
    path = d / "metrics.json"
    if not path.exists():
        raise ConfigError(f"{d}: no metrics.json; not a finished eval run (re-run `ragkit eval run` to finish it)")
    data = json.loads(path.read_text(encoding="utf-8"))
    primary = data.pop("primary_metric", "answer/f1")
    samples = read_samples(d / "samples.jsonl")
    return EvalRun(
        run_dir=d,
        name=d.name,
        metrics=data,
        primary_metric=primary,
        n_samples=len(samples),
        n_errors=sum(s.get("status") != "ok" for s in samples),
        resumed=0,
    )
