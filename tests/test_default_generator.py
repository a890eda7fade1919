"""Which bundled generator a new KB gets: the best one installed, recorded in its ragkit.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

import ragkit
from ragkit.assets import GENERATORS, PREFERRED_GENERATORS, default_generator, is_installed
from ragkit.opening import _with_default_generator

QWEN = "Qwen2.5-Coder-0.5B-Instruct"
SMOL = "SmolLM2-135M-Instruct"


def test_the_best_installed_generator_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGKIT_DEFAULT_GENERATOR", raising=False)
    assert PREFERRED_GENERATORS == (QWEN, SMOL) and is_installed(GENERATORS[SMOL])
    assert default_generator() == (QWEN if is_installed(GENERATORS[QWEN]) else SMOL)
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", "/models/my-gpt")
    assert default_generator() == "/models/my-gpt"


def test_a_named_generator_or_backend_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", QWEN)
    assert _with_default_generator({}) == {"generator.model": QWEN}
    assert _with_default_generator({"generator.model": SMOL}) == {"generator.model": SMOL}
    assert _with_default_generator({"generator": {"backend": "openai"}}) == {"generator": {"backend": "openai"}}
    assert _with_default_generator({"generator.max_new_tokens": 8})["generator.model"] == QWEN


@pytest.mark.slow
def test_a_new_kb_records_its_generator_and_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGKIT_DEFAULT_GENERATOR", raising=False)
    expected = QWEN if is_installed(GENERATORS[QWEN]) else SMOL
    with ragkit.open(tmp_path / "kb") as kb:
        assert kb.config.generator.model == expected
    assert f'model = "{expected}"' in (tmp_path / "kb" / "ragkit.toml").read_text()
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", "/elsewhere")  # a later default does not move an existing KB
    with ragkit.open(tmp_path / "kb", create=False) as kb:
        assert kb.config.generator.model == expected
