"""A HaluEval-QA training file for `ragkit finetune --train` that shares no item and no passage with the dev set
(bench/devset.py), and the folder of its passages to ingest as the training KB:

    python bench/halueval_train.py --out /tmp/hq --n 240
    ragkit ingest /tmp/hq/corpus --kb /tmp/hq/kb
    ragkit finetune --kb /tmp/hq/kb --train /tmp/hq/train.jsonl --generator Qwen2.5-Coder-0.5B-Instruct \\
        --negatives 0.25 --epochs 1 --heldout 0 --lr 2e-4 --no-eval --threads 2 --name r25
    python bench/devset.py --workdir /tmp/devset --split heldout --generator Qwen2.5-Coder-0.5B-Instruct \\
        --model /tmp/hq/kb/models/r25

The training KB holds only the training passages, so no dev-set passage appears in a training prompt, even
as a distractor source. Results: docs/benchmarks.md, "Ninth round".
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from devset import HALUEVAL  # bench/devset.py: the dev set's sample of HaluEval-QA

from ragkit.evals.datasets import halueval_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=240, help="training records")
    args = ap.parse_args()
    records = halueval_records()
    order = list(range(len(records)))
    random.Random(HALUEVAL["seed"]).shuffle(order)  # the dev set's order: its items are the first `limit`
    dev = order[: HALUEVAL["limit"]]
    passages = {records[i]["knowledge"] for i in dev}
    questions = {records[i]["question"] for i in dev}
    corpus = args.out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    n = 0
    with (args.out / "train.jsonl").open("w", encoding="utf-8") as f:
        for i in order[HALUEVAL["limit"] :]:
            rec = records[i]
            if rec["knowledge"] in passages or rec["question"] in questions:
                continue
            f.write(
                json.dumps({"question": rec["question"], "answer": rec["right_answer"], "context": rec["knowledge"]})
                + "\n"
            )
            (corpus / f"train-{n:03d}.txt").write_text(rec["knowledge"] + "\n", encoding="utf-8")
            n += 1
            if n == args.n:
                break
    print(f"{n} records: {args.out / 'train.jsonl'}; passages: {corpus}")


if __name__ == "__main__":
    main()
