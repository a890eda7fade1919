"""Which signals separate answerable from unanswerable questions on the dev set? AUROC per signal, from the
run folders bench/devset.py wrote (no generation here: it reads samples.jsonl and embeds a few sentences).

    python bench/abstention_dev.py /tmp/devset/results-dev-config.json [--answerability DIR]

Signals, each higher = more likely answerable:
- relevance: the question's best cosine to a retrieved chunk (what the floor uses today);
- grounding: the answer's key span (numbers, names, code words it states that the question does not) found in
  a source sentence, scored by that sentence's cosine to the question; 0 when the span is in no source;
- support_min / support_mean: the claim judge's support of the answer's sentences (0 with no claims);
- answerability (with --answerability): a cross-encoder's probability that a retrieved chunk answers the
  question (bench/train_answerability.py), the best over the chunks given to the model.
AUROC 0.5 is chance. Per corpus and over all, on answerable vs all unanswerable, and per construction.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def grounding_score(sample: dict[str, Any], embed: Any) -> float:
    """ragkit.grounding's score for a sample's answer; 0 for an abstention, 1 when it states nothing new."""
    from ragkit.grounding import grounding

    if sample.get("abstained"):
        return 0.0
    g = grounding(sample["question"], sample.get("answer", ""), [c["text"] for c in sample.get("contexts", [])], embed)
    return 1.0 if g is None else g.score


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    from ragkit.evals.metrics import relevance_separation

    if len(set(labels)) < 2:
        return None
    return relevance_separation(list(labels), list(scores))["auroc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--answerability", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write per-sample signals here (JSONL)")
    args = ap.parse_args()

    from ragkit.embedding import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    ce = None
    if args.answerability:
        from sentence_transformers import CrossEncoder

        ce = CrossEncoder(str(args.answerability), device="cpu")
    results = json.loads(args.results.read_text())
    rows: list[dict[str, Any]] = []
    for corpus, part in results["parts"].items():
        run = Path(part["run_dir"])
        for line in (run / "samples.jsonl").read_text().splitlines():
            s = json.loads(line)
            if s.get("status") != "ok":
                continue
            supports = [c["support"] for c in s.get("claims", [])] if not s.get("abstained") else []
            row = {
                "corpus": corpus,
                "id": s["id"],
                "construction": s.get("construction", ""),
                "answerable": bool(s["answerable"]),
                "abstained": bool(s["abstained"]),
                "relevance": float(s.get("relevance") or 0.0),
                "grounding": grounding_score(s, emb.embed),
                "support_min": min(supports) if supports else 0.0,
                "support_mean": float(np.mean(supports)) if supports else 0.0,
            }
            if ce is not None:
                pairs = [(c["text"], s["question"]) for c in s.get("contexts", [])]
                probs = ce.predict(pairs, activation_fn=None) if pairs else []
                row["answerability"] = float(1 / (1 + np.exp(-np.max(probs)))) if len(probs) else 0.0
            rows.append(row)
    signals = [k for k in ("relevance", "grounding", "support_min", "support_mean", "answerability") if k in rows[0]]
    print(f"{'corpus':<10} {'n':>4} " + " ".join(f"{k:>13}" for k in signals))
    for corpus in [*results["parts"], "all"]:
        group = [r for r in rows if corpus in ("all", r["corpus"])]
        labels = [r["answerable"] for r in group]
        cells = []
        for k in signals:
            a = auroc(labels, [r[k] for r in group])
            cells.append(f"{'-' if a is None else f'{a:.3f}':>13}")
        print(f"{corpus:<10} {len(group):>4} " + " ".join(cells))
    print("\nper construction (AUROC of answerable vs that construction, all corpora):")
    for kind in sorted({r["construction"] for r in rows if not r["answerable"]}):
        group = [r for r in rows if r["answerable"] or r["construction"] == kind]
        labels = [r["answerable"] for r in group]
        cells = []
        for k in signals:
            a = auroc(labels, [r[k] for r in group])
            cells.append(f"{'-' if a is None else f'{a:.3f}':>13}")
        print(f"{kind:<17} " + " ".join(cells))
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
