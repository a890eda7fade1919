"""generator.dtype: which torch dtype a generator runs in, and bf16 on the CPU through the real bundled GPT."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkit.assets import choose_dtype, cpu_has_bf16
from ragkit.config import load_config
from ragkit.errors import ConfigError, ModelError

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"


def test_bf16_units_are_read_from_the_cpu_flags() -> None:
    assert cpu_has_bf16(SAPPHIRE_RAPIDS)
    assert cpu_has_bf16("flags : avx2 avx512_bf16\n")  # AMD Zen 4: no AMX, bf16 dot products
    assert not cpu_has_bf16(SKYLAKE)  # AVX-512 without bf16: torch would emulate it
    assert not cpu_has_bf16("Features\t: fp asimd bf16\n")  # ARM: no x86 flags line, not claimed
    assert not cpu_has_bf16("")
    assert isinstance(cpu_has_bf16(), bool)  # this machine's /proc/cpuinfo, whatever it holds


def test_auto_is_bf16_on_the_gpu_and_fp32_on_the_cpu() -> None:
    assert choose_dtype("auto", "cuda") == "bfloat16"
    assert choose_dtype("auto", "cuda", cuda_bf16=False) == "float16"  # e.g. a V100 or T4
    assert choose_dtype("auto", "cpu") == "float32"
    assert choose_dtype("bfloat16", "cpu") == "bfloat16"  # asked for: honoured even without bf16 units
    assert choose_dtype("float32", "cuda") == "float32"


def test_auto_runs_only_the_measured_model_in_bf16_and_only_with_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """Qwen 1.5B passed the seventeenth round's rule in bf16; SmolLM2, Qwen 0.5B and a user's own model were not
    adopted or not measured, and without bf16 units bf16 is slower than fp32."""
    import ragkit.assets as assets

    assert choose_dtype("auto", "cpu", cpu_bf16=True) == "bfloat16"
    monkeypatch.setattr(assets, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert assets.auto_cpu_bf16("Qwen2.5-Coder-1.5B-Instruct")
    for other in ("Qwen2.5-Coder-0.5B-Instruct", "SmolLM2-135M-Instruct", "/models/my-own-llm"):
        assert not assets.auto_cpu_bf16(other)
    monkeypatch.setattr(assets, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert not assets.auto_cpu_bf16("Qwen2.5-Coder-1.5B-Instruct")


def test_fp16_on_the_cpu_is_refused_with_what_to_use() -> None:
    with pytest.raises(ModelError, match="'bfloat16'.*'float32'"):
        choose_dtype("float16", "cpu")
    with pytest.raises(ModelError, match="auto, float32, bfloat16 or float16"):
        choose_dtype("int8", "cpu")


def test_the_config_names_the_allowed_dtypes() -> None:
    assert load_config().generator.dtype == "auto"
    assert load_config(overrides={"generator.dtype": "bfloat16"}).generator.dtype == "bfloat16"
    with pytest.raises(ConfigError, match="generator.dtype"):
        load_config(overrides={"generator.dtype": "fp8"})


@pytest.mark.slow
def test_bf16_on_the_cpu_runs_a_bf16_copy_of_the_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled SmolLM2 GGUF is converted to a bf16 checkpoint of its own (half the fp32 copy's bytes), loaded
    in bf16, and answers; its token log-probabilities are real numbers the confidence check can use."""
    import torch

    from ragkit.answering import AnswerOptions, packed_prompt
    from ragkit.generation import hf
    from ragkit.types import Chunk, Hit

    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path / "cache"))
    gen = hf.TransformersGenerator("SmolLM2-135M-Instruct", device="cpu", dtype="bfloat16")
    assert gen.dtype == "bfloat16" and next(gen.model.parameters()).dtype == torch.bfloat16
    assert gen.base_model_dir.name.endswith("-bf16")
    fp32_bytes = hf.gguf_fp32_bytes(hf.resolve_generator("SmolLM2-135M-Instruct"))
    assert 0.45 < hf.checkpoint_bytes(gen.base_model_dir) / fp32_bytes < 0.55
    text = "Production API keys must be rotated every 90 days by the security team."
    hits = [Hit(Chunk(1, 1, "keys.md", 0, text, 0, len(text), 0), 1.0, 1)]
    msgs = packed_prompt("How often must production API keys be rotated?", hits, gen, AnswerOptions()).messages
    out = gen.generate(msgs, 24)
    assert "90" in out.text
    assert out.tokens and all(lp <= 0.0 and lp == lp for _, lp in out.tokens)  # log-probs, no NaN
