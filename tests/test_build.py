"""build.py is the one reader of the config: options built from the default config equal the options types'
own defaults (they drifted apart once: keyword_weight 1.0 vs 2.0, min_relevance 0.0 vs 0.35), overrides
reach the options, and `ask --generator/--model` specs become the right config overrides."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ragkit import build
from ragkit.answering import AnswerOptions
from ragkit.config import RagkitConfig
from ragkit.errors import UsageError
from ragkit.indexes.retriever import SearchOptions


def test_search_options_defaults_are_the_configs() -> None:
    built = build.search_options(RagkitConfig().retrieval)
    assert built == SearchOptions(k=RagkitConfig().retrieval.top_k)
    assert built.keyword_weight == 2.0 and built.k == 3


def test_answer_options_defaults_are_the_configs() -> None:
    built = build.answer_options(RagkitConfig())
    assert built == AnswerOptions()
    assert built.min_relevance == 0.40 and built.max_new_tokens == 160


def test_overrides_reach_the_options_and_none_keeps_the_config() -> None:
    cfg = RagkitConfig()
    o = build.search_options(cfg.retrieval, k=7, mode="dense", mmr=0.5, rerank=False)
    assert (o.k, o.mode, o.mmr_lambda, o.rerank, o.candidates) == (7, "dense", 0.5, False, 20)
    a = build.answer_options(cfg, max_new_tokens=None, strict=True, min_relevance=0.0)
    assert (a.max_new_tokens, a.strict, a.min_relevance) == (160, True, 0.0)
    other = cfg.model_copy(update={"embedder": cfg.embedder.model_copy(update={"model": "/my/embedder"})})
    assert build.answer_options(other).min_relevance == 0.0  # a cosine floor does not carry over
    for bad in (0, -2):  # `kb.search(q, k=0)` used to search with the configured k
        with pytest.raises(UsageError, match="k must be at least 1"):
            build.search_options(cfg.retrieval, k=bad)


def test_ingest_settings_copy_every_setting_once() -> None:
    cfg = RagkitConfig()
    s = build.ingest_settings(cfg, {"tenant": "acme", "a": "b"})
    assert (s.max_tokens, s.overlap, s.batch_chunks) == (cfg.chunking.max_tokens, cfg.chunking.overlap, None)
    assert s.max_file_bytes == int(cfg.ingest.max_file_mb * 1e6) and s.meta == (("a", "b"), ("tenant", "acme"))
    assert {f.name for f in dataclasses.fields(s)} >= {"parser", "json_field", "url_timeout_s", "parse_workers"}


def test_generator_specs_become_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = tmp_path / "kb"
    adapter = kb / "models" / "mine"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (adapter / "finetune.json").write_text(json.dumps({"base_model": "Qwen2.5-Coder-0.5B-Instruct"}), encoding="utf-8")
    assert build.generator_overrides(kb, "openai:http://127.0.0.1:8000/v1", None) == {
        "generator.backend": "openai",
        "generator.url": "http://127.0.0.1:8000/v1",
    }
    assert build.generator_overrides(kb, "llamacpp:/m.gguf", None)["generator.model"] == "/m.gguf"
    # an adapter runs on the base it was trained on, unless --generator names one
    assert build.generator_overrides(kb, None, "mine") == {
        "generator.adapter": "mine",
        "generator.backend": "transformers",
        "generator.model": "Qwen2.5-Coder-0.5B-Instruct",
    }
    assert build.generator_overrides(kb, "SmolLM2-135M-Instruct", "mine")["generator.model"] == "SmolLM2-135M-Instruct"
    # an adapter folder trained in another KB is one too, by a relative path as well (that was read under
    # kb/models/ and then taken for a generator model)
    monkeypatch.chdir(tmp_path)
    assert build.generator_overrides(tmp_path / "other-kb", None, "kb/models/mine") == {
        "generator.adapter": "kb/models/mine",
        "generator.backend": "transformers",
        "generator.model": "Qwen2.5-Coder-0.5B-Instruct",
    }
    # a name that is no adapter is a model name (an HTTP server's, say)
    assert build.generator_overrides(kb, None, "gpt-x") == {"generator.model": "gpt-x"}
