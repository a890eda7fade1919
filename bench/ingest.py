"""Ingest throughput: ragkit's whole pipeline vs raw SentenceTransformer.encode on the same chunk texts.

    python bench/ingest.py [--repeats 3] [--chars 2000000] [--copies 1] [--json FILE]

Builds a real-text corpus (bench/corpus.py), then, --repeats times, interleaved: a full `kb.ingest` into a
fresh KB (parse, chunk, embed, SQL, FAISS) and a raw `encode` of exactly the chunk texts that ingest produced,
with the same loaded model and batch size. Reports medians of chunks/s and the median of the per-repeat
ratios (ragkit / raw), plus the share of ingest time spent parsing+chunking (measured separately).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chars", type=int, default=2_000_000)
    parser.add_argument("--copies", type=int, default=1, help="the corpus this many times over, lines marked")
    parser.add_argument("--json", type=Path, default=None, help="also write the medians here")
    parser.add_argument("--peers", action="store_true", help="also run LlamaIndex (bench/peers/setup.sh first)")
    parser.add_argument(
        "--probe-batch", type=int, default=0, help="also time a raw encode of the distinct texts at this batch size"
    )
    args = parser.parse_args()

    import torch
    from corpus import build

    import ragkit
    from ragkit.chunking import chunk_document
    from ragkit.connectors.files import parse_file
    from ragkit.ingest import parse_workers

    t_start = time.perf_counter()

    def mark(what: str) -> None:  # where the time goes, as it goes: a run cut off by a time limit still tells
        print(f"[{time.perf_counter() - t_start:7.1f} s] {what}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp) / "corpus", max_chars=args.chars, copies=args.copies)
        chars = sum(len(f.read_text(encoding="utf-8")) for f in files)
        mark(f"corpus written: {len(files)} files, {chars / 1e6:.1f} M chars")
        warm = ragkit.open(Path(tmp) / "warm")
        emb = warm.embedder
        emb.embed(["warm up"] * 8)
        device = emb.device
        mark(f"embedder loaded on {device}")
        t = time.perf_counter()
        n_parsed_chunks = 0
        for f in files[: len(files) // max(1, args.copies)]:  # one copy: the others parse alike
            doc = parse_file(f)
            n_parsed_chunks += len(chunk_document(doc, emb.count_tokens, emb.token_offsets, 200, 32))
        parse_s = (time.perf_counter() - t) * max(1, args.copies)
        n_parsed_chunks *= max(1, args.copies)
        mark(f"one copy parsed and chunked in one process: {parse_s / max(1, args.copies):.1f} s")

        ragkit_rate, raw_rate, ratios, ingest_s, overhead = [], [], [], [], []
        stages: list[dict] = []
        real_embed = emb.embed
        for rep in range(args.repeats):
            kb = ragkit.open(Path(tmp) / f"kb{rep}")
            kb.embedder = emb  # the same loaded model for both sides; excluded: model load
            busy = {"embed_s": 0.0, "write_s": 0.0, "embed_calls": 0}
            emb.embed = _timed(real_embed, busy, "embed_s", "embed_calls")  # type: ignore[method-assign]
            kb.store.write_documents = _timed(kb.store.write_documents, busy, "write_s")  # type: ignore[method-assign]
            t = time.perf_counter()
            last = [t]

            def progress(done: int, total: int, current: str) -> None:
                if time.perf_counter() - last[0] > 10:  # noqa: B023 - read within this repeat
                    last[0] = time.perf_counter()  # noqa: B023
                    mark(f"repeat {rep} (ragkit ingest): {done}/{total} files")  # noqa: B023

            report = kb.ingest([Path(tmp) / "corpus"], progress=progress)
            secs = time.perf_counter() - t
            emb.embed = real_embed  # type: ignore[method-assign]
            stages.append(busy)
            texts = [c.text for c in kb.store.chunks(kb.store.chunk_ids().tolist()).values()]
            kb.close()
            t = time.perf_counter()
            emb.model.encode(texts, batch_size=emb.batch_size, normalize_embeddings=True, convert_to_numpy=True)
            raw = time.perf_counter() - t
            # ragkit embeds each distinct chunk text once; encoding just those isolates the pipeline's overhead
            unique = list(dict.fromkeys(texts))
            t = time.perf_counter()
            emb.model.encode(unique, batch_size=emb.batch_size, normalize_embeddings=True, convert_to_numpy=True)
            raw_unique = time.perf_counter() - t
            overhead.append(raw_unique / secs)
            ragkit_rate.append(report.chunks_added / secs)
            raw_rate.append(len(texts) / raw)
            ratios.append(ragkit_rate[-1] / raw_rate[-1])
            ingest_s.append(secs)
            print(
                f"repeat {rep}: busy seconds: embedding {busy['embed_s']:.1f} in {busy['embed_calls']} calls, "
                f"SQL+FAISS writes {busy['write_s']:.1f}; whole ingest {secs:.1f}",
                flush=True,
            )
            print(
                f"repeat {rep}: {report.chunks_added} chunks ({len(unique)} distinct); ragkit "
                f"{ragkit_rate[-1]:.1f}/s, raw encode {raw_rate[-1]:.1f}/s, ratio {ratios[-1]:.3f}; raw encode of "
                f"the distinct texts / ragkit time {overhead[-1]:.3f}",
                flush=True,
            )
        probe = None
        if args.probe_batch:
            t = time.perf_counter()
            emb.model.encode(unique, batch_size=args.probe_batch, normalize_embeddings=True, convert_to_numpy=True)
            probe = len(unique) / (time.perf_counter() - t)
            print(f"raw encode of the distinct texts at batch {args.probe_batch}: {probe:.1f} chunks/s", flush=True)
        peers = []
        if args.peers:
            warm.close()
            del emb, warm  # free the cores' caches for the peer process
            for chunk_size in (None, 200):
                peers.append(_run_llamaindex(Path(tmp) / "corpus", chunk_size))
                print("llama-index:", peers[-1], flush=True)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}; corpus {len(files)} files, "
        f"~{chars / 1e6:.1f} M chars, {n_parsed_chunks} chunks"
    )
    print("\n| measure | median |")
    print("| --- | --- |")
    print(f"| ragkit ingest, chunks/s | {statistics.median(ragkit_rate):.1f} |")
    print(f"| raw SentenceTransformer.encode, chunks/s | {statistics.median(raw_rate):.1f} |")
    print(f"| ratio ragkit / raw (median of per-repeat ratios) | {statistics.median(ratios):.3f} |")
    print(
        f"| raw encode of the distinct chunk texts / ragkit ingest time (pipeline efficiency) | "
        f"{statistics.median(overhead):.3f} |"
    )
    print(f"| parse + chunk alone, s (sequential, once; one copy times --copies) | {parse_s:.1f} |")
    print(f"| whole ingest, s | {statistics.median(ingest_s):.1f} |")
    print(f"| of which the embedder was busy, s | {statistics.median(b['embed_s'] for b in stages):.1f} |")
    write_s = statistics.median(b["write_s"] for b in stages)
    print(f"| of which SQL + FAISS writes (overlapping embedding), s | {write_s:.1f} |")
    print(f"| parser processes | {parse_workers(None, len(files))} |")
    if args.json:
        import json

        medians = {
            "device": device,
            "chunks": n_parsed_chunks,
            "ragkit_chunks_per_s": statistics.median(ragkit_rate),
            "raw_chunks_per_s": statistics.median(raw_rate),
            "ratio": statistics.median(ratios),
            "pipeline_efficiency": statistics.median(overhead),
            "parse_chunk_s_sequential": parse_s,
            "ingest_s": statistics.median(ingest_s),
            "embed_busy_s": statistics.median(b["embed_s"] for b in stages),
            "write_busy_s": statistics.median(b["write_s"] for b in stages),
            "embed_calls": statistics.median(b["embed_calls"] for b in stages),
            "batch_size": emb.batch_size,
            "parse_workers": parse_workers(None, len(files)),
            "probe_batch": args.probe_batch or None,
            "probe_raw_chunks_per_s": probe,
            "repeats": args.repeats,
        }
        args.json.write_text(json.dumps(medians, indent=1) + "\n", encoding="utf-8")
    for p in peers:
        print(
            f"| LlamaIndex (SentenceSplitter chunk_size={p['chunk_size']}): {p['chunks']} chunks, "
            f"{p['chunks_over_256_tokens']} over MiniLM's 256 tokens; chunks/s; ratio to raw encode | "
            f"{p['chunks_per_s']:.1f}; {p['ratio']:.3f} |"
        )


def _timed(fn, busy: dict, key: str, calls: str | None = None):  # type: ignore[no-untyped-def]
    """fn, adding its seconds to busy[key] (and 1 to busy[calls]) per call."""

    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            busy[key] += time.perf_counter() - t
            if calls:
                busy[calls] += 1

    return wrapper


def _run_llamaindex(corpus: Path, chunk_size: int | None) -> dict:
    import json
    import subprocess

    here = Path(__file__).resolve().parent / "peers"
    cmd = [str(here / ".venv" / "bin" / "python"), str(here / "llamaindex_ingest.py"), str(corpus)]
    if chunk_size:
        cmd += ["--chunk-size", str(chunk_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
