"""The held-out questions: eval items made from pairs never trained on, and the view of the KB that asks each
as it is meant to be asked (unanswerable ones without the chunks that hold their answer, a user record with
its passage among the hits), for the eval runner to ask of the base and the tuned model alike.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit.finetune.examples import ExampleBuilder, retrieve_without
from ragkit.finetune.questions import QAPair
from ragkit.finetune.train import NOTE_CHARS, ProgressEvent, ProgressFn
from ragkit.fsutil import atomic_write

if TYPE_CHECKING:
    from ragkit.answering import AnswerOptions
    from ragkit.api import KnowledgeBase
    from ragkit.config import RagkitConfig
    from ragkit.evals.datasets import EvalItem
    from ragkit.protocols import Embedder, Generator
    from ragkit.types import Answer, Hit

# the before/after table: metric key and label, in the order printed
COMPARED = (
    ("answer/f1", "answer F1"),
    ("abstention/rate_unanswerable", "abstention on unanswerable"),
    ("abstention/false_rate_answerable", "false abstention (answerable)"),
    ("claims/unsupported_rate", "unsupported-claim rate"),
    ("citations/precision", "citation precision"),
)


@dataclass(frozen=True, slots=True)
class HeldOut:
    """The held-out questions as eval items, and how each is asked.

    excluded: question -> chunk ids left out of its retrieval (KB questions asked as unanswerable).
    planted: question -> (passage, slot index): a user record's passage placed among `ask`'s hits, as in
    training; an unanswerable one gets another held-out record's passage instead of its own.
    """

    items: tuple[EvalItem, ...]
    excluded: dict[str, set[int]]
    planted: dict[str, tuple[str, int]]

    def counts(self) -> dict[str, int]:
        """{"answerable": n, "unanswerable": m}: what data.json and comparison.json report."""
        answerable = sum(i.answerable for i in self.items)
        return {"answerable": answerable, "unanswerable": len(self.items) - answerable}

    def records(self) -> list[dict[str, Any]]:
        """heldout.jsonl: each item as eval JSON, with the chunks left out of its retrieval or its passage."""
        out = []
        for item in self.items:
            extra: dict[str, Any] = {}
            if item.question in self.excluded:
                extra["exclude_chunk_ids"] = sorted(self.excluded[item.question])
            if item.question in self.planted:
                extra["passage"] = self.planted[item.question][0]
            out.append({**item.to_json(), **extra})
        return out


def heldout_items(
    pairs: Sequence[QAPair], builder: ExampleBuilder, rng: random.Random, unanswerable: float = 0.5
) -> HeldOut:
    """Eval items from held-out pairs: a share `unanswerable` are asked without what holds their answer (the
    KB chunks that quote it, or for a user record its own passage; the right reply is to abstain); the rest
    are answerable with the answer sentence (and its short span) as gold."""
    from ragkit.evals.datasets import EvalItem

    order = list(range(len(pairs)))
    rng.shuffle(order)
    n_unans = round(len(pairs) * unanswerable) if len(pairs) > 1 else 0
    contexts = [p.context for p in pairs if p.context]
    items: list[EvalItem] = []
    excluded: dict[str, set[int]] = {}
    planted: dict[str, tuple[str, int]] = {}
    questions: set[str] = set()
    for pos, i in enumerate(order):
        p = pairs[i]
        if p.question in questions:
            continue
        questions.add(p.question)
        if pos < n_unans:
            if p.context is not None:
                others = [c for c in contexts if c != p.context]
                if not others:
                    continue
                planted[p.question] = (others[pos % len(others)], pos)
            else:
                support = builder.supporting_ids(p)
                if not support:
                    continue
                excluded[p.question] = support
            items.append(EvalItem(f"heldout-{pos + 1}", p.question, answerable=False, category="unanswerable"))
        else:
            if p.context is not None:
                planted[p.question] = (p.context, pos)
            golds = tuple(dict.fromkeys(a for a in (p.answer, p.short) if a))
            chunks = (p.chunk_id,) if p.chunk_id is not None else ()
            items.append(EvalItem(f"heldout-{pos + 1}", p.question, golds, True, chunks, category=p.origin))
    return HeldOut(tuple(items), excluded, planted)


class HeldOutView:
    """A knowledge base that retrieves for held-out questions as they are to be asked: without given chunks
    (unanswerable KB questions) or with a user record's passage among the hits. Every other question, and
    everything else, is the KB's own. An `ragkit.protocols.EvalTarget`, for the eval runner."""

    def __init__(self, kb: KnowledgeBase, held: HeldOut, builder: ExampleBuilder) -> None:
        self.kb = kb
        self.root: Path = kb.root
        self.config: RagkitConfig = kb.config
        self.manifest: dict[str, Any] = kb.manifest
        self._held = held
        self._builder = builder
        self._cosine: dict[str, float] = {}  # the eval runner searches, then asks: embed each question once

    @property
    def embedder(self) -> Embedder:
        return self.kb.embedder

    @property
    def generator(self) -> Generator:
        return self.kb.generator

    def search(self, query: str, k: int | None = None, **options: Any) -> list[Hit]:
        """The KB's hits, with the question's excluded chunks left out or its planted passage in its slot."""
        if query in self._held.planted:
            passage, index = self._held.planted[query]
            hits = self._builder.among_hits(query, passage, index)
            # the planted passage has no FAISS score; give it its cosine so the relevance floor sees it
            if query not in self._cosine:
                vecs = self.kb.embedder.embed([query, passage])
                self._cosine[query] = float(vecs[1] @ vecs[0])
            cosine = self._cosine[query]
            return [replace(h, dense=cosine) if h.chunk.id < 0 else h for h in hits]
        drop = self._held.excluded.get(query)
        if not drop:
            return self.kb.search(query, k, **options)
        return retrieve_without(self.kb, query, drop, k)

    def ask(self, question: str, k: int | None = None, max_new_tokens: int | None = None, **options: Any) -> Answer:
        """`kb.ask`, on this view's hits for a held-out question."""
        if question not in self._held.excluded and question not in self._held.planted:
            return self.kb.ask(question, k, max_new_tokens, **options)
        answer_options = self.kb.answer_options(max_new_tokens=max_new_tokens)
        t0 = time.perf_counter()
        hits = self.search(question, k)
        return self.kb.answer(question, hits, answer_options, retrieve_s=time.perf_counter() - t0)


