"""bench/trial_tally.py: the hand labels kept for the real-document trials, and the tally docs/benchmarks.md
reports from them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("trial_tally", ROOT / "bench" / "trial_tally.py")
assert _spec and _spec.loader
trial_tally = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trial_tally)


def _questions() -> dict[str, dict[str, Any]]:
    rows = {}
    for path in (ROOT / "bench" / "data").glob("trial_*.jsonl"):
        if path.name == "trial_labels.jsonl":
            continue
        for line in path.read_text().splitlines():
            q = json.loads(line)
            rows[q["id"]] = q | {"trial": path.name}
    return rows


def test_every_label_names_a_trial_question_and_fits_it() -> None:
    questions = _questions()
    labels = [json.loads(line) for line in trial_tally.LABELS.read_text().splitlines()]
    assert len(labels) > 100
    for row in labels:
        q = questions[row["id"]]
        assert row["trial"] == q["trial"], row
        allowed = {"right", "wrong"} if q["answerable"] else {"invention", "supported"}
        assert row["label"] in allowed, row
        assert row["answer"] == row["answer"].strip() and row["answer"]
    assert len(trial_tally.load_labels(trial_tally.LABELS)) == len(labels)  # no answer labelled twice


def _sample(qid: str, answer: str, answerable: bool, abstained: bool, **extra: Any) -> dict[str, Any]:
    golds = ["50"] if answerable else []
    base = {"id": qid, "answer": answer, "answerable": answerable, "abstained": abstained, "gold_answers": golds}
    return base | {"timings": {"total": 2.0}} | extra


def test_the_tally_follows_the_labels_before_the_gold_strings() -> None:
    labels = {("a1", "It is 50 [1]."): "wrong", ("m1", "Roughly the latest."): "supported"}
    samples = [
        _sample("a1", "It is 50 [1].", True, False),  # gold contained, but a person said wrong
        _sample("a2", "The weight is 50.", True, False),  # not labelled: gold contained, scored right, listed
        _sample("a3", "I don't know.", True, True, withheld={"draft": "50 [2]."}),  # a right draft withheld
        _sample("a4", "I don't know.", True, True, fallback={"draft": "60."}),  # a wrong one
        _sample("m1", "Roughly the latest.", False, False),  # on topic, but the sources support it
        _sample("m2", "Made in 1999.", False, False),  # not labelled: an invention
        _sample("m3", "I don't know.", False, True),
    ]
    t = trial_tally.tally(samples, labels)
    assert (t["right"], t["wrong"], t["right_withheld"]) == (1, 1, 1)
    assert (t["on_topic"], t["abstained_on_topic"], t["inventions"]) == (3, 1, 1)
    assert t["score"] == 1 - 1 - 1 and t["median_s"] == 2.0
    assert [u[0] for u in t["unlabelled"]] == ["a2", "m2"]


def test_trial_question_ids_are_unique_across_trials() -> None:
    # the labels are keyed by (id, answer): a second trial reusing an id would inherit the first one's labels
    seen: dict[str, str] = {}
    for path in sorted(trial_tally.LABELS.parent.glob("trial_*.jsonl")):
        if path == trial_tally.LABELS:
            continue
        for line in path.read_text().splitlines():
            qid = json.loads(line)["id"]
            assert qid not in seen, f"{qid} in {path.name} and {seen[qid]}"
            seen[qid] = path.name
    assert len(seen) > 500
