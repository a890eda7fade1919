"""bench/trial_tally.py: the hand labels kept for the real-document trials, and the tally docs/benchmarks.md
reports from them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

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


_label_spec = importlib.util.spec_from_file_location("trial_label", ROOT / "bench" / "trial_label.py")
assert _label_spec and _label_spec.loader


def test_trial_label_shows_a_run_and_appends_labels(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # trial_label imports trial_tally as a sibling script
    trial_label = importlib.util.module_from_spec(_label_spec)
    _label_spec.loader.exec_module(trial_label)
    run = tmp_path / "kb" / "runs" / "20261205-000000-trial_x"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": {"source": "/repo/bench/data/trial_x.jsonl"}}))
    samples = [
        {"id": "x-a1", "question": "Which option?", "answer": "-F [1].", "answerable": True, "abstained": False},
        {"id": "x-a2", "question": "Which flag?", "answer": "I don't know.", "answerable": True, "abstained": True,
         "withheld": {"draft": "-q [2]. "}},
        {"id": "x-u1", "question": "Who wrote it?", "answer": "Ann [1].", "answerable": False, "abstained": False},
    ]  # fmt: skip
    (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    labels = tmp_path / "labels.jsonl"
    monkeypatch.setattr(sys, "argv", ["trial_label.py", str(run), "x-a1=right", "x-a2=wrong", "--file", str(labels)])
    trial_label.main()
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [(r["trial"], r["id"], r["answer"], r["label"]) for r in rows] == [
        ("trial_x.jsonl", "x-a1", "-F [1].", "right"),
        ("trial_x.jsonl", "x-a2", "-q [2].", "wrong"),  # an abstention's withheld draft, stripped
    ]

    def label(*pairs: str) -> None:
        monkeypatch.setattr(sys, "argv", ["trial_label.py", str(run), *pairs, "--file", str(labels)])
        trial_label.main()

    with pytest.raises(SystemExit, match="label it invention or supported"):  # answerable label, unanswerable question
        label("x-u1=right")
    # the same answer in a second run keeps its one label line; another label for it is refused
    label("x-a1=right")
    assert len(labels.read_text().splitlines()) == 2
    with pytest.raises(SystemExit, match="labelled right already"):
        label("x-a1=wrong")
    label()
    shown = capsys.readouterr().out
    assert "[right] '-F [1].'" in shown and "[wrong] '-q [2].'" in shown and "[?] 'Ann [1].'" in shown


def test_runs_are_summed_with_the_rates_of_the_issues_targets() -> None:
    # two runs' tallies (as `tally` returns them) give the totals docs/benchmarks.md reports for the trials
    a = {"answerable": 19, "on_topic": 7, "right": 16, "wrong": 1, "right_withheld": 1, "abstained_on_topic": 6}
    b = {"answerable": 19, "on_topic": 7, "right": 15, "wrong": 3, "right_withheld": 1, "abstained_on_topic": 5}
    line = trial_tally._total([a | {"inventions": 1}, b | {"inventions": 2}])
    assert "answerable abstained 3 of 38 (0.079; right drafts withheld 2, 0.053)" in line
    assert "on-topic abstained 11 of 14 (0.786)" in line
    assert "wrong or invented 7 of 38 delivered (0.184); score 24" in line


def test_unrelease_gives_the_arm_without_a_release_rule() -> None:
    freed = _sample("a1", "It is -r [1].", True, False) | {
        "released": {"detail": "unsourced: x; but the model read the entry of -r as the answer"}
    }
    other = _sample("a2", "It is -s [1].", True, False) | {"released": {"detail": "x; but the model gave 0.90"}}
    kept = trial_tally._unreleased(other, "read the entry of")
    assert kept is other
    held = trial_tally._unreleased(freed, "^(unsourced|ungrounded): ")
    assert held["abstained"] and held["withheld"]["draft"] == "It is -r [1]." and not freed["abstained"]
    assert trial_tally._unreleased(freed, "^off_question") is freed


def test_category_keeps_the_answerable_questions_of_one_wording() -> None:
    user = _sample("a1", "It is -r [1].", True, False) | {"category": "user"}
    manual = _sample("a2", "It is -s [1].", True, False) | {"category": "manual"}
    unmarked = _sample("a3", "It is -t [1].", True, False)
    missing = _sample("u1", "I don't know.", False, True)
    assert trial_tally.in_category([user, manual, unmarked, missing], "user") == [user, missing]
    assert trial_tally.in_category([user, manual, unmarked, missing], "manual") == [manual, missing]


def test_a_label_from_a_run_of_gathered_questions_names_the_trial_that_asks_it(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    trial_label = importlib.util.module_from_spec(_label_spec)
    _label_spec.loader.exec_module(trial_label)
    run = tmp_path / "kb" / "runs" / "20261207-000000-dr_changed"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": {"source": "/tmp/dr_changed.jsonl"}}))
    sample = {"id": "bz2-a1", "question": "?", "answer": "-k [1].", "answerable": True, "abstained": False}
    (run / "samples.jsonl").write_text(json.dumps(sample) + "\n")
    labels = tmp_path / "labels.jsonl"
    monkeypatch.setattr(sys, "argv", ["trial_label.py", str(run), "bz2-a1=right", "--file", str(labels)])
    trial_label.main()
    assert json.loads(labels.read_text())["trial"] == "trial_heldout_bzip2.jsonl"
