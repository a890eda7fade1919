"""The role check (ragkit/roles.py), the copied-number pairs built from the dev set, and the default judge
that they stop from calling a copied neighbour supported."""

from __future__ import annotations

import pytest

from ragkit.evals import copied_pairs as C
from ragkit.evals import judges as J
from ragkit.roles import clauses, occurs, role_support, span_kind, span_roles

KEYS = (
    "Production API keys must be rotated every 90 days. Staging keys are rotated every 180 days. "
    "If a key is leaked, it must be revoked within 4 hours. The security team then reviews the access logs "
    "of the last 30 days."
)


def test_clauses_and_whole_token_occurrences() -> None:
    assert clauses("Keys rotate every 90 days; sessions expire after 30 days.") == [
        "Keys rotate every 90 days",
        "sessions expire after 30 days.",
    ]
    assert clauses("Logs are kept for 400 days, after which they are deleted.")[1].startswith("after which")
    assert occurs("30", "after 30 days") and not occurs("30", "after 300 days") and not occurs("3", "3.30")
    assert occurs("vault", "the Vault command")
    # a version after its "v" (util-linux's "since: v2.30"), but not inside another word or number
    assert occurs("2.30", "since: v2.30") and not occurs("2.30", "dev2.30") and not occurs("30", "v2.30")
    assert [span_kind(s) for s in ("90", "10:00", "__len__", "id()", "Frankfurt")] == [
        "number",
        "number",
        "identifier",
        "identifier",
        "name",
    ]


def test_a_number_in_its_own_role_passes() -> None:
    assert role_support("Production API keys must be rotated every 90 days.", KEYS) == 1.0
    assert role_support("How often must production API keys be rotated? 90 days.", KEYS) == 1.0
    assert role_support("Staging keys are rotated every 180 days.", KEYS) == 1.0
    assert role_support("A leaked key must be revoked within 4 hours.", KEYS) == 1.0


def test_a_number_copied_from_a_neighbouring_sentence_is_caught() -> None:
    roles = span_roles("Production API keys must be rotated every 180 days.", KEYS)
    wrong = next(r for r in roles if r.span == "180")
    assert wrong.score < 0.7 and wrong.rival == "90" and wrong.clause.startswith("Staging")
    assert role_support("How often must production API keys be rotated? 180 days.", KEYS) < 0.7
    assert role_support("A leaked key must be revoked within 30 days.", KEYS) < 0.7


def test_a_number_from_another_clause_of_the_same_sentence_is_caught() -> None:
    source = "API keys rotate every 90 days; browser sessions expire after 30 days."
    assert role_support("API keys rotate every 30 days.", source) < 0.5
    assert role_support("API keys rotate every 90 days.", source) == 1.0
    assert role_support("Browser sessions expire after 30 days.", source) == 1.0


def test_a_name_in_another_slot_of_the_same_clause_is_caught() -> None:
    source = "The film was directed by Griffin Dunne and written by Laura Kirk."
    assert role_support("The film was written by Griffin Dunne.", source) < 0.5
    assert role_support("The film was written by Laura Kirk.", source) == 1.0


def test_what_the_role_check_leaves_to_other_checks() -> None:
    assert role_support("Keys are rotated every 45 days.", KEYS) == 1.0  # absent: the foreign-number cap's job
    assert role_support("Keys are rotated often.", KEYS) == 1.0  # no key span
    # a fact joined across sentences is no copy: the best-matching sentence holds no rival of the span's kind
    joined = "Alice Smith is an American actress. She starred in the film Paradise."
    assert role_support("Alice Smith starred in Paradise.", joined) == 1.0


