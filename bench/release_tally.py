"""One eval run, made with a lower relevance floor and the release reading on, scored four ways: as run, and as
each part alone or neither would have answered (docs/benchmarks.md, "Twentieth round").

    python bench/release_tally.py KB/runs/NAME [...] [--floor 0.40] [--labels bench/data/trial_labels.jsonl]

The run is made with `generator.min_relevance` below today's floor and `generator.release_min_verified` set
(ragkit.withholding.release). Both changes only add answers, so the others are exact from the same run:
- without the lower floor, a question whose best source scored under --floor abstains before generation;
- without the release, a released answer is withheld again (its draft = the delivered text).
A real-document trial is tallied with the hand labels, as
bench/trial_tally.py does; a dev-set run (bench/devset.py; --devset) per construction: abstention and gold contained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trial_tally import LABELS, load_labels, tally

from ragkit.evals.metrics import contains_answer

ABSTAIN = "I don't know based on the provided sources."


def view(sample: dict[str, Any], floor: float | None, release: bool) -> dict[str, Any]:
    """The sample as a configuration without the lower floor (floor given) and/or without the release."""
    s = dict(sample)
    if floor is not None and s.get("relevance") is not None and s["relevance"] < floor:
        for key in ("withheld", "released", "claims", "fallback"):
            s.pop(key, None)
        return s | {"abstained": True, "answer": ABSTAIN}
    if not release and "released" in s:
        draft = s.pop("released")
        return s | {"abstained": True, "answer": ABSTAIN, "withheld": {"draft": s["answer"], "reason": draft}}
    return s


def _devset_rows(samples: list[dict[str, Any]]) -> str:
    parts = []
    for kind in sorted({s["construction"] for s in samples}):
        group = [s for s in samples if s["construction"] == kind]
        abst = sum(bool(s["abstained"]) for s in group)
        row = f"{kind} {abst}/{len(group)} abstained"
        if kind == "answerable":
            gold = sum(contains_answer(s["answer"], s["gold_answers"]) == 1.0 for s in group if not s["abstained"])
            row += f", gold delivered {gold}"
        parts.append(row)
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="eval run folders (KB/runs/NAME)")
    ap.add_argument("--floor", type=float, default=0.40, help="today's relevance floor [0.40]")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--devset", action="store_true", help="dev-set runs: per construction, no hand labels")
    args = ap.parse_args()
    labels = load_labels(args.labels)
    views = {
        "today": (args.floor, False),
        "lower floor only": (None, False),
        "release only": (args.floor, True),
        "both (as run)": (None, True),
    }
    sums: dict[str, dict[str, int]] = {}
    for run in args.runs:
        lines = (run / "samples.jsonl").read_text().splitlines()
        samples = [json.loads(line) for line in lines if line.strip()]
        samples = [s for s in samples if s.get("status", "ok") == "ok"]
        print(f"{run.parent.parent.name}/{run.name}")
        for name, (floor, release) in views.items():
            seen = [view(s, floor, release) for s in samples]
            if args.devset:
                print(f"  {name:<17} {_devset_rows(seen)}")
                continue
            t = tally(seen, labels)
            total = sums.setdefault(name, {})
            for key in ("right", "wrong", "right_withheld", "abstained_on_topic", "on_topic", "inventions", "score"):
                total[key] = total.get(key, 0) + t[key]
            print(
                f"  {name:<17} right {t['right']} wrong {t['wrong']} right withheld {t['right_withheld']}; on-topic "
                f"abstained {t['abstained_on_topic']}/{t['on_topic']}, inventions {t['inventions']}; score {t['score']}"
            )
            for qid, label, answer in t["unlabelled"]:
                print(f"    not labelled, scored {label}: {qid} {answer[:110]!r}")
    for name, t in sums.items():
        print(f"all trials, {name:<17} " + ", ".join(f"{k} {v}" for k, v in t.items()))


if __name__ == "__main__":
    main()
