"""Ingest throughput: ragkit's whole pipeline vs raw SentenceTransformer.encode on the same chunk texts.

    python bench/ingest.py [--repeats 3] [--chars 2000000]

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
    args = parser.parse_args()

    import torch

    import ragkit
    from corpus import build
    from ragkit.chunking import chunk_document
    from ragkit.connectors.files import parse_file

    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp) / "corpus", max_chars=args.chars)
        chars = sum(len(f.read_text(encoding="utf-8")) for f in files)
        warm = ragkit.open(Path(tmp) / "warm")
        emb = warm.embedder
        emb.embed(["warm up"] * 8)
        t = time.perf_counter()
        n_parsed_chunks = 0
        for f in files:
            doc = parse_file(f)
            n_parsed_chunks += len(chunk_document(doc, emb.count_tokens, emb.token_offsets, 200, 32))
        parse_s = time.perf_counter() - t

        ragkit_rate, raw_rate, ratios, ingest_s = [], [], [], []
        for rep in range(args.repeats):
            kb = ragkit.open(Path(tmp) / f"kb{rep}")
            kb._embedder = emb  # the same loaded model for both sides; excluded: model load
            t = time.perf_counter()
            report = kb.ingest([Path(tmp) / "corpus"])
            secs = time.perf_counter() - t
            texts = [c.text for c in kb.store.chunks(kb.store.chunk_ids().tolist()).values()]
            kb.close()
            t = time.perf_counter()
            emb.model.encode(texts, batch_size=emb.batch_size, normalize_embeddings=True, convert_to_numpy=True)
            raw = time.perf_counter() - t
            ragkit_rate.append(report.chunks_added / secs)
            raw_rate.append(len(texts) / raw)
            ratios.append(ragkit_rate[-1] / raw_rate[-1])
            ingest_s.append(secs)
            print(f"repeat {rep}: {report.chunks_added} chunks; ragkit {ragkit_rate[-1]:.1f}/s, raw encode "
                  f"{raw_rate[-1]:.1f}/s, ratio {ratios[-1]:.3f}", flush=True)

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {emb.device}; corpus {len(files)} files, "
          f"~{chars / 1e6:.1f} M chars, {n_parsed_chunks} chunks")
    print("\n| measure | median |")
    print("| --- | --- |")
    print(f"| ragkit ingest, chunks/s | {statistics.median(ragkit_rate):.1f} |")
    print(f"| raw SentenceTransformer.encode, chunks/s | {statistics.median(raw_rate):.1f} |")
    print(f"| ratio ragkit / raw (median of per-repeat ratios) | {statistics.median(ratios):.3f} |")
    print(f"| parse + chunk alone, s (sequential, once) | {parse_s:.1f} |")
    print(f"| whole ingest, s | {statistics.median(ingest_s):.1f} |")


if __name__ == "__main__":
    main()
