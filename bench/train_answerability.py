"""Experiment: an answerability cross-encoder, trained from the bundled MiniLM on HaluEval-QA like train-judge.

    python bench/train_answerability.py --out /tmp/answerability [--pairs 2400] [--threads 2]

Input (passage, question); target: does the passage state the answer? Positives: an item's question with
its own knowledge passage. Negatives, in equal number: mostly the same passage with the sentences that state
the answer removed (on topic, answer missing: the case the relevance floor misses), and a quarter another
item's passage (off topic). The dev set's HaluEval items (bench/devset.py's sample) are left out, so
bench/abstention_dev.py --answerability measures it fairly.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

OFF_TOPIC_SHARE = 0.25


def pairs(n: int, seed: int = 0) -> list:  # list[LabelledPair]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from devset import HALUEVAL

    from ragkit.evals.datasets import halueval_records, load_halueval_qa, without_answer
    from ragkit.evals.judge_data import LabelledPair

    dev = load_halueval_qa(HALUEVAL["limit"], HALUEVAL["unanswerable"], HALUEVAL["seed"], removed=HALUEVAL["removed"])
    held_questions = {i.question for i in dev.items}
    records = [r for r in halueval_records() if r["question"] not in held_questions]
    rng = random.Random(seed)
    rng.shuffle(records)
    out: list = []
    for i, r in enumerate(records):
        if len(out) >= n:
            break
        cut = without_answer(r["knowledge"], r["right_answer"])
        if cut is None:
            continue
        negative = cut
        if rng.random() < OFF_TOPIC_SHARE:
            negative = records[(i + len(records) // 2) % len(records)]["knowledge"]
        out += [LabelledPair(r["question"], r["knowledge"], False), LabelledPair(r["question"], negative, True)]
    rng.shuffle(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=2400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args()
    import torch

    from ragkit.evals.train_judge import train_judge

    torch.set_num_threads(args.threads)
    data = pairs(args.pairs)
    t0 = time.perf_counter()

    def progress(step: int, total: int, loss: float) -> None:
        if step % 10 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.3f} {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)

    result = train_judge(data, out=args.out, max_length=args.max_length, progress=progress)
    print(
        f"{len(data)} pairs, {result.steps} steps, loss {result.first_loss:.3f} -> {result.last_loss:.3f}, "
        f"{result.seconds:.0f} s on {result.device}: {result.path}"
    )


if __name__ == "__main__":
    main()
