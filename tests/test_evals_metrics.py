"""Each evaluation metric against values computed by hand."""

from __future__ import annotations

import math

import pytest

from ragkit.evals import metrics as M


def test_recall_mrr_ndcg_by_hand() -> None:
    # 2 gold docs a, b; ranks: 1 miss, 2 -> a, 3 -> a again (no new gain), 4 -> b
    hits = [[], ["a"], ["a"], ["b"]]
    assert M.recall_at_k(hits, 2, 1) == 0.0
    assert M.recall_at_k(hits, 2, 2) == 0.5
    assert M.recall_at_k(hits, 2, 3) == 0.5
    assert M.recall_at_k(hits, 2, 4) == 1.0
    assert M.reciprocal_rank(hits) == 0.5
    assert M.reciprocal_rank(hits, k=1) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert M.ndcg_at_k(hits, 2, 10) == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k([["a"], ["b"]], 2) == pytest.approx(1.0)
    assert math.isnan(M.recall_at_k(hits, 0, 5)) and math.isnan(M.ndcg_at_k(hits, 0))


def test_passage_matching() -> None:
    chunk = "Intro.\n\nProduction API keys must be rotated every 90 days. Staging keys every 180 days."
    assert M.passage_matches("production api keys must be rotated every 90 days.", chunk)
    assert M.passage_matches("Production API keys must be rotated every 90 days, said the policy", chunk)
    assert not M.passage_matches("Hotel costs are reimbursed up to 180 euros per night.", chunk)


def test_squad_normalisation_em_f1() -> None:
    assert M.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert M.exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert M.exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # pred "rotated every 90 days" vs gold "90 days": common 2, P = 2/4, R = 2/2 -> F1 = 2/3
    assert M.token_f1("Rotated every 90 days", ["90 days"]) == pytest.approx(2 / 3)
    assert M.token_f1("Rotated every 90 days", ["a week", "every 90 days"]) == pytest.approx(2 * 0.75 * 1 / 1.75)
    assert M.token_f1("", ["x"]) == 0.0
    assert math.isnan(M.token_f1("x", []))
    assert M.contains_answer("Keys are rotated every 90 days [1].", ["90 days"]) == 1.0
    assert M.contains_answer("Keys are rotated every 190 days.", ["90 days"]) == 0.0
    # code: punctuation glues tokens when deleted, so it is read as a space too
    assert M.contains_answer("object.__contains__(self, item) [3].", ["__contains__"]) == 1.0
    assert M.contains_answer("object.__contained__(self)", ["__contains__"]) == 0.0
    assert M.contains_answer("It costs 1,000 euros.", ["1000"]) == 1.0
    # Unicode punctuation is punctuation: dpkg's spec writes its states in curly quotes
    quoted = "There are two new dpkg status values, ‘triggers-pending’ and ‘triggers-awaited’ [1]."
    assert M.contains_answer(quoted, ["triggers-pending"]) == 1.0
    assert M.contains_answer(quoted, ["triggers-installed"]) == 0.0
    # a citation marker holds no answer: the minimum key size is 1, not "16 bytes [1]"
    assert M.contains_answer("The minimum key size is 16 bytes [1].", ["1"]) == 0.0
    assert M.contains_answer("The minimum key size is 1 [1][2].", ["1"]) == 1.0


def test_claim_rates_and_citations() -> None:
    v = [
        M.ClaimVerdict("a", 0.9, True, (True, False)),  # supported; one of two citations supports it
        M.ClaimVerdict("b", 0.2, False, (False,)),
        M.ClaimVerdict("c", 0.8, True, ()),  # supported, cites nothing
    ]
    r = M.claim_rates(v)
    assert r["supported_claim_rate"] == pytest.approx(2 / 3)
    assert r["unsupported_claim_rate"] == pytest.approx(1 / 3)
    assert r["citation_precision"] == pytest.approx(1 / 3)  # 1 supporting citation of 3
    assert r["citation_recall"] == pytest.approx(1 / 3)  # 1 claim of 3 carries a supporting citation
    assert all(math.isnan(x) for x in M.claim_rates([]).values())


def test_abstention_rates() -> None:
    r = M.abstention_rates([True, True, True, False, False], [False, True, False, True, False])
    assert r["abstention_rate"] == 0.5 and r["false_abstention_rate"] == pytest.approx(1 / 3)
    assert math.isnan(M.abstention_rates([True], [False])["abstention_rate"])


def test_cost_metrics() -> None:
    assert M.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert M.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert math.isnan(M.percentile([], 50))
    assert M.tokens_per_second([10, 30], [1.0, 3.0]) == 10.0


def test_binary_scores() -> None:
    truth = [True, True, True, False, False, False, False, False]
    pred = [True, True, False, True, False, False, False, False]
    s = M.binary_scores(truth, pred)
    # tp 2, fn 1, fp 1, tn 4: recall 2/3, tnr 4/5, precision 2/3
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == pytest.approx(2 / 3)
    assert s["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert s["f1"] == pytest.approx(2 / 3)


def test_relevance_separation_finds_the_floor_that_splits_the_two_kinds_of_question() -> None:
    answerable = [True, True, True, False, False, False]
    sep = M.relevance_separation(answerable, [0.62, 0.48, 0.41, 0.33, 0.20, 0.05])
    assert sep["auroc"] == 1.0 and 0.33 < sep["floor"] < 0.41  # halfway: 0.37
    # overlap: one unanswerable question scores above an answerable one; the floor takes the better trade
    sep = M.relevance_separation(answerable, [0.62, 0.48, 0.30, 0.40, 0.20, 0.05])
    assert sep["auroc"] == pytest.approx(8 / 9) and 0.20 < sep["floor"] < 0.30
    assert math.isnan(M.relevance_separation([True, True], [0.5, 0.6])["auroc"])
