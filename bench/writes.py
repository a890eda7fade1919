"""Ingest's write stage alone: Store.write_documents (SQL, keyword index, FAISS) on parsed chunks, no embedding.

    python bench/writes.py [--chars 2000000] [--files-per-group 40] [--repeats 5]

Parses and chunks the bench corpus (bench/corpus.py) once, gives every chunk a random unit vector, then writes
all documents into a fresh KB in groups of --files-per-group files (one transaction each, as ingest does),
--repeats times. Prints each repeat's chunks/s and the median. With a GPU embedding thousands of chunks a
second, this stage, on ingest's main thread, is what the embedder has to be overlapped with.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=2_000_000)
    ap.add_argument("--files-per-group", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from corpus import build

    import ragkit
    from ragkit.chunking import chunk_document
    from ragkit.connectors.files import parse_file

    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp) / "corpus", max_chars=args.chars)
        with ragkit.open(Path(tmp) / "parse") as kb:
            emb = kb.embedder
            rng = np.random.default_rng(0)
            items = []
            for f in files:
                doc = parse_file(f)
                spans = chunk_document(doc, emb.count_tokens, emb.token_offsets, 200, 32)
                v = rng.standard_normal((len(spans), emb.dim)).astype(np.float32)
                items.append((doc, spans, v / np.linalg.norm(v, axis=1, keepdims=True)))
        chunks = sum(len(spans) for _, spans, _ in items)
        rates = []
        for rep in range(args.repeats):
            with ragkit.open(Path(tmp) / f"kb{rep}") as kb:
                store = kb.store
                t = time.perf_counter()
                for lo in range(0, len(items), args.files_per_group):
                    group = items[lo : lo + args.files_per_group]
                    if hasattr(store, "write_documents"):
                        store.write_documents(group)
                    else:  # ragkit before 2026-12-04: a transaction per document
                        for doc, spans, vectors in group:
                            store.write_document(doc, spans, vectors)
                rates.append(chunks / (time.perf_counter() - t))
            print(f"repeat {rep}: {chunks} chunks in {len(files)} files, {rates[-1]:.0f} chunks/s", flush=True)
    print(f"median: {statistics.median(rates):.0f} chunks/s written ({args.files_per_group} files per transaction)")


if __name__ == "__main__":
    main()
