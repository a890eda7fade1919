"""The optional llama.cpp backend with the bundled SmolLM2 GGUF: answers through KnowledgeBase.ask and the CLI,
streaming, the stop rule, token counts, JSON Schema grammar, and the same greedy answer as transformers.

llama-cpp-python compiles for ~17 minutes, so CI does not install it: the tests that run llama.cpp are skipped
when it is missing; the error a user gets without it is tested either way."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

import ragkit
from ragkit.cli.app import app
from ragkit.errors import DependencyError
from ragkit.generation import build_generator

QUESTION = "How often must production API keys be rotated?"
needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (pip install 'ragkit[llamacpp]'; it compiles for ~17 minutes)",
)


def test_without_llama_cpp_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what an install without the extra sees: ImportError
    with pytest.raises(DependencyError, match=r"ragkit\[llamacpp\]"):
        build_generator("llamacpp", "SmolLM2-135M-Instruct")


@pytest.mark.slow
def test_without_llama_cpp_the_cli_names_the_extra(built_kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    result = CliRunner().invoke(
        app, ["ask", QUESTION, "--kb", str(built_kb), "--generator", "llamacpp:SmolLM2-135M-Instruct"]
    )
    assert result.exit_code == 1 and "ragkit[llamacpp]" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def llamacpp_gpt():  # type: ignore[no-untyped-def]
    from ragkit.generation.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator("SmolLM2-135M-Instruct", threads=2)


@needs_llamacpp
@pytest.mark.slow
def test_ask_through_the_knowledge_base_streams_and_cites(built_kb: Path) -> None:
    pieces: list[str] = []
    cfg = {"generator.backend": "llamacpp", "generator.max_new_tokens": 40}
    with ragkit.open(built_kb, create=False, **cfg) as kb:
        ans = kb.ask(QUESTION, on_text=pieces.append)
    assert ans.generator == "llamacpp:SmolLM2-135M-Instruct"
    assert "90 days" in ans.text and not ans.abstained
    assert {Path(c.uri).name for c in ans.citations} == {"key-rotation.md"}
    assert len(pieces) > 3 and "".join(pieces).strip() == ans.raw_text  # streamed piece by piece, nothing lost
    assert 0 < ans.completion_tokens <= 40 and ans.prompt_tokens > 100


@needs_llamacpp
@pytest.mark.slow
def test_cli_ask_with_the_llamacpp_generator_json(built_kb: Path) -> None:
    args = ["ask", QUESTION, "--kb", str(built_kb), "--generator", "llamacpp:SmolLM2-135M-Instruct"]
    result = CliRunner().invoke(app, [*args, "--json", "--max-tokens", "40"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "90 days" in data["text"] and data["generator"] == "llamacpp:SmolLM2-135M-Instruct"
    assert {Path(c["uri"]).name for c in data["citations"]} == {"key-rotation.md"}


@needs_llamacpp
@pytest.mark.slow
def test_stop_rule_token_limit_and_counts(llamacpp_gpt) -> None:  # type: ignore[no-untyped-def]
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    full = llamacpp_gpt.generate(msgs, 40)
    assert full.finish == "stop" and "Paris" in full.text
    assert full.prompt_tokens == llamacpp_gpt.count_prompt_tokens(msgs)
    stopped = llamacpp_gpt.generate(msgs, 40, stop=lambda text: len(text) > 5)
    assert stopped.finish == "rule" and 5 < len(stopped.text) < len(full.text)
    cut = llamacpp_gpt.generate(msgs, 3)
    assert cut.finish == "length" and cut.completion_tokens == 3
    assert llamacpp_gpt.context_window == 2048  # the config's window, under SmolLM2's trained 8192


@needs_llamacpp
@pytest.mark.slow
def test_same_prompt_tokens_and_greedy_answer_as_transformers(llamacpp_gpt, bundled_gpt) -> None:  # type: ignore[no-untyped-def]
    from ragkit.answering import AnswerOptions, packed_prompt
    from ragkit.testing import make_hit

    text = "Production API keys must be rotated every 90 days by the security team."
    hit = make_hit(1, text, "/docs/keys.md", score=0.9, ord=0, token_count=20)
    msgs = packed_prompt(QUESTION, [hit], llamacpp_gpt, AnswerOptions(max_new_tokens=40)).messages
    assert llamacpp_gpt.prompt_ids(msgs) == bundled_gpt.prompt_ids(msgs)  # same chat template, same tokenizer
    ours, theirs = llamacpp_gpt.generate(msgs, 40), bundled_gpt.generate(msgs, 40)
    assert ours.text == theirs.text and "90 days" in ours.text


@needs_llamacpp
@pytest.mark.slow
def test_json_schema_becomes_a_grammar(llamacpp_gpt) -> None:  # type: ignore[no-untyped-def]
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 60}, "days": {"type": "integer"}},
        "required": ["answer", "days"],
    }
    msgs = [{"role": "user", "content": "Production API keys are rotated every 90 days. How often? Answer in JSON."}]
    out = llamacpp_gpt.generate(msgs, 80, schema=schema)
    jsonschema.validate(json.loads(out.text), schema)
