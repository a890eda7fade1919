"""Training step cost: one padded pass per batch against one pass per example (gradients summed), on the CPU.

    python bench/finetune_step.py --kb /tmp/ftbench_s/stdlib/kb --examples 16 --repeats 3

Builds real examples from the KB as `ragkit finetune` does (sentence-template questions, `ask`'s prompts),
then trains the same steps with `--micro-batch 4` (the whole batch in one left-padded pass) and 1 (ragkit's
CPU default), each in its own process so peak memory is that mode's alone. Modes alternate within each
repeat; prints one JSON line per run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path


def _one(kb_dir: Path, n: int, micro: int, batch: int, threads: int) -> dict:
    import random

    import torch
    from transformers import AutoModelForCausalLM

    import ragkit
    from ragkit.finetune import (
        ExampleBuilder,
        FinetuneOptions,
        template_pairs,
        tokenize_example,
        train_lora,
    )

    torch.set_num_threads(threads)
    with ragkit.open(kb_dir, create=False) as kb:
        ids = sorted(kb.store.chunk_ids())
        chunks = kb.store.chunks(random.Random(0).sample(ids, min(len(ids), 4 * n)))
        builder = ExampleBuilder(kb)
        data = []
        for chunk in chunks.values():
            for pair in template_pairs(chunk, 1):
                ex = builder.positive(pair)
                if ex is not None and len(data) < n:
                    data.append(tokenize_example(kb.generator, ex))
        pad = kb.generator.tokenizer.pad_token_id or 0
        base = AutoModelForCausalLM.from_pretrained(
            str(kb.generator.base_model_dir), dtype=torch.float32, local_files_only=True
        )
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    opts = FinetuneOptions(steps=len(data) // batch, batch_size=batch, micro_batch=micro, seed=0)
    _, log = train_lora(base, data, opts, pad_id=pad, device="cpu")
    lengths = [len(i) for i, _ in data]
    return {
        "micro_batch": micro,
        "batch_size": batch,
        "examples": log.examples,
        "mean_tokens": round(statistics.mean(lengths)),
        "max_tokens": max(lengths),
        "seconds": log.seconds,
        "examples_per_s": round(log.examples / log.seconds, 3),
        "peak_rss_gb_before_training": round(rss0 / 2**20, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "first_loss": log.losses[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, required=True)
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child: run this micro-batch
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one is not None:
        print(json.dumps(_one(args.kb, args.examples, args.one, args.batch_size, args.threads)))
        return
    rows: list[dict] = []
    for _ in range(args.repeats):
        for micro in (args.batch_size, 1):
            cmd = [sys.executable, __file__, "--kb", str(args.kb), "--examples", str(args.examples)]
            cmd += ["--batch-size", str(args.batch_size), "--threads", str(args.threads), "--one", str(micro)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            row["loadavg"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), flush=True)
            rows.append(row)
    for micro in (args.batch_size, 1):
        mine = [r for r in rows if r["micro_batch"] == micro]
        print(
            f"micro-batch {micro}: median {statistics.median(r['examples_per_s'] for r in mine):.3f} examples/s, "
            f"peak RSS {statistics.median(r['peak_rss_gb'] for r in mine):.1f} GB"
        )


if __name__ == "__main__":
    main()
