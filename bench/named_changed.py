"""The trial questions whose top k rule DN changes, as an eval dataset (the others are answered alike).

    python bench/named_changed.py KB OUT.jsonl t89 ... t100

KB holds the trials' documents together (see bench/multidoc_recall.py). Every question of the named trials,
answerable or not, is searched with and without `retrieval.named_documents`; those whose hits differ are written
to OUT.jsonl, which `ragkit eval run OUT.jsonl --kb KB --set retrieval.named_documents=false|true` runs in both arms.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from multidoc_recall import ROOT, trial_documents

import ragkit


def main() -> None:
    kb_path, out, trials = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    docs = trial_documents()
    arms = [ragkit.open(kb_path, create=False, **{"retrieval.named_documents": on}) for on in (False, True)]
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