def test_copied_pairs_from_one_passage() -> None:
    pairs = C.pairs_for("How often must production API keys be rotated?", "90 days", KEYS)
    supported = [p.claim for p in pairs if not p.unsupported]
    wrong = [p.claim for p in pairs if p.unsupported]
    assert supported == [
        "Production API keys must be rotated every 90 days.",
        "How often must production API keys be rotated? 90 days.",
    ]
    # the nearest numbers of the passage first, times never swapped for counts
    assert wrong[:2] == [
        "Production API keys must be rotated every 180 days.",
        "How often must production API keys be rotated? 180 days.",
    ]
    assert len(wrong) == 2 * C.MAX_SWAPS and all(p.context == pairs[0].context for p in pairs)
    assert C.pairs_for("Who approves?", "economy", KEYS) == []  # the answer is not in the passage
    assert C.pairs_for("Which rule?", "rule", "A rule. Another rule.") == []  # no swappable token


def test_copied_pairs_of_the_dev_set_are_split_and_labelled_both_ways() -> None:
    dev, held = C.copied_number_pairs("dev"), C.copied_number_pairs("heldout")
    assert len(dev) > 150 and len(held) > 150
    for pairs in (dev, held):
        assert 0.2 < sum(not p.unsupported for p in pairs) / len(pairs) < 0.5
    assert not {p.claim for p in dev} & {p.claim for p in held}
    assert "Staging keys are rotated every 180 days." in {p.claim for p in held if not p.unsupported}  # s-a10
    assert J.judge_pairs("copied-number", "calibration") == dev
    with pytest.raises(Exception, match="split"):
        C.copied_number_pairs("train")


@pytest.mark.slow
def test_the_default_judge_rejects_a_copied_neighbour_through_real_minilm() -> None:
    judge = J.make_judge("minilm-lexical")
    assert isinstance(judge, J.EmbeddingLexicalJudge) and judge.role_min == J.ROLE_MIN
    claims = [
        "Production API keys must be rotated every 90 days.",
        "Production API keys must be rotated every 180 days.",
    ]
    right, copied = judge.support(claims, [KEYS, KEYS])
    assert right >= judge.threshold > copied
    judge.role_min = 0.0  # the judge without the role check: the copied figure reads as supported
    assert judge.support(claims[1:], [KEYS])[0] >= judge.threshold


def test_judge_accuracy_reports_the_copied_number_part_apart() -> None:
    parts = J.judge_accuracy_parts(J.LexicalJudge(), limit=40)
    assert list(parts) == ["halueval", "copied-number"] and all(r["n"] == 40 for r in parts.values())
    assert parts["halueval"]["balanced_accuracy"] == pytest.approx(0.575)  # as the CLI test measures it
    # word overlap cannot tell a copied neighbour from the right figure: it flags none of the 24 copies
    copied = parts["copied-number"]
    assert copied["balanced_accuracy"] == 0.5 and copied["recall"] == 0.0
    assert copied["mean_support_unsupported"] > 0.9
    with pytest.raises(Exception, match="unknown part"):
        J.judge_pairs("squad")


TIMESHIFT = (
    "TimeShift is a 2007 first-person shooter developed by Saber Interactive and published by Sierra "
    "Entertainment for Microsoft Windows, Xbox 360, and PlayStation 3. Now headquartered in Maplewood, New "
    "Jersey, it has additional offices in Saint Petersburg (Russia), Madrid (Spain), and Kiev (Ukraine)."
)  # a HaluEval-QA passage: the answer is two sentences away from the name the question gives


def test_the_role_check_holds_an_answer_sentence_only_to_what_it_adds_to_its_question() -> None:
    question = "Where was the video game developer who developed TimeShift headquartered?"
    right = "The video game developer who developed TimeShift headquartered in Maplewood, New Jersey."
    # without the question, TimeShift (which the question supplies) reads as out of its role
    assert role_support(right, TIMESHIFT) < J.ROLE_MIN
    assert role_support(right, TIMESHIFT, question) == 1.0
    # what the answer adds is still checked: a copied neighbour of the right city stays out of its role
    copied = "The video game developer who developed TimeShift headquartered in Madrid."
    assert role_support(copied, TIMESHIFT, question) < J.ROLE_MIN
    assert [r.span for r in span_roles(copied, TIMESHIFT, question)] == ["Madrid"]