def evaluate_heldout(
    kb: KnowledgeBase,
    held: HeldOut,
    adapter: str,
    folder: Path,
    answer_options: AnswerOptions,
    max_new_tokens: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, dict[str, float | None]], Path, Path]:
    """Ask the held-out questions of the base model and of the adapter saved in `folder` (kb/models/ADAPTER)
    through the eval runner (runs under kb/runs/); write the comparison to folder/comparison.json.

    Returns (metric -> {base, tuned, delta}, the base run's folder, the tuned run's folder).
    answer_options: how the questions' user passages are packed among the hits (ExampleBuilder's).
    """
    from ragkit.evals.datasets import Dataset
    from ragkit.evals.runner import run_eval
    from ragkit.evals.scoring import EvalOptions

    dataset = Dataset(f"finetune-{adapter}-heldout", held.items, str(folder / "heldout.jsonl"))
    eval_opts = EvalOptions(max_new_tokens=max_new_tokens)
    runs = {}
    tuned_kb = kb.with_adapter(adapter)
    try:
        for suffix, model_kb in (("base", kb), ("tuned", tuned_kb)):
            stage = f"eval-{suffix}"

            def on_sample(done: int, total: int, question: str, stage: str = stage) -> None:
                if progress:
                    progress(ProgressEvent(stage, done, total, note=question[:NOTE_CHARS]))

            view = HeldOutView(model_kb, held, ExampleBuilder(model_kb, answer_options))
            runs[suffix] = run_eval(
                view, dataset, name=f"finetune-{adapter}-{suffix}", options=eval_opts, progress=on_sample
            )
    finally:
        tuned_kb.close()
    comparison = compare_metrics(runs["base"].metrics, runs["tuned"].metrics)
    payload = {
        "base_run": str(runs["base"].run_dir),
        "tuned_run": str(runs["tuned"].run_dir),
        "questions": held.counts(),
        "metrics": comparison,
        # both runs abstain unasked below this relevance; the comparison is what tuning adds on top of it
        "min_relevance": kb.answer_options().min_relevance,
    }
    atomic_write(folder / "comparison.json", json.dumps(payload, indent=2))
    return comparison, runs["base"].run_dir, runs["tuned"].run_dir


def compare_metrics(base: dict[str, Any], tuned: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The before/after table: metric -> {base, tuned, delta}."""
    out: dict[str, dict[str, float | None]] = {}
    for key, _ in COMPARED:
        a, b = base.get(key), tuned.get(key)
        out[key] = {"base": a, "tuned": b, "delta": None if a is None or b is None else round(b - a, 6)}
    return out
