"""A generator too big for the free memory is refused with a clear error before it loads: on a small machine
the kernel would otherwise kill the process mid-load, with no message (Qwen2.5-Coder-1.5B takes ~7 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkit.errors import ModelError
from ragkit.generation import hf


def test_too_little_memory_is_refused_with_what_it_needs() -> None:
    with pytest.raises(ModelError, match=r"needs about 7\.1 GB of memory on the CPU and 2\.0 GB is free") as info:
        hf.check_memory(7_100_000_000, "Qwen2.5-Coder-1.5B-Instruct", available=2_000_000_000)
    assert "ragkit models" in str(info.value) and "--generator" in str(info.value)
    hf.check_memory(7_100_000_000, "big", available=6_000_000_000)  # above the floor: the load may go ahead
    hf.check_memory(7_100_000_000, "big", available=None)  # unknown (no /proc/meminfo): no guess


def test_what_a_model_needs_is_read_from_its_files(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "tokenizer.json").write_bytes(b"y" * 5000)  # not weights
    assert hf.checkpoint_bytes(tmp_path) == 1000
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf file")
    assert hf.gguf_fp32_bytes(tmp_path / "broken.gguf") == 0  # unreadable: loading it will say why
    free = hf.available_memory()
    assert free is None or free > 0


@pytest.mark.slow
def test_the_bundled_generator_is_refused_before_it_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf, "available_memory", lambda: 1_000_000)
    with pytest.raises(ModelError, match="SmolLM2-135M-Instruct needs about 0.5 GB"):
        hf.TransformersGenerator("SmolLM2-135M-Instruct", device="cpu")


def test_a_gguf_is_hashed_once_per_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The converted checkpoint is found by the GGUF's sha256; the digest is remembered per path, size and
    mtime, so a load does not hash a 1.1 GB file again (2-3 s of every ask)."""
    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[Path] = []
    real = hf._sha256
    monkeypatch.setattr(hf, "_sha256", lambda p: calls.append(p) or real(p))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"weights v1")
    first = hf.gguf_digest(gguf)
    assert hf.gguf_digest(gguf) == first and len(calls) == 1
    gguf.write_bytes(b"weights v2, longer")  # a new version of the file: hashed again
    assert hf.gguf_digest(gguf) != first and len(calls) == 2
    (tmp_path / "cache" / "generators" / "digests.json").write_text("{not json", encoding="utf-8")
    assert hf.gguf_digest(gguf) == real(gguf)  # a damaged memo is only a cache