class _Recording:
    """A judge that supports everything and records what it was given (orchestration under test)."""

    name, threshold = "recording", 0.5

    def __init__(self) -> None:
        self.questions: list[str | None] = []

    def support(self, claims: list[str], contexts: list[str], questions: list[str] | None = None) -> list[float]:
        self.questions.extend(questions or [None] * len(claims))
        return [1.0] * len(claims)


def test_ragkit_eval_judges_each_answer_sentence_with_its_question() -> None:
    from ragkit.answering import AnswerOptions, answer_question
    from ragkit.evals.scoring import _judge_claims
    from ragkit.testing import ScriptedGenerator, make_hit

    question = "How often are production API keys rotated?"
    ans = answer_question(
        question, [make_hit(1, KEYS, dense=0.7)], ScriptedGenerator(["Every 90 days [1]."]), AnswerOptions()
    )
    judge = _Recording()
    (claim,) = _judge_claims(ans, judge)
    assert claim["supported"] and claim["cited_supported"] == [True]
    assert judge.questions == [question, question]  # against all the context, then against the cited source


PARADIS = "Vanessa Chantal Paradis (] ; born 22 December 1972) is a French singer-songwriter, musician, actress."
BATORS = "Stiv Bators (born Steven John Bator; October 22, 1949 – June 4, 1990) was an American punk rock vocalist."


class _JoinedRival:
    """A judge that finds a claim unsupported only against several sources joined (as the role check does when
    another source holds a rival); its verdict against one source is 0.9 (orchestration under test)."""

    name, threshold = "joined-rival", 0.5

    def support(self, claims: list[str], contexts: list[str], questions: list[str] | None = None) -> list[float]:
        return [0.1 if "\n\n" in c else 0.9 for c in contexts]


def _answer(text: str):
    from ragkit.answering import AnswerOptions, answer_question
    from ragkit.testing import ScriptedGenerator, make_hit

    question = "When was the French singer-songwriter, musician, actress and model born?"
    hits = [make_hit(1, PARADIS, dense=0.7), make_hit(2, BATORS, dense=0.6)]
    return answer_question(question, hits, ScriptedGenerator([text]), AnswerOptions(min_grounding=0.0))


def test_a_claim_its_cited_source_supports_is_supported_rule_jc() -> None:
    from ragkit.evals.scoring import _judge_claims

    (claim,) = _judge_claims(_answer("Vanessa Chantal Paradis was born on 22 December 1972 [1]."), _JoinedRival())
    assert claim["cited_supported"] == [True]
    assert claim["supported"] and claim["support"] == 0.9
    # neither verdict supports it: unsupported, at the higher support
    (both,) = _judge_claims(_answer("Vanessa Chantal Paradis was born in Lyon [1]."), _Nowhere())
    assert both["cited_supported"] == [False] and not both["supported"] and both["support"] == 0.2


class _Nowhere(_JoinedRival):
    def support(self, claims: list[str], contexts: list[str], questions: list[str] | None = None) -> list[float]:
        return [0.1 if "\n\n" in c else 0.2 for c in contexts]


@pytest.mark.slow
def test_the_default_judge_keeps_a_rival_in_another_source_from_sinking_a_cited_claim() -> None:
    from ragkit.evals.scoring import _judge_claims

    judge = J.make_judge("minilm-lexical")
    claim = "Vanessa Chantal Paradis was born on 22 December 1972."
    # joined with the other singer's passage, "Bators ... born" is a rival of the name: the role check caps it
    assert role_support(claim, PARADIS + "\n\n" + BATORS) < J.ROLE_MIN <= role_support(claim, PARADIS)
    (verdict,) = _judge_claims(_answer(claim[:-1] + " [1]."), judge)
    assert verdict["cited_supported"] == [True] and verdict["supported"]
