"""Rule RA offline: what another entry read as the answer would deliver in place of stored withheld drafts.

    python bench/entry_answer.py OUT.jsonl --adapter DIR RUN [RUN ...]   # read (resumable: OUT is appended to)
    python bench/entry_answer.py OUT.jsonl --report [--floor 0.5]       # what rule RA delivers from those readings

For every draft a stored `ragkit eval run` withheld (any check) that rule R's gate admits (the question asks for an
option or how to do something, the draft names an option heading an entry of the sources the model saw;
ragkit.entries.answer_entries), it reads the draft's own entry and the ENTRY_RIVALS competing entries nearest the
question with the bundled Qwen 1.5B and the entry adapter at DIR (as rule R reads them, through rule R1's hooks),
and writes every reading with the draft's hand label (bench/data/trial_labels.jsonl). --report applies rule RA
(ragkit.entry_reading.reads_as_other_answer) at the floor and counts its deliveries: right when the delivered
entry's head holds a gold answer, an invention on an unanswerable question, else wrong.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trial_tally import LABELS, load_labels

from ragkit.entries import answer_entries
from ragkit.entry_reading import EntryReading, competing_entries, entry_messages, reads_as_other_answer

MODEL = "Qwen2.5-Coder-1.5B-Instruct"


def read(out: Path, adapter: Path, runs: list[Path]) -> None:
    """Append one JSON line of readings per admitted withheld draft of `runs` not yet in `out`."""
    from ragkit.embedding import SentenceTransformerEmbedder
    from ragkit.generation.entry_reader import LazyEntryReader
    from ragkit.generation.hf import TransformersGenerator

    labels = load_labels(LABELS)
    done = {json.loads(line)["key"] for line in out.read_text().splitlines()} if out.exists() else set()
    embed = SentenceTransformerEmbedder("all-MiniLM-L6-v2").embed
    reader = LazyEntryReader(TransformersGenerator(MODEL, device="cpu"), adapter)
    with out.open("a") as sink:
        for run in runs:
            for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines()):
                held, key = s.get("withheld") or {}, f"{run.name}:{s['id']}"
                if not s["abstained"] or not held.get("draft") or key in done:
                    continue
                found = answer_entries(s["question"], held["draft"], [c["text"] for c in s["contexts"]])
                if found is None:
                    continue
                others = competing_entries(s["question"], found.others, embed)  # the ones rule R reads
                own = reader.yes_probability(entry_messages(s["question"], found.own))
                rivals = [reader.yes_probability(entry_messages(s["question"], o)) for o in others]
                row = {
                    "key": key,
                    "id": s["id"],
                    "answerable": s["answerable"],
                    "gold": s.get("gold_answers") or [],
                    "reason": held.get("reason"),
                    "draft_label": labels.get((s["id"], held["draft"].strip()), "?"),
                    "named": found.named,
                    "own": round(own, 4),
                    "rivals": [{"head": o[:160], "p": round(p, 4)} for o, p in zip(others, rivals, strict=True)],
                    "question": s["question"],
                }
                sink.write(json.dumps(row) + "\n")
                sink.flush()


def report(out: Path, floor: float) -> None:
    """Rule RA's deliveries from the stored readings, labelled by the delivered entry's head."""
    counts = {"right": 0, "wrong": 0, "invention": 0}
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    for r in rows:
        ranked = sorted(r["rivals"], key=lambda x: -x["p"])
        if not ranked:
            continue
        runner_up = ranked[1]["p"] if len(ranked) > 1 else None
        reading = EntryReading(r["named"], r["own"], ranked[0]["p"], 0, ranked[0]["head"], 0, runner_up)
        if not reads_as_other_answer(reading, floor):
            continue
        head = ranked[0]["head"].split("\n")[0]
        label = "invention" if not r["answerable"] else ("right" if any(g in head for g in r["gold"]) else "wrong")
        counts[label] += 1
        print(
            f"{r['id']:9s} {label:9s} draft {r['named']} ({r['draft_label']}, {r['own']:.2f}) -> {head} "
            f"({ranked[0]['p']:.2f}; next {runner_up or 0:.2f})"
        )
    print(f"{len(rows)} drafts read; rule RA at {floor}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", type=Path, nargs="*")
    ap.add_argument("--adapter", type=Path)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--floor", type=float, default=0.5)
    args = ap.parse_args()
    if args.report:
        report(args.out, args.floor)
    else:
        if args.adapter is None:
            ap.error("--adapter is needed to read")
        read(args.out, args.adapter, args.runs)


if __name__ == "__main__":
    main()
