"""Scale-out on Ray: a simulated two-node cluster's ingest vs a single-process ingest into the same PostgreSQL.

    python bench/ray_ingest.py [--repeats 3] [--chars 500000] [--nodes 2] [--cpus-per-node 1]

Builds the real-text corpus of bench/ingest.py (bench/corpus.py), starts a PostgreSQL server (tests/pgserver.py)
and a `ray.cluster_utils.Cluster` of --nodes raylets with --cpus-per-node CPUs each (loopback only), then,
--repeats times, interleaved: a single-process `kb.ingest` (parse_workers=0) and a `runtime.backend = "ray"`
`kb.ingest`, each into a fresh database. Reports medians of end-to-end chunks/s and their ratio, the Ray run's
steady-state rate (from its first committed document to its last: actor start-up excluded), cluster start-up
time, peak summed RSS of the driver + every Ray process, and per-stage rates measured apart (parse+chunk on one
core, embed on one core, PostgreSQL writes, the FAISS build sequential vs in Ray shards) for the projections
in docs/benchmarks.md ("Scale-out on Ray").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback addresses (sandboxed machines)


class PeakRss:
    """Samples the summed RSS of this process and every Ray process (raylet, GCS, workers) every 0.2 s."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        total = self.psutil.Process().memory_info().rss
        for p in self.psutil.process_iter(["cmdline", "memory_info"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.pid != os.getpid() and ("ray::" in cmd or "/ray/" in cmd or "raylet" in cmd or "gcs_server" in cmd):
                total += p.info["memory_info"].rss if p.info["memory_info"] else 0
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a process ended between listing and reading
                self.peak = max(self.peak, self._total())
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _ingest(root: Path, url: str, corpus: Path, runtime: str) -> dict[str, Any]:
    import ragkit

    t0 = time.perf_counter()
    stamps: list[float] = []

    def progress(done: int, total: int, name: str) -> None:
        if name:
            stamps.append(time.perf_counter())

    with ragkit.open(root, database_url=url, **{"runtime.backend": runtime, "ingest.parse_workers": 0}) as kb:
        t_open = time.perf_counter()
        report = kb.ingest([corpus], progress=progress)
        secs = time.perf_counter() - t_open
    out = {"seconds": secs, "open_s": t_open - t0, "chunks": report.chunks_added, "rate": report.chunks_added / secs}
    if len(stamps) > 1:  # steady state: first committed document to the last (pipeline start-up excluded)
        # documents commit in groups; chunks per second over the span, scaled by the share of documents in it
        share = (len(stamps) - 1) / len(stamps)
        out["steady_rate"] = report.chunks_added * share / max(1e-9, stamps[-1] - stamps[0])
    return out


def _stages(corpus: Path, url: str) -> dict[str, float]:
    """Per-stage rates in this process (one torch thread, the cores a single actor gets here)."""
    import numpy as np
    import torch

    from ragkit.chunking import chunk_document
    from ragkit.connectors.files import discover, parse_file
    from ragkit.embedding import SentenceTransformerEmbedder
    from ragkit.indexes.engine import make_engine
    from ragkit.indexes.index_build import build_index, build_shard, merge_shards, split, to_bytes
    from ragkit.indexes.sql_store import SqlStore

    torch.set_num_threads(1)
    emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device="cpu")
    files = discover([corpus], (), ())[0]
    t = time.perf_counter()
    docs = [(f, parse_file(f)) for f in files]
    parsed = [(d, chunk_document(d, emb.count_tokens, emb.token_offsets, 200, 32)) for _, d in docs]
    parse_s = time.perf_counter() - t
    texts = [sp.text for _, spans in parsed for sp in spans]
    t = time.perf_counter()
    vectors = emb.embed(texts)
    embed_s = time.perf_counter() - t
    sql = SqlStore(make_engine(url))
    t = time.perf_counter()
    lo = 0
    for doc, spans in parsed:
        sql.replace_document(doc, spans, vectors[lo : lo + len(spans)])
        lo += len(spans)
    write_s = time.perf_counter() - t
    ids = sql.chunk_ids()
    t = time.perf_counter()
    build_index(sql, emb.dim, "Flat", "cpu", ids)
    faiss_seq_s = time.perf_counter() - t

    def fill(index: Any, ids: Any, sql: SqlStore) -> Any:
        trained = to_bytes(index)
        return merge_shards(trained, [build_shard(trained, part, sql) for part in split(ids, 2)], "cpu")

    t = time.perf_counter()
    build_index(sql, emb.dim, "Flat", "cpu", ids, fill)
    faiss_merge_s = time.perf_counter() - t
    n = len(texts)
    return {
        "chunks": n,
        "parse_chunks_per_s_1core": n / parse_s,
        "embed_chunks_per_s_1thread": n / embed_s,
        "write_chunks_per_s": n / write_s,
        "write_docs_per_s": len(parsed) / write_s,
        "faiss_flat_sequential_s": faiss_seq_s,
        "faiss_flat_2_shards_in_process_s": faiss_merge_s,
        "vector_bytes": float(np.asarray(vectors).nbytes / n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chars", type=int, default=500_000)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--stages-only", action="store_true", help="only the per-stage rates (no cluster)")
    args = parser.parse_args()

    from corpus import build
    from pgserver import PgServer, _AdminUrl, find_pg_bin

    bindir = find_pg_bin()
    if bindir is None:
        sys.exit("needs PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql")
    server = PgServer(bindir)
    server.start()
    admin = _AdminUrl(server.admin_url)
    results: dict[str, Any] = {"nodes": args.nodes, "cpus_per_node": args.cpus_per_node, "cores": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            files = build(corpus, max_chars=args.chars)
            results["files"] = len(files)
            if args.stages_only:
                url = admin.create_database()
                results["stages"] = _stages(corpus, url)
                print(json.dumps(results, indent=2))
                return
            with PeakRss() as rss:
                import ray
                from ray.cluster_utils import Cluster

                t = time.perf_counter()
                node = {"num_cpus": args.cpus_per_node, "object_store_memory": 200 * 2**20}
                node["node_ip_address"] = "127.0.0.1"  # loopback only
                cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
                for _ in range(args.nodes - 1):
                    cluster.add_node(**node)
                cluster.wait_for_nodes()
                ray.init(address=cluster.address, log_to_driver=False)
                results["cluster_start_s"] = time.perf_counter() - t
                print("cluster_start_s", results["cluster_start_s"], flush=True)
                local, on_ray = [], []
                try:
                    for rep in range(args.repeats):
                        for runtime, into in (("local", local), ("ray", on_ray)):
                            url = admin.create_database()
                            into.append(_ingest(Path(tmp) / f"kb-{runtime}-{rep}", url, corpus, runtime))
                            print(runtime, rep, json.dumps(into[-1]), flush=True)
                            admin.drop_database(url)
                finally:
                    ray.shutdown()
                    cluster.shutdown()
            results["peak_rss_mb"] = rss.peak / 2**20
            print("peak_rss_mb", results["peak_rss_mb"], flush=True)
            results["local"] = local
            results["ray"] = on_ray
            results["chunks"] = local[0]["chunks"]
            results["local_rate_median"] = statistics.median(r["rate"] for r in local)
            results["ray_rate_median"] = statistics.median(r["rate"] for r in on_ray)
            pairs = zip(on_ray, local, strict=True)
            results["ratio_median"] = statistics.median(r["rate"] / lr["rate"] for r, lr in pairs)
            steady = [r["steady_rate"] for r in on_ray if "steady_rate" in r]
            if steady:
                results["ray_steady_rate_median"] = statistics.median(steady)
                results["steady_ratio_median"] = results["ray_steady_rate_median"] / results["local_rate_median"]
            url = admin.create_database()
            results["stages"] = _stages(corpus, url)
            admin.drop_database(url)
    finally:
        server.stop()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
