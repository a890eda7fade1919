"""Abstention per construction on dev-split runs, replayed with today's checks under several coverage floors.

    python bench/floor_scan.py 0.3,0.35,0.4,0.45,0.5 KB/runs/NAME [KB/runs/NAME ...]

Each run (a `bench/devset.py` run: its samples carry their construction) is replayed as
`bench/replay_trials.py` replays it, with the model's recorded reading releasing what a word-level check alone
withheld, but with the coverage floor set to each value in turn. A generator's floor is the smallest one, in
steps of 0.05, that abstains on at least 80 % of the dev split's on-topic-missing questions (docs/design-notes.md,
sixth step and rule A').
"""

from __future__ import annotations

import argparse
from pathlib import Path

import replay_trials
from trial_tally import LABELS, load_labels


def scan(runs: list[Path], floors: list[float]) -> dict[float, dict[str, tuple[int, int]]]:
    """{floor: {construction: (abstained, questions)}} over the runs' samples."""
    labels = load_labels(LABELS)
    found: dict[float, dict[str, tuple[int, int]]] = {}
    default = replay_trials.default_min_coverage
    try:
        for floor in floors:
            replay_trials.default_min_coverage = lambda _generator, floor=floor: floor  # type: ignore[assignment]
            counts: dict[str, tuple[int, int]] = {}
            for run in runs:
                samples, _ = replay_trials.replay_run(run, labels)
                for s in samples:
                    kind = s.get("construction") or ("answerable" if s["answerable"] else "unanswerable")
                    abstained, n = counts.get(kind, (0, 0))
                    counts[kind] = (abstained + bool(s["abstained"]), n + 1)
            found[floor] = counts
    finally:
        replay_trials.default_min_coverage = default
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("floors", help="comma-separated coverage floors, e.g. 0.3,0.35,0.4")
    ap.add_argument("runs", type=Path, nargs="+", help="dev-split eval run folders (KB/runs/NAME)")
    args = ap.parse_args()
    for floor, counts in scan(args.runs, [float(f) for f in args.floors.split(",")]).items():
        cells = ", ".join(f"{kind} {a}/{n} ({a / n:.2f})" for kind, (a, n) in sorted(counts.items()))
        print(f"{floor:.2f}: {cells}")


if __name__ == "__main__":
    main()
