"""Self-verification as an abstention signal: does the generator itself say its draft is stated in the sources?

    python bench/self_verify.py --workdir /tmp/devset [--run KB/runs/NAME ...] [--verifier Qwen2.5-Coder-0.5B-Instruct]

For every drafted answer of the newest dev-split runs of `bench/devset.py` (0.5B), and of any other eval runs
given, it asks the verifier "Do the sources state this answer to the question? Reply yes or no." with the
sources the generator saw, and scores P(yes) / (P(yes) + P(no)) from its next-token distribution (one forward
pass, no generation). It prints the AUROC of that score for right answers (gold in the answer) against wrong
and unanswerable drafts: over all drafts, and over the drafts the current checks deliver, which is where a
new signal would have to add something.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import ragkit
from ragkit.answering import AnswerOptions
from ragkit.citations import CheckedAnswer
from ragkit.evals.metrics import contains_answer
from ragkit.testing import make_hit
from ragkit.types import Generation
from ragkit.withholding import withhold_unfounded

ASK = "Do the sources state this answer to the question? Reply yes or no."
SYSTEM = "You check whether an answer is stated in the sources. Reply yes or no only."


def _auroc(rows: list[tuple[bool, float]]) -> float | None:
    pos = [s for right, s in rows if right]
    neg = [s for right, s in rows if not right]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    import torch

    from ragkit.generation.hf import TransformersGenerator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="bench/devset.py's work folder (its dev-split runs)")
    ap.add_argument("--run", type=Path, action="append", default=[], help="another eval run folder")
    ap.add_argument("--verifier", default="Qwen2.5-Coder-0.5B-Instruct")
    args = ap.parse_args()
    runs = list(args.run)
    if args.workdir is not None:
        for corpus in ("sample", "pydocs", "halueval"):
            found = sorted((args.workdir / f"kb-{corpus}" / "runs").glob("*-devset-dev-Qwen2.5-Coder-0.5B-Instruct"))
            runs += found[-1:]
    if not runs:
        raise SystemExit("give --workdir or --run")
    gen = TransformersGenerator(args.verifier)
    tok = gen.tokenizer
    yes = sorted({tok.encode(w, add_special_tokens=False)[0] for w in ("yes", "Yes", " yes", " Yes")})
    no = sorted({tok.encode(w, add_special_tokens=False)[0] for w in ("no", "No", " no", " No")})

    def score(question: str, answer: str, contexts: list[dict[str, Any]]) -> float:
        sources = "\n\n".join(f"[{i}] {c['text'][:1500]}" for i, c in enumerate(contexts, 1))
        said = re.sub(r"\[\d+\]", "", answer).strip()
        user = f"Sources:\n{sources}\n\nQuestion: {question}\nProposed answer: {said}\n\n{ASK}"
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        with torch.no_grad():
            logits = gen.model(**gen._encode(messages)).logits[0, -1]  # noqa: SLF001 (the chat encoding ask uses)
        p = torch.softmax(logits.float(), -1)
        y, n = float(p[yes].sum()), float(p[no].sum())
        return y / (y + n + 1e-9)

    everything: list[tuple[bool, float]] = []
    delivered: list[tuple[bool, float]] = []
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
    for name, rows in (("all drafts", everything), ("delivered by the checks", delivered)):
        auc = _auroc(rows)
        print(f"{name}: {len(rows)} ({sum(r for r, _ in rows)} right), AUROC {auc if auc is None else round(auc, 3)}")


if __name__ == "__main__":
    main()
