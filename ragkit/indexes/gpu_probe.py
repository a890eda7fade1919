"""Whether this FAISS build can run on the GPU it sees, tried in a child process.

A faiss-gpu wheel without kernels for the GPU's architecture (faiss-gpu-cu12 1.14 on an H200, compute capability
9.0: "CUDA error 209 no kernel image is available") does not raise: FAISS's assertion aborts the whole process,
which no Python code can catch. So before `index.device = auto` picks the GPU, a tiny search runs in a child
process; if that dies, ragkit searches on the CPU and says why. FAISS's import and GPU count live here too, so
`faiss_index` (which imports this module) is the only user of the rest of FAISS.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from typing import Any

from ragkit.errors import ConfigError, DependencyError


def import_faiss() -> Any:
    """Import faiss lazily, with an error that names the extras that provide it."""
    try:
        import faiss
    except ImportError as exc:
        raise DependencyError(
            "FAISS is not installed: pip install 'ragkit[cpu]' (or 'ragkit[gpu]' on an NVIDIA machine; never both)"
        ) from exc
    return faiss


def gpu_count() -> int:
    """GPUs FAISS can use: 0 on faiss-cpu, and on faiss-gpu without a visible GPU."""
    faiss = import_faiss()
    return int(getattr(faiss, "get_num_gpus", lambda: 0)())


_PROBE = """
import numpy as np, faiss
x = np.random.default_rng(0).random((64, 8), dtype=np.float32)
res = faiss.StandardGpuResources()
index = faiss.index_cpu_to_gpu(res, 0, faiss.IndexFlatIP(8))
index.add(x)
assert index.search(x[:2], 1)[1][:, 0].tolist() == [0, 1]
"""
PROBE_TIMEOUT_S = 180  # the driver may compile the kernels it uses from PTX first


@functools.cache
def faiss_gpu_problem() -> str | None:
    """None if a GPU search runs in a child process, else the reason it does not (its last line of output).

    Called only where FAISS reports a GPU; cached for the process (seconds, once)."""
    code = os.environ.get("RAGKIT_FAISS_GPU_PROBE", _PROBE)  # a test sets a probe that fails as a bad build does
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"a test search on the GPU took over {PROBE_TIMEOUT_S} s"
    except OSError as exc:
        return f"could not start a test search: {exc}"
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    detail = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
    return f"a test search on the GPU failed (exit {done.returncode}): {detail.strip()[:300]}"


def resolve_device(device: str) -> tuple[str, str | None]:
    """index.device -> ("cuda" | "cpu", why `auto` stayed on the CPU although FAISS sees a GPU, else None).

    Raises ConfigError for "cuda" where FAISS sees no GPU or cannot run on it."""
    if device == "cuda" and gpu_count() == 0:
        raise ConfigError("index.device is 'cuda' but FAISS sees no GPU (is faiss-gpu installed?)")
    if device not in ("auto", "cuda") or gpu_count() == 0:
        return "cpu", None
    problem = faiss_gpu_problem()
    if problem is not None and device == "cuda":
        raise ConfigError(f"index.device is 'cuda' but this FAISS build cannot use the GPU: {problem}")
    return ("cuda", None) if problem is None else ("cpu", problem)


def device_report(device: str) -> dict[str, Any]:
    """{"index_device": where searches run, "index_gpu_problem": why not on the GPU, or None}."""
    try:
        where, problem = resolve_device(device)
    except ConfigError as exc:
        where, problem = device, str(exc)
    return {"index_device": where, "index_gpu_problem": problem}
