"""Read a trial run's answers beside their hand labels, and add labels, for `bench/trial_tally.py`.

    python bench/trial_label.py KB/runs/NAME                       # every answer and withheld draft, labelled or "?"
    python bench/trial_label.py KB/runs/NAME ID=LABEL [ID=LABEL ...]  # append labels to the labels file

A delivered answer to an answerable question is labelled right or wrong, one to an on-topic unanswerable
question invention or supported (the sources do say it). For an abstention, the label goes to the first model's
withheld draft (right or wrong), which `trial_tally.py` counts as a right draft withheld. Read the source before
labelling: a gold string inside an answer is not enough ("-i" holds "-I" when case is ignored).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from trial_tally import LABELS, _drafts, _samples, load_labels

KINDS = {"right", "wrong", "invention", "supported"}


def show(samples: list[dict[str, Any]], labels: dict[tuple[str, str], str]) -> None:
    """Print each question with its gold, and its answer or withheld drafts with their labels."""
    for s in samples:
        qid, answer = s["id"], s["answer"].strip()
        print(f"{qid} {'ABSTAINED' if s['abstained'] else 'DELIVERED'} gold={s.get('gold_answers')} {s['question']}")
        for text in [d.strip() for d in _drafts(s)] if s["abstained"] else [answer]:
            print(f"    [{labels.get((qid, text), '?')}] {text[:300]!r}")


def trial_files() -> dict[str, str]:
    """question id -> the name of the trial file that asks it ("trial_heldout_mawk.jsonl"), for the trials
    bench/run_trials.sh lists."""
    here = Path(__file__).parent
    names = re.findall(r'^\s*"\w+ (trial_\w+) ', (here / "run_trials.sh").read_text(encoding="utf-8"), re.M)
    return {
        json.loads(line)["id"]: f"{name}.jsonl"
        for name in dict.fromkeys(names)
        for line in (here / "data" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


def label(samples: list[dict[str, Any]], trial: str, wanted: dict[str, str], path: Path) -> list[str]:
    """Append one label line per ID=LABEL; returns the ids not found in the run. An answer labelled before (a
    second run often repeats one word for word) keeps its label: the same label is not written twice, another one
    is refused. A label names the run's trial file, or for a run of another file (questions gathered from several
    trials: bench/named_changed.py) the trial file that asks the question."""
    owner = {} if trial.startswith("trial_") else trial_files()
    known = load_labels(path)
    with path.open("a", encoding="utf-8") as out:
        for s in samples:
            if s["id"] not in wanted:
                continue
            fits = {"right", "wrong"} if s["answerable"] else {"invention", "supported"}
            if wanted[s["id"]] not in fits:
                raise SystemExit(f"{s['id']}: label it {' or '.join(sorted(fits))}, not {wanted[s['id']]}")
            drafts = _drafts(s)
            text = (drafts[0] if drafts else "").strip() if s["abstained"] else s["answer"].strip()
            if text and (s["id"], text) in known:
                if known[(s["id"], text)] != wanted[s["id"]]:
                    raise SystemExit(f"{s['id']}: this answer is labelled {known[(s['id'], text)]} already")
                wanted.pop(s["id"])
            elif text:
                row = {"trial": owner.get(s["id"], trial), "id": s["id"], "answer": text, "label": wanted.pop(s["id"])}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return sorted(wanted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="an eval run folder (KB/runs/NAME)")
    ap.add_argument("labels", nargs="*", help="ID=LABEL, LABEL one of right, wrong, invention, supported")
    ap.add_argument("--file", type=Path, default=LABELS, help="the labels file")
    args = ap.parse_args()
    samples = _samples(args.run)
    if not args.labels:
        show(samples, load_labels(args.file))
        return
    wanted = dict(pair.split("=", 1) for pair in args.labels if "=" in pair)
    bad = [v for v in wanted.values() if v not in KINDS] + [p for p in args.labels if "=" not in p]
    if bad:
        raise SystemExit(f"labels are ID=LABEL with LABEL one of {', '.join(sorted(KINDS))}: not {bad}")
    config = json.loads((args.run / "config.json").read_text(encoding="utf-8"))
    trial = Path(config["dataset"]["source"]).name  # "trial_heldout_mawk.jsonl"
    missing = label(samples, trial, wanted, args.file)
    if missing:
        raise SystemExit(f"not in {args.run} (or no text to label): {', '.join(missing)}")


if __name__ == "__main__":
    main()
