/* libcublas.so.12 for faiss-gpu-cu12 on a machine that has only cuBLAS 13 (see bench/device/README.md).
 * FAISS calls eight cuBLAS functions, all with the same C signatures in cuBLAS 12 and 13; each one here is
 * looked up in libcublas.so.13 on first use and called through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static void *lib13(void) {
    static void *h;
    if (!h) {
        const char *path = getenv("RAGKIT_CUBLAS13");
        h = dlopen(path ? path : "libcublas.so.13", RTLD_NOW | RTLD_GLOBAL);
        if (!h) { fprintf(stderr, "cublas12 shim: %s\n", dlerror()); abort(); }
    }
    return h;
}
static void *sym(const char *name) {
    void *f = dlsym(lib13(), name);
    if (!f) { fprintf(stderr, "cublas12 shim: no %s in cuBLAS 13\n", name); abort(); }
    return f;
}
#define FWD(ret, name, params, args) \
    ret name params { static ret (*f) params; if (!f) f = (ret (*) params) sym(#name); return f args; }

typedef int st; typedef void *h_t;
FWD(st, cublasCreate_v2, (h_t *h), (h))
FWD(st, cublasDestroy_v2, (h_t h), (h))
FWD(st, cublasSetStream_v2, (h_t h, void *s), (h, s))
FWD(st, cublasGetMathMode, (h_t h, int *m), (h, m))
FWD(st, cublasSetMathMode, (h_t h, int m), (h, m))
FWD(st, cublasSgemmEx, (h_t h, int ta, int tb, int m, int n, int k, const float *alpha, const void *A, int Atype,
    int lda, const void *B, int Btype, int ldb, const float *beta, void *C, int Ctype, int ldc),
    (h, ta, tb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc))
FWD(st, cublasGemmEx, (h_t h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int Atype,
    int lda, const void *B, int Btype, int ldb, const void *beta, void *C, int Ctype, int ldc, int ctype, int algo),
    (h, ta, tb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, ctype, algo))
FWD(st, cublasGemmStridedBatchedEx, (h_t h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A,
    int Atype, int lda, long long sA, const void *B, int Btype, int ldb, long long sB, const void *beta, void *C,
    int Ctype, int ldc, long long sC, int count, int ctype, int algo),
    (h, ta, tb, m, n, k, alpha, A, Atype, lda, sA, B, Btype, ldb, sB, beta, C, Ctype, ldc, sC, count, ctype, algo))
