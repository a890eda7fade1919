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


def _draft(sample: dict[str, Any]) -> str | None:
    """What the model answered: the delivered answer, or the draft a check after generation withheld; None for
    an abstention before generation or the model's own."""
    withheld = sample.get("withheld")
    if isinstance(withheld, dict):
        return str(withheld["draft"])
    return None if sample.get("abstained") else str(sample.get("answer", ""))


def grounding_score(sample: dict[str, Any], embed: Any) -> float:
    """ragkit.grounding's score for a sample's answer (a withheld draft's too); 0 for an abstention, 1 when it
    states nothing new."""
    from ragkit.grounding import grounding

    draft = _draft(sample)
    if draft is None:
        return 0.0
    g = grounding(sample["question"], draft, [c["text"] for c in sample.get("contexts", [])], embed)
    return 1.0 if g is None else g.score


def supports(sample: dict[str, Any], judge: Any) -> list[float]:
    """The claim judge's support of each answer sentence: from the run for a delivered answer, judged here for
    a withheld draft (the run judges only what it delivers); empty for an abstention."""
    import re

    from ragkit.evals.judges import verdicts
    from ragkit.textutil import split_sentences

    if not isinstance(sample.get("withheld"), dict):
        return [c["support"] for c in sample.get("claims", [])] if not sample.get("abstained") else []
    claims = split_sentences(re.sub(r"\s*\[\d+(?:\s*,\s*\d+)*\]", "", sample["withheld"]["draft"]))
    everything = "\n\n".join(c["text"] for c in sample.get("contexts", []))
    return [p for p, _ in verdicts(judge, claims, [everything] * len(claims))]


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
    from ragkit.evals.judges import make_judge

    emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    judge = make_judge("minilm-lexical", embedder=emb)
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
            judged = supports(s, judge)
            row = {
                "corpus": corpus,
                "id": s["id"],
                "construction": s.get("construction", ""),
                "answerable": bool(s["answerable"]),
                "abstained": bool(s["abstained"]),
                "relevance": float(s.get("relevance") or 0.0),
                "grounding": grounding_score(s, emb.embed),
                "support_min": min(judged) if judged else 0.0,
                "support_mean": float(np.mean(judged)) if judged else 0.0,
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
