"""The FAISS GPU probe: a build that aborts on this GPU is found in a child process, and `auto` picks the CPU."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run

from ragkit.errors import ConfigError
from ragkit.indexes import faiss_index, gpu_probe
from ragkit.indexes.gpu_probe import faiss_gpu_problem

# what faiss-gpu-cu12 1.14 did on an H200 (docs/benchmarks.md "GPU"): an assertion, then abort()
ABORTS = (
    "import os, sys; print(\"Faiss assertion 'err__ == cudaSuccess' failed ... details: CUDA error 209 no kernel "
    'image is available for execution on the device", file=sys.stderr, flush=True); os.abort()'
)


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gpu_probe, "gpu_count", lambda: 1)
    faiss_gpu_problem.cache_clear()
    yield
    faiss_gpu_problem.cache_clear()


def test_a_build_that_aborts_on_the_gpu_leaves_auto_on_the_cpu(one_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKIT_FAISS_GPU_PROBE", ABORTS)
    index = faiss_index.FaissIndex.create(8, "Flat", device="auto")
    assert index.device == "cpu"
    assert index.gpu_problem is not None and "no kernel image" in index.gpu_problem
    with pytest.raises(ConfigError, match="cannot use the GPU.*no kernel image"):
        faiss_index.FaissIndex.create(8, "Flat", device="cuda")


def test_a_probe_that_runs_clears_the_gpu(one_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKIT_FAISS_GPU_PROBE", "import faiss")
    assert faiss_gpu_problem() is None


def test_no_probe_runs_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_probe, "gpu_count", lambda: 0)
    monkeypatch.setenv("RAGKIT_FAISS_GPU_PROBE", "raise SystemExit(3)")
    faiss_gpu_problem.cache_clear()
    index = faiss_index.FaissIndex.create(8, "Flat", device="auto")
    assert index.device == "cpu" and index.gpu_problem is None
    assert faiss_gpu_problem.cache_info().misses == 0  # never called


def test_kb_info_says_where_searches_run_and_why_not_on_the_gpu(
    tmp_path: Path, one_gpu: None, hashed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragkit

    with ragkit.open(tmp_path / "kb"):
        pass
    monkeypatch.setenv("RAGKIT_FAISS_GPU_PROBE", ABORTS)
    result = run("info", "--kb", tmp_path / "kb")
    assert result.exit_code == 0, result.output
    assert "searches on the CPU: FAISS cannot use the GPU here" in " ".join(result.output.split())
    stats = json.loads(run("info", "--kb", tmp_path / "kb", "--json").output)
    assert stats["index_device"] == "cpu" and "no kernel image" in stats["index_gpu_problem"]
