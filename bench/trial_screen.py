"""Screen a generation change (a prompt, a setting) on the tuned trials' reader errors before running it live.

    python bench/trial_screen.py select WORK OUT.json [--right 60] [--seed 17]
    python bench/trial_screen.py ask OUT.json RESULT.jsonl [--set generator.template_file=FILE ...]
    python bench/trial_screen.py compare BASE.jsonl OTHER.jsonl

`select` takes the tuned trials' answerable questions (never a held-out trial's) whose gold answer is in the
first three chunks the KB (WORK/NAME-kb, built by `NOEVAL=1 bash bench/run_trials.sh WORK`) retrieves today:
every one whose latest hand label is "wrong" (the reader's errors, which no check can turn right) and a random
sample of those labelled "right" (what the change may break). `ask` asks each of its KB with the settings
given. `compare` sets two results side by side: a draft is right when its hand label says so, else when it
holds a gold answer (listed, to be read); it prints the drafts that changed between right and not right.
A screen picks what is worth a live run; it decides nothing (no unanswerable question is asked here).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from trial_tally import LABELS, load_labels

import ragkit
from ragkit.evals.metrics import contains_answer

DATA = Path(__file__).parent / "data"
HELD_OUT = re.compile(r"trial_heldout")


def _trials() -> dict[str, str]:
    """KB name -> trial file stem, from bench/run_trials.sh."""
    text = (Path(__file__).parent / "run_trials.sh").read_text()
    return dict(re.findall(r'^\s+"(\w+) (trial_\w+) ', text, re.M))


def select(work: Path, out: Path, n_right: int, seed: int) -> None:
    latest: dict[str, str] = {}
    for line in LABELS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[r["id"]] = r["label"]
    wrong, right = [], []
    for name, stem in _trials().items():
        kb_path = work / f"{name}-kb"
        if HELD_OUT.search(stem) or name == "heldout" or not (kb_path / "ragkit.toml").exists():
            continue
        items = [json.loads(line) for line in (DATA / f"{stem}.jsonl").read_text().splitlines() if line.strip()]
        kb = ragkit.open(kb_path, create=False)
        try:
            for it in items:
                label = latest.get(it["id"])
                if not it.get("answerable", True) or label not in ("right", "wrong"):
                    continue
                gold = [g.lower() for g in it["answers"]]
                if not any(g in h.chunk.text.lower() for h in kb.search(it["question"], 3) for g in gold):
                    continue
                row = {"kb": str(kb_path), "id": it["id"], "q": it["question"], "gold": it["answers"], "was": label}
                (wrong if label == "wrong" else right).append(row)
        finally:
            kb.close()
    right = random.Random(seed).sample(right, min(n_right, len(right)))
    out.write_text(json.dumps(wrong + right, indent=0))
    print(f"{len(wrong)} labelled wrong, {len(right)} labelled right -> {out}")


def ask(selection: Path, out: Path, settings: list[str]) -> None:
    overrides = dict(s.split("=", 1) for s in settings)
    rows = sorted(json.loads(selection.read_text()), key=lambda r: r["kb"])
    kb, current = None, ""
    with out.open("w") as f:
        for row in rows:
            if kb is None or current != row["kb"]:
                if kb is not None:
                    kb.close()
                kb, current = ragkit.open(row["kb"], create=False, **overrides), row["kb"]
            start = time.perf_counter()
            a = kb.ask(row["q"])
            rec = {**row, "draft": a.draft or ("" if a.abstained else a.text), "abstained": a.abstained}
            rec |= {"flags": [fl.kind for fl in a.flags], "s": round(time.perf_counter() - start, 1)}
            f.write(json.dumps(rec) + "\n")
            f.flush()
    if kb is not None:
        kb.close()


def _right(row: dict, labels: dict[tuple[str, str], str]) -> tuple[bool, bool]:
    """(right, read by a person) for a result row's draft."""
    label = labels.get((row["id"], row["draft"].strip()))
    if label is not None:
        return label == "right", True
    return bool(row["draft"]) and contains_answer(row["draft"], row["gold"]) == 1.0, False


def compare(base: Path, other: Path) -> None:
    labels = load_labels(LABELS)
    a = {r["id"]: r for r in map(json.loads, base.read_text().splitlines())}
    b = {r["id"]: r for r in map(json.loads, other.read_text().splitlines())}
    gained = lost = 0
    for qid in sorted(a.keys() & b.keys()):
        (ra, _), (rb, read) = _right(a[qid], labels), _right(b[qid], labels)
        if ra != rb:
            gained, lost = gained + rb, lost + ra
            mark = "+" if rb else "-"
            print(f"{mark} {qid} ({'read' if read else 'auto'}) {a[qid]['q']}\n    was: {a[qid]['draft'][:150]}")
            print(f"    now: {b[qid]['draft'][:150]}")
    right_a = sum(_right(r, labels)[0] for r in a.values())
    right_b = sum(_right(r, labels)[0] for r in b.values())
    withheld = sum(r["abstained"] for r in b.values()) - sum(r["abstained"] for r in a.values())
    print(f"{len(a)} questions: right drafts {right_a} -> {right_b} (+{gained} -{lost}); abstentions {withheld:+d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select")
    s.add_argument("work", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--right", type=int, default=60)
    s.add_argument("--seed", type=int, default=17)
    k = sub.add_parser("ask")
    k.add_argument("selection", type=Path)
    k.add_argument("out", type=Path)
    k.add_argument("--set", dest="settings", action="append", default=[])
    c = sub.add_parser("compare")
    c.add_argument("base", type=Path)
    c.add_argument("other", type=Path)
    args = ap.parse_args()
    if args.cmd == "select":
        select(args.work, args.out, args.right, args.seed)
    elif args.cmd == "ask":
        ask(args.selection, args.out, args.settings)
    else:
        compare(args.base, args.other)


if __name__ == "__main__":
    main()
