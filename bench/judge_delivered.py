"""The claim judges on claims ragkit really delivered, labelled by hand.

    python bench/judge_delivered.py [--judge minilm-lexical --judge lexical --judge trained] [--json]
        [--data bench/data/delivered_claims_heldout_15b.jsonl]

bench/data/delivered_claims_heldout.jsonl holds every sentence of the answers ragkit delivered on the held-out
split of the abstention dev set (fifth round: Qwen2.5-Coder-0.5B, defaults; docs/benchmarks.md), each with its
question, the retrieved context `ragkit eval` judged it against, what the default judge said then, and a label
read by hand against that context. A claim is unsupported when it is false or no source states it ("why" says
which). A true sentence copied from a source that does not answer the question is labelled supported. The
judge-accuracy sets are built pairs; this file is what the judges meet in `ragkit eval`. It is small (42
claims, 9 unsupported), so one claim moves balanced accuracy by 0.02-0.06.

bench/data/delivered_claims_heldout_15b.jsonl is the same for Qwen2.5-Coder-1.5B (eighth round): every sentence
it delivers on the held-out split at its own coverage floor (0.45), 48 claims, 6 unsupported, labelled by the
same rule. bench/data/delivered_claims_heldout_15b_r20.jsonl: the same model's 53 claims on the held-out split
with the twentieth round's defaults (46 of them labelled in the eighth round, 7 new; 9 unsupported), each with
the context that run judged it against. bench/data/delivered_claims_dev_r41.jsonl: the 1.5B model's 54 claims on
the *dev* split at the fortieth session's defaults (8 unsupported; forty-first session, labelled before any
judge's verdict was read), with each question's construction.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from ragkit.evals import judges as J  # noqa: E402
from ragkit.evals.judge_data import LabelledPair, judge_accuracy  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "delivered_claims_heldout.jsonl"


def delivered_pairs(path: Path = DATA) -> list[LabelledPair]:
    """The labelled delivered claims, each with its question (as `ragkit eval` judges them)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [LabelledPair(r["claim"], r["context"], bool(r["unsupported"]), r["question"]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", action="append", default=None, help="as `ragkit eval --judge` [minilm-lexical, lexical]")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--data", type=Path, default=DATA, help="a labelled file [the 0.5B model's]")
    args = ap.parse_args()
    pairs = delivered_pairs(args.data)
    out = {}
    for name in args.judge or ["minilm-lexical", "lexical"]:
        scores = judge_accuracy(J.make_judge(name), pairs)
        out[name] = {k: round(v, 3) for k, v in scores.items()}
    if args.json:
        print(json.dumps({"claims": len(pairs), "unsupported": sum(p.unsupported for p in pairs), "judges": out}))
        return
    print(f"{len(pairs)} delivered claims, {sum(p.unsupported for p in pairs)} unsupported by hand")
    for name, s in out.items():
        print(
            f"{name:<16} balanced accuracy {s['balanced_accuracy']:.3f}  precision {s['precision']:.3f}  "
            f"recall {s['recall']:.3f}"
        )


if __name__ == "__main__":
    main()
