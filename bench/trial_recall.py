"""Retrieval recall on the real-document trials: is a chunk holding the gold answer among the top k?

    python bench/trial_recall.py KB/runs/NAME [KB/runs/NAME ...] [--k 3 5 10] [--modes hybrid dense keyword hybrid@8]
    python bench/trial_recall.py KB/runs/NAME ... --questions bench/data/trial_paraphrase.jsonl
    python bench/trial_recall.py WORK/t35-kb=bench/data/trial_heldout_zip.jsonl ... --modes hybrid hybrid+sentences

For each run's answerable questions (a trial's run names its KB: KB/runs/NAME), it searches the KB again with
each retrieval mode and counts the questions whose gold answer (any of them, case-insensitive, as text) stands
in one of the first k chunks. No generation: it measures what the model can be given, so a retrieval change
can be judged here before it is run live. A question that several runs of one KB share counts once. Gold
strings are short ("1", "-s"), so a chunk may hold one by chance: read the figures as a ceiling, compared
between modes on the same questions. "hybrid@W" is the fusion with the keyword list weighted W (dense 1);
"combsum" is the fusion by score instead of rank (`retrieval.fusion = "score"`, keyword weight 1); a mode
followed by "+sentences" rescores its head by each chunk's best sentence (`retrieval.rescore = "sentences"`).
A KB=TRIAL.jsonl argument asks the trial file's questions of a KB that has no run (one built by
`NOEVAL=1 bash bench/run_trials.sh WORK`).
--questions searches, instead of each run's questions, the file's items whose "of" names one of them (reworded
questions, asked of the KB their original was asked of).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import ragkit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run directories, KB/runs/NAME, or KB=TRIAL.jsonl")
    ap.add_argument("--k", nargs="+", type=int, default=[3, 5, 10])
    ap.add_argument("--modes", nargs="+", default=["hybrid", "dense", "keyword"])
    ap.add_argument("--questions", type=Path, help="a .jsonl of reworded questions, each naming its original in 'of'")
    args = ap.parse_args()
    found: Counter[tuple[str, int]] = Counter()
    seen: set[tuple[Path, str]] = set()
    reworded = []
    if args.questions:
        reworded = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines()]
    for arg in args.runs:
        kb_path, samples = _questions(arg)
        if args.questions:
            ids = {s["id"] for s in samples}
            samples = [{**i, "gold_answers": i["answers"]} for i in reworded if i.get("of") in ids]
        samples = [s for s in samples if (kb_path, s["id"]) not in seen]
        seen.update((kb_path, s["id"]) for s in samples)
        for spec in args.modes:
            base, _, extra = spec.partition("+")
            mode, _, weight = base.partition("@")
            overrides: dict[str, object] = {"retrieval.keyword_weight": float(weight)} if weight else {}
            if mode == "combsum":
                mode, overrides = "hybrid", {"retrieval.fusion": "score", "retrieval.keyword_weight": 1.0}
            if extra:
                overrides["retrieval.rescore"] = extra
            kb = ragkit.open(kb_path, create=False, **overrides)
            try:
                for s in samples:
                    gold = [g.lower() for g in s.get("gold_answers") or []]
                    hits = kb.search(s["question"], max(args.k), mode=mode)
                    rank = next((i for i, h in enumerate(hits, 1) if any(g in h.chunk.text.lower() for g in gold)), 0)
                    for k in args.k:
                        found[(spec, k)] += 0 < rank <= k
            finally:
                kb.close()
    n = len(seen)
    print(f"{n} answerable questions")
    for mode in args.modes:
        print(f"{mode:8}", "  ".join(f"@{k}: {found[(mode, k)]} ({found[(mode, k)] / max(n, 1):.3f})" for k in args.k))


def _questions(arg: str) -> tuple[Path, list[dict]]:
    """(KB path, its answerable questions) from a run directory (KB/runs/NAME) or from KB=TRIAL.jsonl."""
    if "=" in arg:
        kb, _, trial = arg.partition("=")
        items = [json.loads(line) for line in Path(trial).read_text(encoding="utf-8").splitlines() if line.strip()]
        return Path(kb), [{**i, "gold_answers": i.get("answers")} for i in items if i.get("answerable", True)]
    run = Path(arg)
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    return run.parent.parent, [s for s in samples if s["answerable"] and s.get("status", "ok") == "ok"]


if __name__ == "__main__":
    main()
