"""Judges: the default offline judge with the real MiniLM, calibration, the cross-encoder and LLM judges,
and `ragkit eval judge-accuracy` on real held-out HaluEval-QA pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragkit.cli.app import app
from ragkit.errors import ConfigError, ModelError
from ragkit.evals import judges as J
from ragkit.testing import ScriptedGenerator

CONTEXT = (
    "Production API keys must be rotated every 90 days. Staging keys are rotated every 180 days.The on-call "
    "engineer performs the rotation with Vault."
)


@pytest.fixture(scope="module")
def default_judge() -> J.EmbeddingLexicalJudge:
    judge = J.make_judge("minilm-lexical")
    assert isinstance(judge, J.EmbeddingLexicalJudge)
    return judge


def test_text_features_by_hand() -> None:
    assert J.context_sentences(CONTEXT)[-1] == "The on-call engineer performs the rotation with Vault."
    assert J.name_coverage("Keys are rotated with Vault every 90 days.", CONTEXT) == 1.0
    assert J.name_coverage("Keys are rotated with Vault every 30 days.", CONTEXT) == 0.5  # Vault yes, 30 no
    assert J.name_coverage("keys are rotated.", CONTEXT) == 1.0  # nothing to check
    assert J.missing_words("Production keys are rotated", CONTEXT) == 0.0
    assert J.missing_words("Production keys are shredded by angry lawyers monthly", CONTEXT) == 1.0  # 4 new


@pytest.mark.slow
def test_default_judge_separates_supported_from_changed_claims(default_judge: J.EmbeddingLexicalJudge) -> None:
    claims = [
        "Production API keys must be rotated every 90 days.",
        "Production API keys must be rotated every 30 days.",
        "Hotel costs are reimbursed up to 180 euros per night.",
    ]
    probs = default_judge.support(claims, [CONTEXT] * 3)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert probs[0] > probs[1] and probs[0] > probs[2]
    verdicts = J.verdicts(default_judge, claims, [CONTEXT] * 3)
    assert verdicts[0][1] and not verdicts[1][1] and not verdicts[2][1]  # a changed figure is never supported
    assert default_judge.features(claims[:1], [CONTEXT]).shape == (1, len(J.FEATURES))


def test_logistic_fit_and_threshold_on_separable_data() -> None:
    x = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.9], [0.1, 0.7]])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    w, b = J.fit_logistic(x, y)
    assert w[0] > 0 > w[1]
    probs = 1 / (1 + np.exp(-(x @ w + b)))
    assert (probs[:2] > 0.5).all() and (probs[2:] < 0.5).all()
    t = J.best_threshold([0.9, 0.8, 0.3, 0.2], [False, False, True, True])
    assert 0.3 < t <= 0.8


@pytest.mark.slow
def test_calibration_on_real_halueval_pairs(default_judge: J.EmbeddingLexicalJudge) -> None:
    pairs = J.halueval_judge_pairs("calibration")[:40]
    judge = J.EmbeddingLexicalJudge(default_judge.embedder)
    judge.calibrate([p.claim for p in pairs], [p.context for p in pairs], [p.unsupported for p in pairs])
    assert len(judge.weights) == len(J.FEATURES) and 0.0 < judge.threshold < 1.0
    assert J.judge_accuracy(judge, pairs)["balanced_accuracy"] > 0.5


def test_halueval_pairs_are_balanced_held_out_and_length_matched() -> None:
    cal, held = J.halueval_judge_pairs("calibration"), J.halueval_judge_pairs("heldout")
    assert len(held) > 700 and sum(p.unsupported for p in held) * 2 == len(held)
    assert not {p.claim for p in cal} & {p.claim for p in held}
    right = [len(p.claim.split()) for p in held if not p.unsupported]
    wrong = [len(p.claim.split()) for p in held if p.unsupported]
    assert abs(np.mean(wrong) - np.mean(right)) < 2.0  # length-matched: no length cue to learn
    assert held[0].claim.count("?") == 1 and held[0].claim.endswith(".")


def test_judge_accuracy_cli_for_the_lexical_judge() -> None:
    res = CliRunner().invoke(app, ["eval", "judge-accuracy", "--judge", "lexical", "--limit", "40", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    r = out["judges"]["lexical"]
    assert out["pairs"] == 40 and r["n"] == 40
    # the lexical judge is deterministic: on these 40 pairs it flags 9 claims, 6 of them rightly (20 unsupported)
    assert r["balanced_accuracy"] == pytest.approx(0.575) and r["threshold"] == 0.5
    assert r["precision"] == pytest.approx(6 / 9) and r["recall"] == pytest.approx(6 / 20)
    # the copied-number part is reported apart: the lexical judge calls every copied neighbour supported
    copied = out["parts"]["copied-number"]
    assert copied["pairs"] == 40 and copied["judges"]["lexical"]["balanced_accuracy"] == pytest.approx(0.5)
    assert out["parts"]["halueval"]["judges"] == out["judges"]
    only = CliRunner().invoke(app, ["eval", "judge-accuracy", "--judge", "lexical", "--part", "copied-number"])
    assert only.exit_code == 0 and "copied-number" in only.output and "HaluEval" not in only.output
    bad = CliRunner().invoke(app, ["eval", "judge-accuracy", "--part", "nope"])
    assert bad.exit_code == 2 and "copied-number" in bad.output


def test_unknown_or_missing_judges_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown judge"):
        J.make_judge("oracle")
    with pytest.raises(ModelError, match="no such directory"):
        J.make_judge(f"cross-encoder:{tmp_path / 'nope'}")
    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="train-judge"):
        J.make_judge("trained")


@pytest.mark.slow
def test_load_smoke_cross_encoder_judge_from_a_local_model(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    from ragkit.assets import resolve_embedder

    # a 1-logit cross-encoder on the bundled MiniLM weights (untrained head): the loading path of train-judge
    CrossEncoder(str(resolve_embedder("all-MiniLM-L6-v2")), num_labels=1, local_files_only=True).save_pretrained(
        str(tmp_path / "ce")
    )
    judge = J.make_judge(f"cross-encoder:{tmp_path / 'ce'}")
    probs = judge.support(["Keys are rotated every 90 days.", "Cats fly."], [CONTEXT, CONTEXT])
    assert len(probs) == 2 and all(0.0 <= p <= 1.0 for p in probs)


def test_llm_judge_reads_yes_no_and_anything_else() -> None:
    replies = iter([" Yes.", "no", "Maybe"])
    gen = ScriptedGenerator(lambda prompt: next(replies))
    judge = J.LLMJudge(gen)
    assert judge.support(["a", "b", "c"], ["ctx one", "ctx two", "ctx three"]) == [1.0, 0.0, 0.5]
    assert "Claim: a" in gen.prompts[0] and "ctx one" in gen.prompts[0]


class ScriptedScorer(ScriptedGenerator):
    """A generator that reads its own P(yes): `p` maps a claim to its probability and every chat is kept."""

    def __init__(self, p: dict[str, float]) -> None:
        super().__init__(["unused"])
        self.p, self.read = p, []  # type: ignore[var-annotated]

    def yes_probability(self, messages) -> float:  # type: ignore[no-untyped-def]
        self.read.append(messages)
        return next(v for claim, v in self.p.items() if claim in messages[-1]["content"])


def test_llm_judge_takes_the_probability_of_yes_where_the_backend_reads_it() -> None:
    """With a YesNoScorer the support is P(yes), asked as `ask` reads an answer when the claim has a question
    and on its own when it has none; the context is cut at max_context_chars, and nothing is generated."""
    gen = ScriptedScorer({"every 90 days": 0.83, "every 30 days": 0.12})
    judge = J.LLMJudge(gen, max_context_chars=40)
    ctx = CONTEXT + " " + "x" * 100
    got = judge.support(
        ["Keys rotate every 90 days.", "Keys rotate every 30 days."], [ctx, ctx], ["How often are keys rotated?", ""]
    )
    assert got == [0.83, 0.12] and judge.threshold == 0.5 and gen.prompts == []
    first, second = (chat[-1]["content"] for chat in gen.read)
    assert "Question: How often are keys rotated?" in first and "Proposed answer: Keys rotate every 90 days." in first
    assert "Question:" not in second and "Claim: Keys rotate every 30 days." in second
    assert ctx[:40] in first and ctx[:41] not in first
    assert gen.read[0][0]["role"] == "system"


@pytest.mark.slow
def test_llm_judge_through_the_real_qwen_reads_a_changed_number_lower() -> None:
    """The real Qwen 0.5B as an LLM judge (the 1.5B one, measured in docs/benchmarks.md, is too large for CI):
    the context's own figure is supported more than the same sentence with another figure."""
    from ragkit.assets import GENERATORS, is_installed

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    judge = J.make_judge("llm:Qwen2.5-Coder-0.5B-Instruct")
    context = "Production API keys must be rotated every 90 days. Staging keys never expire."
    right, wrong = judge.support(
        ["Production API keys must be rotated every 90 days.", "Production API keys must be rotated every 7 days."],
        [context, context],
        ["How often must production API keys be rotated?"] * 2,
    )
    # only the order: the 0.5B model reads even right answers below 0.5 (its own scale, "Eighth round")
    assert 0.0 <= wrong < right <= 1.0


