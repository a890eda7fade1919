"""What rules DN and DL cost a search: milliseconds per `kb.search` with a setting off and on.

    python bench/named_cost.py KB QUESTIONS.jsonl [--repeats 5] [--setting retrieval.named_local_weights]
    python bench/named_cost.py KB QUESTIONS.jsonl --setting retrieval.rescore --values entries meaning

The setting is `retrieval.named_documents` (rule DN) unless given, compared false against true unless --values
names two other values. Both arms open the same KB; each repeat times
every question in both arms, alternating, and the median of the per-repeat means is printed with the share of
questions that name a document (those search twice).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import ragkit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kb", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--setting", default="retrieval.named_documents")
    ap.add_argument("--values", nargs=2, metavar=("OFF", "ON"), help="two values to compare (default: false true)")
    args = ap.parse_args()
    lines = args.questions.read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    values: tuple[object, object] = tuple(args.values) if args.values else (False, True)  # type: ignore[assignment]
    arms = zip((False, True), values, strict=True)
    kbs = {arm: ragkit.open(args.kb, create=False, **{args.setting: value}) for arm, value in arms}
    try:
        for kb in kbs.values():  # warm: models, caches, SQLite pages
            for q in questions[:5]:
                kb.search(q)
        means: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for arm, kb in kbs.items():
                t0 = time.perf_counter()
                for q in questions:
                    kb.search(q)
                means[arm].append((time.perf_counter() - t0) * 1000 / len(questions))
        names = kbs[True].store._caches.names
        named = sum(bool(names.named(q)) for q in questions) if names else 0
    finally:
        for kb in kbs.values():
            kb.close()
    off, on = statistics.median(means[False]), statistics.median(means[True])
    print(f"{len(questions)} questions, {named} name a document; ms per search (median of {args.repeats} means):")
    print(f"  {args.setting} {values[0]} {off:.1f}, {values[1]} {on:.1f} (x{on / off:.2f})")


if __name__ == "__main__":
    main()
