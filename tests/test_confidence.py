"""ragkit.confidence: the model's probability of the answer's key spans, and `ask` withholding a guess.

Token probabilities here come from a scripted generator (the orchestration is under test); the transformers
backend's own figures are checked against a forward pass of the real model in test_generation_real.py."""

from __future__ import annotations

import math

import pytest

from ragkit.answering import AnswerOptions, answer_question
from ragkit.confidence import default_min_confidence, key_confidence
from ragkit.testing import HashEmbedder, ScriptedGenerator, make_hit, pieces

QUESTION = "Who wrote the onboarding guide?"
SOURCES = ["The onboarding guide covers laptops, accounts and the first week.", "Ada Byron runs the IT desk."]


def _tokens(text: str, sure: dict[str, float]) -> list[tuple[str, float]]:
    return [(p, math.log(sure.get(p.strip().rstrip(".,"), 0.9))) for p in pieces(text)]


def test_the_score_is_the_geometric_mean_probability_of_the_key_span_tokens() -> None:
    c = key_confidence(QUESTION, _tokens("It was written by Grace Hopper [1].", {"Grace": 0.2, "Hopper": 0.05}))
    assert c is not None and c.spans == ("Grace", "Hopper")
    assert c.score == pytest.approx(math.sqrt(0.2 * 0.05))
    # a citation marker is not a key span, and "1" inside "[1]" is not the number 1
    two = key_confidence(
        "How many vaults are there?", _tokens("There are 2 vaults [1], 1 on site.", {"2": 0.5, "1": 0.2})
    )
    assert two is not None and two.spans == ("2", "1") and two.score == pytest.approx(math.sqrt(0.5 * 0.2))
    assert key_confidence(QUESTION, []) is None  # the backend reported nothing
    assert key_confidence(QUESTION, _tokens("The onboarding guide.", {})) is None  # nothing beyond the question


def _ask(reply: str, sure: dict[str, float], name: str = "SmolLM2-135M-Instruct", **options: float):  # type: ignore[no-untyped-def]
    gen = ScriptedGenerator([reply], name=name, logprob=lambda p: math.log(sure.get(p.strip().rstrip(".,"), 0.9)))
    hits = [make_hit(1, SOURCES[0], "/kb/onboarding.md", dense=0.6), make_hit(2, SOURCES[1], "/kb/it.md", dense=0.5)]
    opts = AnswerOptions(min_grounding=0, min_coverage=0, **options)  # the confidence check alone
    return answer_question(QUESTION, hits, gen, opts, embed=HashEmbedder().embed)


def test_a_guessed_key_fact_is_withheld_with_its_reason() -> None:
    ans = _ask("It was written by Ada Byron [2].", {"Ada": 0.1, "Byron": 0.2})
    assert ans.abstained and ans.text == "I don't know based on the provided sources." and not ans.citations
    assert ans.draft.startswith("It was written by Ada Byron") and ans.confidence == pytest.approx(
        math.sqrt(0.02), abs=1e-4
    )
    (flag,) = [f for f in ans.flags if f.kind == "unsure"]
    assert "Ada, Byron" in flag.detail and "min_confidence 0.20" in flag.detail


def test_a_sure_answer_is_kept_and_the_floor_can_be_turned_off_or_is_off_for_unknown_models() -> None:
    sure = _ask("It was written by Ada Byron [2].", {"Ada": 0.9, "Byron": 0.8})
    assert not sure.abstained and sure.draft == "" and sure.confidence == pytest.approx(math.sqrt(0.72), abs=1e-4)
    guess = {"Ada": 0.1, "Byron": 0.2}
    assert not _ask("It was written by Ada Byron [2].", guess, min_confidence=0).abstained
    assert _ask("It was written by Ada Byron [2].", guess, min_confidence=0.1).abstained is False  # 0.14 >= 0.1
    other = _ask("It was written by Ada Byron [2].", guess, name="my-own-model")
    assert not other.abstained and other.confidence is not None  # measured, but no floor for an uncalibrated model
    assert default_min_confidence("my-own-model") == 0.0 and default_min_confidence("SmolLM2-135M-Instruct+mine") == 0.0
    assert default_min_confidence("SmolLM2-135M-Instruct") > 0


def test_a_backend_without_token_probabilities_is_not_checked() -> None:
    gen = ScriptedGenerator(["It was written by Ada Byron [2]."], name="SmolLM2-135M-Instruct")
    hits = [make_hit(1, SOURCES[0], "/kb/onboarding.md", dense=0.6), make_hit(2, SOURCES[1], "/kb/it.md", dense=0.5)]
    ans = answer_question(
        QUESTION, hits, gen, AnswerOptions(min_grounding=0, min_coverage=0), embed=HashEmbedder().embed
    )
    assert not ans.abstained and ans.confidence is None