@pytest.mark.slow
def test_load_smoke_train_judge_a_few_steps_then_load_it(tmp_path: Path) -> None:
    from ragkit.evals.train_judge import train_judge, training_pairs

    pairs = training_pairs(extra_items=8)
    assert sum(p.unsupported for p in pairs) * 2 == len(pairs)  # balanced labels
    result = train_judge(pairs[:8], out=tmp_path / "judge", batch_size=4, max_steps=2, max_length=96)
    assert result.steps == 2 and result.first_loss > 0 and (tmp_path / "judge" / "ragkit_judge.json").exists()
    judge = J.make_judge(f"cross-encoder:{tmp_path / 'judge'}")
    probs = judge.support(["Keys are rotated every 90 days."], [CONTEXT])
    assert 0.0 <= probs[0] <= 1.0


def test_report_caveat_names_the_measured_llm_judge_by_its_model() -> None:
    """Reports name an LLM judge "llm:<model>": the measured one gets its figure, any other is sent to measure."""
    from ragkit.evals.report import judge_caveat

    assert "balanced accuracy is 0.63" in judge_caveat("llm:Qwen2.5-Coder-1.5B-Instruct")
    assert judge_caveat("llm:SmolLM2-135M-Instruct").startswith("Measure this judge with `ragkit eval judge-accuracy")
