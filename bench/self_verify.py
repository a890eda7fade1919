"""Verification as an abstention signal: does a model (the generator itself, or a larger one) say a draft is
stated in the sources? The signal behind generator.min_verified (ragkit.verification).

    python bench/self_verify.py --workdir /tmp/devset [--split heldout] [--run KB/runs/NAME ...]
        [--verifier Qwen2.5-Coder-1.5B-Instruct] [--out scores.jsonl]

For every drafted answer of the newest dev-split (or held-out) runs of `bench/devset.py` (0.5B), and of any
other eval runs given, it asks the verifier "Do the sources state this answer to the question? Reply yes or
no." with the sources the generator saw, and scores P(yes) / (P(yes) + P(no)) from its next-token
distribution (one forward pass, no generation). It prints the AUROC of that score for right answers (gold in
the answer) against wrong and unanswerable drafts: over all drafts, and over the drafts the current checks
deliver, which is where a new signal would have to add something.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import ragkit
from ragkit.answering import AnswerOptions
from ragkit.citations import CheckedAnswer
from ragkit.evals.metrics import contains_answer
from ragkit.testing import make_hit
from ragkit.types import Generation
from ragkit.verification import verification_messages
from ragkit.withholding import withhold_unfounded


def _auroc(rows: list[tuple[bool, float]]) -> float | None:
    pos = [s for right, s in rows if right]
    neg = [s for right, s in rows if not right]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    from ragkit.generation.hf import TransformersGenerator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="bench/devset.py's work folder (its dev-split runs)")
    ap.add_argument("--run", type=Path, action="append", default=[], help="another eval run folder")
    ap.add_argument("--verifier", default="Qwen2.5-Coder-0.5B-Instruct")
    ap.add_argument("--split", choices=["dev", "heldout"], default="dev", help="which devset runs --workdir reads")
    ap.add_argument("--out", type=Path, help="write each draft's score here (JSON lines), to choose a floor from")
    args = ap.parse_args()
    runs = list(args.run)
    if args.workdir is not None:
        for corpus in ("sample", "pydocs", "halueval"):
            pattern = f"*-devset-{args.split}-Qwen2.5-Coder-0.5B-Instruct"
            found = sorted((args.workdir / f"kb-{corpus}" / "runs").glob(pattern))
            runs += found[-1:]
    if not runs:
        raise SystemExit("give --workdir or --run")
    gen = TransformersGenerator(args.verifier)

    def score(question: str, answer: str, contexts: list[dict[str, Any]]) -> float:
        # the chat ragkit.verification asks (generator.min_verified); contexts hold the first 1,500 characters
        return gen.yes_probability(verification_messages(question, answer, [c["text"] for c in contexts]))

    everything: list[tuple[bool, float]] = []
    delivered: list[tuple[bool, float]] = []
    dump = args.out.open("w", encoding="utf-8") if args.out else None
    for run in runs:
        kb = ragkit.open(run.parent.parent, create=False)
        for line in (run / "samples.jsonl").read_text().splitlines():
            s = json.loads(line)
            if s.get("status") != "ok" or (s["abstained"] and not s.get("withheld")):
                continue
            draft = (s.get("withheld") or {}).get("draft") or s["answer"]
            hits = [make_hit(i + 1, c["text"], c.get("uri", "source")) for i, c in enumerate(s["contexts"])]
            checked = CheckedAnswer(draft, (), (), False)
            out = Generation(draft, 0, 0, 0.0)
            held = withhold_unfounded(s["question"], checked, out, hits, AnswerOptions(), "", kb.embedder.embed)
            right = bool(s["answerable"]) and contains_answer(draft, s["gold_answers"]) > 0
            row = (right, score(s["question"], draft, s["contexts"]))
            everything.append(row)
            if not held.checked.abstained:
                delivered.append(row)
            if dump is not None:
                record = {"run": run.name, "id": s["id"], "construction": s.get("construction"), "right": right}
                record |= {"delivered": not held.checked.abstained, "score": round(row[1], 5), "draft": draft}
                dump.write(json.dumps(record) + "\n")
    for name, rows in (("all drafts", everything), ("delivered by the checks", delivered)):
        auc = _auroc(rows)
        print(f"{name}: {len(rows)} ({sum(r for r, _ in rows)} right), AUROC {auc if auc is None else round(auc, 3)}")


if __name__ == "__main__":
    main()
