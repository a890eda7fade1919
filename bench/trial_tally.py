"""Tally `ragkit eval run` results on a real-document trial with the hand labels kept in the repo.

    python bench/trial_tally.py KB/runs/NAME [KB/runs/NAME ...] [--labels bench/data/trial_labels.jsonl] [--json]

For each run it prints the figures docs/benchmarks.md reports for the trials (bench/data/trial_*.jsonl):
right and wrong answers delivered, right drafts withheld, on-topic unanswerable questions abstained, on-topic
inventions delivered, the score (right - wrong - inventions) and the median seconds per question.

A delivered answer is looked up by (question id, answer text) in the labels file, where a person read it:
"right" / "wrong" for an answerable question, "invention" / "supported" for an unanswerable one (an answer the
sources do support although the question was written as unanswerable). A withheld draft counts as a right
draft withheld when it (or the second model's draft) holds a gold answer, unless the labels say otherwise.
Answers no one labelled are scored automatically (gold contained; any on-topic answer an invention) and
listed, so the next reader knows what to read: the labels file grows by hand, one JSON line per answer
(`bench/trial_label.py RUN` shows a run beside its labels; `bench/trial_label.py RUN ID=LABEL ...` adds some).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

from ragkit.evals.metrics import contains_answer

LABELS = Path(__file__).parent / "data" / "trial_labels.jsonl"
GOOD = {"right", "supported"}


def load_labels(path: Path) -> dict[tuple[str, str], str]:
    """(question id, answer text stripped) -> label."""
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["id"], r["answer"].strip()): r["label"] for r in rows}


def _drafts(sample: dict[str, Any]) -> list[str]:
    """The drafts behind an abstention: the first model's and, in a pair, the second one's."""
    return [d for d in ((sample.get("withheld") or {}).get("draft"), (sample.get("fallback") or {}).get("draft")) if d]


def _auto(answer: str, golds: list[str]) -> str:
    """The label a person would most likely give: right when a gold answer is in it."""
    return "right" if contains_answer(answer, golds) == 1.0 else "wrong"


def tally(samples: list[dict[str, Any]], labels: dict[tuple[str, str], str]) -> dict[str, Any]:
    """One run's figures; `unlabelled` lists the delivered answers scored without a person's label."""
    t: dict[str, Any] = {"answerable": 0, "on_topic": 0, "right": 0, "wrong": 0, "right_withheld": 0}
    t |= {"abstained_on_topic": 0, "inventions": 0, "unlabelled": []}
    seconds = []
    for s in samples:
        if s.get("status", "ok") != "ok":
            continue
        seconds.append(s.get("timings", {}).get("total", 0.0))
        qid, answer, golds = s["id"], s["answer"].strip(), s.get("gold_answers") or []
        if s["answerable"]:
            t["answerable"] += 1
            if s["abstained"]:
                drafts = [labels.get((qid, d.strip()), _auto(d, golds)) for d in _drafts(s)]
                t["right_withheld"] += "right" in drafts
                continue
            label = labels.get((qid, answer))
            if label is None:
                label = _auto(answer, golds)
                t["unlabelled"].append((qid, label, answer))
            t["right" if label == "right" else "wrong"] += 1
        else:
            t["on_topic"] += 1
            if s["abstained"]:
                t["abstained_on_topic"] += 1
                continue
            label = labels.get((qid, answer))
            if label is None:
                label = "invention"
                t["unlabelled"].append((qid, label, answer))
            t["inventions"] += label not in GOOD
    t["score"] = t["right"] - t["wrong"] - t["inventions"]
    t["median_s"] = round(statistics.median(seconds), 1) if seconds else None
    return t


def _samples(
    run: Path, unrelease: str | None = None, category: str | None = None, min_relevance: float = 0.0
) -> list[dict[str, Any]]:
    path = run / "samples.jsonl"
    if not path.is_file():
        raise SystemExit(f"{run}: not an eval run folder (no samples.jsonl); give KB/runs/NAME of a `ragkit eval run`")
    samples = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    samples = [_unreleased(s, unrelease) for s in samples] if unrelease else samples
    samples = [_unasked(s, min_relevance) for s in samples]
    return samples if category is None else in_category(samples, category)


def in_category(samples: list[dict[str, Any]], category: str) -> list[dict[str, Any]]:
    """The answerable samples of one `category` (trials 79 on mark each: "user" for a question written as a user
    with a task asks it, "manual" for one borrowing the page's words) and every unanswerable one."""
    return [s for s in samples if not s["answerable"] or s.get("category") == category]


def _unreleased(s: dict[str, Any], pattern: str) -> dict[str, Any]:
    """The sample as it would be without the release its "released" detail shows (matching `pattern`): a release
    comes after every check and changes nothing else, so one run gives both arms of a release rule."""
    freed = s.get("released") or {}
    if s.get("abstained") or not re.search(pattern, freed.get("detail", "")):
        return s
    return {**s, "abstained": True, "withheld": {"draft": s["answer"], "reason": "released"}}


def _unasked(s: dict[str, Any], floor: float) -> dict[str, Any]:
    """The sample as a higher relevance floor would have left it: a question whose best source scored under
    `floor` is abstained on before the model is asked (no draft), whatever the run did with it."""
    if floor <= 0 or s.get("relevance") is None or s["relevance"] >= floor:
        return s
    return {**s, "abstained": True, "withheld": None, "released": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="eval run folders (KB/runs/NAME)")
    ap.add_argument("--labels", type=Path, default=LABELS, help="hand labels, one JSON line per answer")
    ap.add_argument("--json", action="store_true", help="one JSON object per run")
    ap.add_argument(
        "--unrelease",
        metavar="REGEX",
        help="count answers delivered by a release whose detail matches as withheld (the arm without that release "
        'rule: "read the entry of" for rules R and R2, "^(unsourced|ungrounded): " for R2 alone)',
    )
    ap.add_argument(
        "--category",
        metavar="NAME",
        help='count only the answerable questions of this category (trials 79 on: "user" or "manual" wording)',
    )
    ap.add_argument(
        "--min-relevance",
        type=float,
        default=0.0,
        metavar="X",
        help="count questions whose best source scored under X as abstained unasked (the arm of a higher floor)",
    )
    args = ap.parse_args()
    labels = load_labels(args.labels)
    tallies = []
    for run in args.runs:
        t = tally(_samples(run, args.unrelease, args.category, args.min_relevance), labels)
        tallies.append(t)
        if args.json:
            print(json.dumps({"run": str(run), **t}))
            continue
        print(
            f"{run.name}: right {t['right']} / wrong {t['wrong']} / right withheld {t['right_withheld']} "
            f"(of {t['answerable']}); on-topic abstained {t['abstained_on_topic']} of {t['on_topic']}, "
            f"inventions {t['inventions']}; score {t['score']}; median {t['median_s']} s"
        )
        for qid, label, answer in t["unlabelled"]:
            print(f"  not labelled, scored {label}: {qid} {answer[:100]!r}")
    if len(tallies) > 1 and not args.json:
        print(_total(tallies))


def _total(tallies: list[dict[str, Any]]) -> str:
    """The runs' figures summed, with the rates the issue's targets are stated in."""
    keys = ("answerable", "on_topic", "right", "wrong", "right_withheld", "abstained_on_topic", "inventions")
    s = {k: sum(t[k] for t in tallies) for k in keys}
    abstained = s["answerable"] - s["right"] - s["wrong"]
    delivered = s["right"] + s["wrong"] + s["on_topic"] - s["abstained_on_topic"]
    bad = s["wrong"] + s["inventions"]

    def rate(n: int, d: int) -> str:
        return f"{n / d:.3f}" if d else "-"

    return (
        f"all {len(tallies)} runs: right {s['right']} / wrong {s['wrong']}; answerable abstained {abstained} of "
        f"{s['answerable']} ({rate(abstained, s['answerable'])}; right drafts withheld {s['right_withheld']}, "
        f"{rate(s['right_withheld'], s['answerable'])}); on-topic abstained {s['abstained_on_topic']} of "
        f"{s['on_topic']} ({rate(s['abstained_on_topic'], s['on_topic'])}); inventions {s['inventions']}; wrong or "
        f"invented {bad} of {delivered} delivered ({rate(bad, delivered)}); score {s['right'] - bad}"
    )


if __name__ == "__main__":
    main()
