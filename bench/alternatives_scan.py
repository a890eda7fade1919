"""Where rule CO (ragkit.alternatives: a comparison whose named alternative no source names is withheld) fires.

    python bench/alternatives_scan.py --fresh WORK [--seed 40] [--limit 800]   # a fresh HaluEval sample
    python bench/alternatives_scan.py --runs KB/runs/NAME [KB/runs/NAME ...]  # stored eval runs, replayed

--fresh builds (once, under WORK) a KB of a HaluEval sample made as the synthetic split is (bench/devset.py:
a quarter off-topic, a quarter answer-removed), leaving out the records of the dev and held-out splits, and
prints each question the rule fires on with the KB's own search (top 3, as `ask` packs them), then the counts
per construction: on an answerable question it may cost a right answer, on an unanswerable one it may stop an
invention (upper bounds; the rule needs no model). --runs replays it on the question and sources of each
stored answer, exactly, and names the delivered ones it would withhold.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
from pathlib import Path

from devset import HALUEVAL

import ragkit
from ragkit.alternatives import unnamed_alternatives
from ragkit.coverage import CHOICE_TAIL
from ragkit.evals.datasets import load_halueval_qa, write_contexts


def fresh(work: Path, seed: int, limit: int) -> None:
    """The rule on a HaluEval sample outside the synthetic splits, per construction."""
    split = load_halueval_qa(HALUEVAL["limit"], HALUEVAL["unanswerable"], HALUEVAL["seed"], removed=HALUEVAL["removed"])
    used = {it.id.split("-")[1] for it in split.items}
    ds = load_halueval_qa(limit, HALUEVAL["unanswerable"], seed, removed=HALUEVAL["removed"])
    kb_dir = work / "kb"
    if not (kb_dir / "manifest.json").exists():
        corpus = write_contexts(ds, work / "corpus")
        exe = Path(sys.executable).with_name("ragkit")  # the console script beside this Python, as a user runs it
        subprocess.run([str(exe), "ingest", str(corpus), "--kb", str(kb_dir)], check=True)
    kb = ragkit.open(kb_dir, create=False)
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    items = [it for it in ds.items if it.id.split("-")[1] not in used]
    for it in items:
        unnamed = unnamed_alternatives(it.question, [h.chunk.text for h in kb.search(it.question, 3)])
        shape = "fires" if unnamed else ("closing choice" if CHOICE_TAIL.search(it.question) else "-")
        counts[(it.construction, shape)] += 1
        if unnamed:
            print(f"{it.construction:15s} {it.id:28s} {unnamed} | {it.question}", flush=True)
    print(f"{len(items)} questions outside the synthetic splits (seed {seed}, limit {limit})")
    for (construction, shape), n in sorted(counts.items()):
        print(f"{construction:15s} {shape:15s} {n}")


def runs(paths: list[Path]) -> None:
    """The rule replayed on stored answers: the ones it fires on, delivered or not."""
    n = fired = 0
    for run in paths:
        for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines()):
            n += 1
            unnamed = unnamed_alternatives(s["question"], [c["text"] for c in s.get("contexts", [])])
            if unnamed:
                fired += 1
                state = "abstained" if s.get("abstained") else "DELIVERED"
                print(f"{run.name[:32]:32s} {s['id']:28s} {state:9s} {unnamed} | {s['answer'][:80]!r}")
    print(f"{len(paths)} runs, {n} answers, the rule fires on {fired}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fresh", type=Path, metavar="WORK", help="scan a fresh HaluEval sample (KB built under WORK)")
    ap.add_argument("--seed", type=int, default=40)
    ap.add_argument("--limit", type=int, default=800)
    ap.add_argument("--runs", type=Path, nargs="+", default=[], help="eval run folders (KB/runs/NAME) to replay")
    args = ap.parse_args()
    if args.fresh is None and not args.runs:
        ap.error("give --fresh WORK or --runs RUN ...")
    if args.fresh is not None:
        fresh(args.fresh, args.seed, args.limit)
    if args.runs:
        runs(args.runs)


if __name__ == "__main__":
    main()
