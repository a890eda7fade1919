"""Rule R1: rule R's reader as hooked LoRA deltas on the generator's own model, against a merged second copy.

    python bench/reader_hooks.py PAIRS.jsonl --adapter DIR [--questions 30] [--timed 15]

PAIRS is `bench/entry_reader.py pairs` output. For every (len / questions)-th question it reads the own entry and
the nearest rival with both readers and prints the largest and median difference of P(yes), how many readings
cross rule R's floor (0.3) differently and how often the margin test (own >= rival + 0.1) agrees; then, on
`--timed` own-entry prompts, the per-prompt time of the hooked reading over the merged copy's, interleaved (order
alternating, so a shared machine's drift falls on both), and the peak RSS of the process before the copy loads.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

MODEL = "Qwen2.5-Coder-1.5B-Instruct"


def _merged(gen: Any, adapter: Path) -> Any:
    """The reader as it was before rule R1: a second copy of the model with the adapter merged."""
    import torch
    from transformers import AutoModelForCausalLM

    from ragkit.generation.hf import _merge_adapter

    model = AutoModelForCausalLM.from_pretrained(
        str(gen.base_model_dir), dtype=getattr(torch, gen.dtype), local_files_only=True
    )
    old = copy.copy(gen)
    old.model = _merge_adapter(model, adapter).eval()
    return old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--adapter", type=Path, required=True)
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--timed", type=int, default=15)
    args = ap.parse_args()

    from ragkit.entry_reading import ENTRY_MARGIN, ENTRY_RELEASE_MIN, entry_messages
    from ragkit.generation.entry_reader import LazyEntryReader
    from ragkit.generation.hf import TransformersGenerator

    rows = [json.loads(line) for line in args.pairs.read_text().splitlines() if line.strip()]
    picked = rows[:: max(1, len(rows) // args.questions)][: args.questions]
    gen = TransformersGenerator(MODEL, device="cpu")
    hooked = LazyEntryReader(gen, args.adapter)
    prompts = [entry_messages(r["question"], e) for r in picked for e in (r["own"], r["rivals"][0])]
    new = [hooked.yes_probability(m) for m in prompts]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    merged = _merged(gen, args.adapter)
    old = [merged.yes_probability(m) for m in prompts]
    diff = [abs(a - b) for a, b in zip(new, old, strict=True)]
    floor = ENTRY_RELEASE_MIN[MODEL]
    crossed = sum((a >= floor) != (b >= floor) for a, b in zip(new, old, strict=True))
    margins = [
        (new[i] - new[i + 1] >= ENTRY_MARGIN) == (old[i] - old[i + 1] >= ENTRY_MARGIN) for i in range(0, len(new), 2)
    ]
    print(
        f"{gen.dtype}; {len(prompts)} readings: |P(yes) hooked - merged| median {statistics.median(diff):.4f}, "
        f"largest {max(diff):.4f}; crossing the floor {floor} differently: {crossed}; margin test agrees "
        f"{sum(margins)} of {len(margins)}; peak RSS with the hooks only {rss:.2f} GB"
    )

    timed = [entry_messages(r["question"], r["own"]) for r in rows[5 :: max(1, len(rows) // args.timed)][: args.timed]]
    for reader in (hooked, merged, gen):  # warm: the first forward pass of each pays one-off costs
        reader.yes_probability(timed[0])
    ratios, off = [], []
    for i, m in enumerate(timed):
        order = [("hooked", hooked), ("merged", merged), ("off", gen)]
        seconds = {}
        for name, reader in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            reader.yes_probability(m)
            seconds[name] = time.perf_counter() - start
        ratios.append(seconds["hooked"] / seconds["merged"])
        off.append(seconds["off"] / seconds["merged"])
    q = statistics.quantiles(ratios)
    print(
        f"{len(timed)} prompts timed: hooked / merged median {statistics.median(ratios):.3f} (quartiles "
        f"{q[0]:.3f}-{q[2]:.3f}); hooks off / merged {statistics.median(off):.3f}"
    )


if __name__ == "__main__":
    main()
