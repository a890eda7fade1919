"""Rule MR, replayed on eval runs: would the embedder's reading of the answer's own entry release a withheld draft?

    python bench/meaning_release.py RUN [RUN ...]      # each release, with its hand label, then the counts

For every answerable or unanswerable question the coverage check alone withheld (`off_question`) whose question asks
for an option or how to get something done and whose draft names an option heading an entry of the sources the
model read, the KB's embedder (MiniLM) takes the cosine of the question with that entry and with every other entry
in those sources; the draft would be released when its own entry is the nearest (docs/design-notes.md, rule MR).
A release comes after every check, so one run replays exactly. Labels: `bench/data/trial_labels.jsonl`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from trial_tally import LABELS, load_labels

from ragkit.embedding import SentenceTransformerEmbedder
from ragkit.entries import ENTRY_CHARS, answer_entries
from ragkit.withholding import RELEASABLE


def nearest_margin(question: str, draft: str, sources: list[str], embed) -> tuple[str, float] | None:  # noqa: ANN001
    """(the option the draft names, cosine of its entry minus the best other entry's; 1.0 with none), or None."""
    found = answer_entries(question, draft, sources)
    if found is None:
        return None
    vectors = np.asarray(embed([question, found.own[:ENTRY_CHARS], *(o[:ENTRY_CHARS] for o in found.others)]))
    cosines = vectors[1:] @ vectors[0]
    return found.named, float(cosines[0] - cosines[1:].max()) if len(cosines) > 1 else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--labels", type=Path, default=LABELS)
    args = ap.parse_args()
    labels = load_labels(args.labels)
    embed = SentenceTransformerEmbedder("all-MiniLM-L6-v2").embed
    counts: Counter[str] = Counter()
    for run in args.runs:
        for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines()):
            held = s.get("withheld") or {}
            if not s.get("abstained") or held.get("reason") not in RELEASABLE or not held.get("draft"):
                continue
            read = nearest_margin(s["question"], held["draft"], [c["text"] for c in s["contexts"]], embed)
            if read is None:
                continue
            label = labels.get((s["id"], held["draft"].strip()), "?")
            if not s["answerable"]:
                label = "invention" if label == "?" else label
            verdict = "RELEASED" if read[1] > 0 else "kept"
            counts[f"{verdict} {label}"] += 1
            print(f"{run.name[:40]:40s} {s['id']:9s} {verdict:8s} {label:9s} {read[0]:12s} {read[1]:+.3f}")
    print(dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
