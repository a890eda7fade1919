"""Whether this FAISS build can run on the GPU it sees, tried in a child process.

A faiss-gpu wheel without kernels for the GPU's architecture (faiss-gpu-cu12 1.14 on an H200, compute capability
9.0: "CUDA error 209 no kernel image is available") does not raise: FAISS's assertion aborts the whole process,
which no Python code can catch. So before `index.device = auto` picks the GPU, a tiny search runs in a child
process; if that dies, ragkit searches on the CPU and says why.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

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
