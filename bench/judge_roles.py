"""The default judge before and after the role check (ragkit/roles.py), on both parts of judge-accuracy.

    python bench/judge_roles.py [--limit N] [--json]

Parts: HaluEval-QA pairs (right vs hallucinated answer) and the copied-number pairs built from the dev set
(ragkit/evals/copied_pairs.py: a gold answer's number or name swapped for another one of the same passage).
The cut ROLE_MIN is chosen here on the calibration splits only (HaluEval's calibration split and the dev set's
dev split: the best mean balanced accuracy of the two); the held-out splits are reported for the cut chosen
and for the one ragkit ships (judges.ROLE_MIN), through `judge_accuracy_parts`, the function the CLI measures
with. "Before" is the same judge with the role check off (role_min=0). About 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from ragkit.evals import judges as J  # noqa: E402
from ragkit.evals.metrics import binary_scores  # noqa: E402
from ragkit.roles import role_support  # noqa: E402

CUTS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)


def _scored(judge: J.EmbeddingLexicalJudge, pairs: list[J.LabelledPair]) -> list[tuple[float, float, bool]]:
    """(support without the role check, role score, unsupported) per pair."""
    probs: list[float] = []
    for i in range(0, len(pairs), 64):
        part = pairs[i : i + 64]
        probs.extend(judge.support([p.claim for p in part], [p.context for p in part], [p.question for p in part]))
    return [(p, role_support(x.claim, x.context, x.question), x.unsupported) for p, x in zip(probs, pairs, strict=True)]


def _balanced(rows: list[tuple[float, float, bool]], cut: float, threshold: float) -> float:
    said = [min(p, J.NUMBER_CAP) < threshold if r < cut else p < threshold for p, r, _ in rows]
    return binary_scores([u for _, _, u in rows], said)["balanced_accuracy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="pairs per part and split (default: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    before = J.make_judge("minilm-lexical")
    assert isinstance(before, J.EmbeddingLexicalJudge)
    before.role_min = 0.0  # the judge as it was: lexical, similarity, names, missing words, foreign numbers
    rows = {
        (part, split): _scored(before, J.judge_pairs(part, split)[: args.limit])
        for part in J.PARTS
        for split in ("calibration", "heldout")
    }
    sweep = {
        cut: {part: _balanced(rows[(part, "calibration")], cut, before.threshold) for part in J.PARTS} for cut in CUTS
    }
    chosen = max(CUTS, key=lambda c: (sum(sweep[c].values()), -c))
    after = J.EmbeddingLexicalJudge(before.embedder)  # the shipped defaults, ROLE_MIN included
    forms = {
        "sentence": lambda p: "? " not in p.claim,  # the answer sentence as ragkit's eval judges it
        "question-answer": lambda p: "? " in p.claim,  # "Q? A." as judge-accuracy's HaluEval pairs
    }
    copied = J.judge_pairs("copied-number", "heldout")[: args.limit]
    result = {
        "pairs": {f"{p}/{s}": len(r) for (p, s), r in rows.items()},
        "calibration_sweep": {str(c): {p: round(v, 4) for p, v in s.items()} for c, s in sweep.items()},
        "chosen_cut": chosen,
        "shipped_cut": J.ROLE_MIN,
        "heldout_before": {p: round(_balanced(rows[(p, "heldout")], 0.0, before.threshold), 4) for p in J.PARTS},
        "heldout_chosen_cut": {p: round(_balanced(rows[(p, "heldout")], chosen, before.threshold), 4) for p in J.PARTS},
        "heldout_shipped": {
            p: {k: round(v, 4) for k, v in s.items()}
            for p, s in J.judge_accuracy_parts(after, limit=args.limit).items()
        },
        "copied_heldout_by_form": {
            name: {
                "n": len(sub := [p for p in copied if keep(p)]),
                "before": round(J.judge_accuracy(before, sub)["balanced_accuracy"], 4),
                "after": round(J.judge_accuracy(after, sub)["balanced_accuracy"], 4),
            }
            for name, keep in forms.items()
        },
        "seconds": round(time.time() - t0, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"role cut chosen on the calibration splits: {chosen} (shipped: {J.ROLE_MIN})")
    print(f"{'held-out part':<16} {'pairs':>6} {'before':>8} {'after':>8}")
    for part in J.PARTS:
        n = result["pairs"][f"{part}/heldout"]
        b, a = result["heldout_before"][part], result["heldout_shipped"][part]["balanced_accuracy"]
        print(f"{part:<16} {n:>6} {b:>8.3f} {a:>8.3f}")
    for name, r in result["copied_heldout_by_form"].items():
        print(f"  copied, {name:<14} {r['n']:>4} {r['before']:>8.3f} {r['after']:>8.3f}")
    print(f"({result['seconds']} s)")


if __name__ == "__main__":
    main()
