"""The report's "Who answered" table (ragkit.evals.answerers), from sample records as `ragkit eval run` writes
them; the run through the CLI with a fallback is in tests/test_fallback.py."""

from __future__ import annotations

from typing import Any

from ragkit.evals.answerers import answered_by


def _sample(generator: str, *, abstained: bool = False, gold: float = 1.0, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"status": "ok", "generator": generator, "abstained": abstained, "answerable": True}
    rec["scores"] = {"contains": gold}
    rec["claims"] = [] if abstained else [{"supported": gold == 1.0}]
    return rec | extra


def test_each_model_gets_its_answers_gold_and_unsupported_claims() -> None:
    asked = {"fallback": {"draft": "x", "detail": "..."}}
    samples = [
        _sample("small"),
        _sample("small", gold=0.0),
        _sample("big", **asked),
        _sample("small", abstained=True, **asked),  # both drafts withheld
        _sample("small", abstained=True),  # withheld, no second model asked (a refusal)
        {"status": "error", "error": "boom"},
    ]
    rows = answered_by(samples)
    assert rows == (
        ("big", "1", "1", "1.000", "0.000"),
        ("small", "2", "2", "0.500", "0.500"),
        ("(asked both, both withheld)", "1", "1", "-", "-"),
    )


def test_a_run_of_one_model_has_no_table() -> None:
    assert answered_by([_sample("small"), _sample("small", abstained=True)]) == ()
