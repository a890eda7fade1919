"""bench/device/cublas12_shim.c, the cuBLAS 12 -> 13 forwarder the GPU check needs (bench/device/README.md).

No GPU is needed to check what can go wrong in it: each of FAISS's eight cuBLAS calls must reach cuBLAS 13
with every argument in place. A stand-in libcublas.so.13 records what it receives.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

SHIM = Path(__file__).resolve().parent.parent / "bench" / "device" / "cublas12_shim.c"
pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("readelf") is None, reason="needs gcc and readelf"
)

# the cuBLAS 13 stand-in: every function stores its arguments as integers and returns its own number
FAKE = r"""
static long long seen[32]; static int n_seen;
long long *fake_seen(int *n) { *n = n_seen; return seen; }
#define KEEP(x) seen[n_seen++] = (long long)(x)
int cublasCreate_v2(void **h) { n_seen = 0; KEEP(h); return 1; }
int cublasDestroy_v2(void *h) { n_seen = 0; KEEP(h); return 2; }
int cublasSetStream_v2(void *h, void *s) { n_seen = 0; KEEP(h); KEEP(s); return 3; }
int cublasGetMathMode(void *h, int *m) { n_seen = 0; KEEP(h); KEEP(m); return 4; }
int cublasSetMathMode(void *h, int m) { n_seen = 0; KEEP(h); KEEP(m); return 5; }
int cublasSgemmEx(void *h, int ta, int tb, int m, int n, int k, const float *al, const void *A, int At, int lda,
    const void *B, int Bt, int ldb, const float *be, void *C, int Ct, int ldc) {
  n_seen = 0; KEEP(h); KEEP(ta); KEEP(tb); KEEP(m); KEEP(n); KEEP(k); KEEP(al); KEEP(A); KEEP(At); KEEP(lda);
  KEEP(B); KEEP(Bt); KEEP(ldb); KEEP(be); KEEP(C); KEEP(Ct); KEEP(ldc); return 6; }
int cublasGemmEx(void *h, int ta, int tb, int m, int n, int k, const void *al, const void *A, int At, int lda,
    const void *B, int Bt, int ldb, const void *be, void *C, int Ct, int ldc, int ct, int algo) {
  n_seen = 0; KEEP(h); KEEP(ta); KEEP(tb); KEEP(m); KEEP(n); KEEP(k); KEEP(al); KEEP(A); KEEP(At); KEEP(lda);
  KEEP(B); KEEP(Bt); KEEP(ldb); KEEP(be); KEEP(C); KEEP(Ct); KEEP(ldc); KEEP(ct); KEEP(algo); return 7; }
int cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *al, const void *A,
    int At, int lda, long long sA, const void *B, int Bt, int ldb, long long sB, const void *be, void *C, int Ct,
    int ldc, long long sC, int count, int ct, int algo) {
  n_seen = 0; KEEP(h); KEEP(ta); KEEP(tb); KEEP(m); KEEP(n); KEEP(k); KEEP(al); KEEP(A); KEEP(At); KEEP(lda);
  KEEP(sA); KEEP(B); KEEP(Bt); KEEP(ldb); KEEP(sB); KEEP(be); KEEP(C); KEEP(Ct); KEEP(ldc); KEEP(sC);
  KEEP(count); KEEP(ct); KEEP(algo); return 8; }
"""

# (function, number of arguments, which of them are 64-bit strides), in the order of the fake's return codes
CALLS = [
    ("cublasCreate_v2", 1, ()),
    ("cublasDestroy_v2", 1, ()),
    ("cublasSetStream_v2", 2, ()),
    ("cublasGetMathMode", 2, ()),
    ("cublasSetMathMode", 2, ()),
    ("cublasSgemmEx", 17, ()),
    ("cublasGemmEx", 19, ()),
    ("cublasGemmStridedBatchedEx", 23, (10, 14, 19)),
]
POINTERS = {  # argument positions that are pointers in each signature
    "cublasCreate_v2": {0},
    "cublasDestroy_v2": {0},
    "cublasSetStream_v2": {0, 1},
    "cublasGetMathMode": {0, 1},
    "cublasSetMathMode": {0},
    "cublasSgemmEx": {0, 6, 7, 10, 13, 14},
    "cublasGemmEx": {0, 6, 7, 10, 13, 14},
    "cublasGemmStridedBatchedEx": {0, 6, 7, 11, 15, 16},
}


def _build(tmp: Path) -> tuple[Path, Path]:
    (tmp / "fake.c").write_text(FAKE, encoding="utf-8")
    (tmp / "shim.map").write_text("libcublas.so.12 { global: cublas*; local: *; };\n", encoding="utf-8")
    fake, shim = tmp / "libcublas.so.13", tmp / "libcublas.so.12"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(fake), str(tmp / "fake.c")], check=True)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-Wl,-soname,libcublas.so.12", f"-Wl,--version-script={tmp / 'shim.map'}"]
        + ["-o", str(shim), str(SHIM), "-ldl"],
        check=True,
    )
    return fake, shim


def test_every_call_reaches_cublas_13_with_its_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_path, shim_path = _build(tmp_path)
    monkeypatch.setenv("RAGKIT_CUBLAS13", str(fake_path))  # read by the shim on its first call
    shim, fake = ctypes.CDLL(str(shim_path)), ctypes.CDLL(str(fake_path))
    fake.fake_seen.restype = ctypes.POINTER(ctypes.c_longlong)
    versions = subprocess.run(["readelf", "--dyn-syms", "-W", str(shim_path)], capture_output=True, text=True)
    for code, (name, n_args, wide) in enumerate(CALLS, start=1):
        assert f"{name}@@libcublas.so.12" in versions.stdout  # the symbol version FAISS's wheel asks for
        pointers = POINTERS[name]
        values = [0x1000 * (i + 1) + code if i in pointers else 100 * code + i for i in range(n_args)]
        for i in wide:
            values[i] = (1 << 40) + i  # a stride beyond 32 bits survives
        args = [
            ctypes.c_void_p(v) if i in pointers else ctypes.c_longlong(v) if i in wide else ctypes.c_int(v)
            for i, v in enumerate(values)
        ]
        func = getattr(shim, name)
        func.restype = ctypes.c_int
        assert func(*args) == code
        n = ctypes.c_int()
        seen = fake.fake_seen(ctypes.byref(n))
        assert [seen[i] for i in range(n.value)] == values, name
