"""The trial questions whose top k a setting changes, as an eval dataset (the others are answered alike).

    python bench/named_changed.py KB OUT.jsonl t89 ... t100 [--setting KEY [--values A B]]

KB holds the trials' documents together (see bench/multidoc_recall.py). Every question of the named trials,
answerable or not, is searched with the setting at two values (`retrieval.named_documents`, rule DN, unless
given; false and true unless --values names others, "entries none" for `retrieval.rescore`); those whose hits
differ are written to OUT.jsonl, which `ragkit eval run OUT.jsonl --kb KB --set KEY=VALUE` runs in both arms.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from multidoc_recall import ROOT, trial_documents

import ragkit


def main() -> None:
    args = sys.argv[1:]
    setting = "retrieval.named_documents"
    values: list[object] = [False, True]
    if "--setting" in args:
        at = args.index("--setting")
        setting = args[at + 1]
        del args[at : at + 2]
    if "--values" in args:
        at = args.index("--values")
        values = args[at + 1 : at + 3]
        del args[at : at + 3]
    kb_path, out, trials = Path(args[0]), Path(args[1]), args[2:]
    docs = trial_documents()
    arms = [ragkit.open(kb_path, create=False, **{setting: v}) for v in values]
    total = changed = 0
    try:
        with out.open("w", encoding="utf-8") as f:
            for trial in trials:
                lines = (ROOT / "bench" / "data" / f"{docs[trial][0]}.jsonl").read_text(encoding="utf-8").splitlines()
                for item in (json.loads(line) for line in lines if line.strip()):
                    total += 1
                    off, on = ([h.chunk.id for h in kb.search(item["question"])] for kb in arms)
                    if off != on:
                        changed += 1
                        f.write(json.dumps(item, ensure_ascii=False) + "\n")
    finally:
        for kb in arms:
            kb.close()
    print(f"{total} questions; {changed} with other hits -> {out}")


if __name__ == "__main__":
    main()
