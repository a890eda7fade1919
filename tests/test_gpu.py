"""GPU paths: FAISS on the GPU, fp16 embedding and bf16/fp16 generation on CUDA. Skipped without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to torch)"),
]


def faiss_gpu_or_skip() -> None:
    from ragkit.indexes.faiss_index import gpu_count
    from ragkit.indexes.gpu_probe import faiss_gpu_problem

    if gpu_count() == 0:
        pytest.skip("FAISS has no GPU support here: install ragkit[gpu] (faiss-gpu) instead of ragkit[cpu]")
    if (problem := faiss_gpu_problem()) is not None:
        pytest.skip(f"this FAISS build cannot run on this GPU: {problem}")


def test_faiss_gpu_index_matches_cpu() -> None:
    from ragkit.indexes.faiss_index import FaissIndex

    faiss_gpu_or_skip()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(10, 2010, dtype=np.int64)
    cpu, gpu = FaissIndex.create(64, "Flat", device="cpu"), FaissIndex.create(64, "Flat", device="auto")
    assert gpu.device == "cuda"  # index.device = "auto" chose the GPU by itself
    for index in (cpu, gpu):
        index.add(ids, x)
        index.remove(ids[:5])
    _, cpu_ids = cpu.search(x[:50], 10)
    _, gpu_ids = gpu.search(x[:50], 10)
    assert (cpu_ids == gpu_ids).mean() > 0.99


@pytest.mark.slow
def test_kb_on_cuda_answers_with_citations(tmp_path: Path) -> None:
    """The sample corpus's plain formats (no DOCX: a GPU machine without unstructured must run this too)."""
    import shutil

    import ragkit

    corpus = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("on-call.txt", "data-retention.html", "security/key-rotation.md"):
        shutil.copy(corpus / name, docs / Path(name).name)
    overrides = {"embedder.device": "auto", "generator.device": "auto", "generator.max_new_tokens": 48}
    with ragkit.open(tmp_path / "kb", **overrides) as kb:
        kb.ingest([docs])
        assert kb.embedder.device == "cuda"  # "auto" chose the GPU by itself
        assert kb.embedder.model.dtype == torch.float16  # type: ignore[attr-defined]
        ans = kb.ask("When is the on-call handover meeting held?")
        generator = kb.generator
        assert getattr(generator, "device", None) == "cuda"
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        assert generator.model.dtype == half  # type: ignore[attr-defined]
    assert {Path(c.uri).name for c in ans.citations} == {"on-call.txt"}
    assert not ans.abstained and "Monday" in ans.text


@pytest.mark.parametrize("spec", ["IVF16,Flat", "HNSW16"])
def test_faiss_gpu_ivf_hnsw_and_filters(spec: str) -> None:
    """IVF runs on the GPU with nprobe; HNSW has no GPU version and stays on the CPU; filters use the CPU copy."""
    from ragkit.indexes.faiss_index import FaissIndex

    faiss_gpu_or_skip()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(4000, dtype=np.int64) * 3
    index = FaissIndex.create(32, spec, device="cuda")
    index.train(x)
    index.add(ids, x)
    _, got = index.search(x[:20], 5, nprobe=16, ef_search=64)
    assert (got[:, 0] == ids[:20]).mean() > 0.95
    allowed = ids[::7]
    _, got = index.search(x[:20], 5, allowed=allowed, nprobe=16)
    assert set(got[got >= 0].tolist()) <= set(allowed.tolist())
