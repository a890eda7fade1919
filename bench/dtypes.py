"""fp32 against bf16 generation on the CPU: load seconds, peak memory, seconds per answer, same answers?

    python bench/dtypes.py [--models Qwen2.5-Coder-1.5B-Instruct,Qwen2.5-Coder-0.5B-Instruct] [--rounds 2]
                           [--threads 2] [--max-tokens 64] [--no-bf16-units]

Each (model, dtype) is loaded by ragkit's own TransformersGenerator (`generator.dtype`) in a fresh process, so
its peak resident memory (ru_maxrss) is that of one `ragkit ask`'s model; a bf16 run reads the bf16 copy ragkit
converts from the GGUF (converted before the timed rounds; the conversion's own seconds and peak memory are
reported once). Each child answers the 4 RAG prompts of bench/backends.py (sample-corpus sources packed as `ask`
packs them) greedily, `--max-tokens` at most. Children alternate between the dtypes for `--rounds` rounds, so a
noisy machine slows both alike; the report gives medians over rounds x prompts and the bf16 / fp32 ratio taken
in this run, and whether the greedy answers are identical.

`--no-bf16-units` adds a third variant: bf16 with oneDNN held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2), an
approximation of a CPU without bf16 arithmetic on one that has it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import PROMPTS, _hits  # noqa: E402

MODELS = "Qwen2.5-Coder-1.5B-Instruct,Qwen2.5-Coder-0.5B-Instruct"


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB


def child(model: str, dtype: str, threads: int, max_tokens: int, prepare: bool) -> dict[str, object]:
    """Load `model` in `dtype` through ragkit and answer the prompts (or, with prepare, only convert)."""
    from ragkit.answering import AnswerOptions, packed_prompt
    from ragkit.generation.hf import TransformersGenerator

    t0 = time.perf_counter()
    gen = TransformersGenerator(model, device="cpu", dtype=dtype, threads=threads)
    load = time.perf_counter() - t0
    out: dict[str, object] = {"load_s": load, "load_peak_gb": _peak_gb(), "dtype": gen.dtype}
    if prepare:
        return out
    opts = AnswerOptions(max_new_tokens=max_tokens)
    secs, texts = [], []
    for question, source in PROMPTS:
        msgs = packed_prompt(question, _hits(source), gen, opts).messages
        g = gen.generate(msgs, max_tokens)
        secs.append(g.seconds)
        texts.append(g.text)
    return {**out, "seconds": secs, "texts": texts, "peak_gb": _peak_gb()}


def _run_child(model: str, variant: str, args: argparse.Namespace, prepare: bool = False) -> dict[str, object]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    dtype = variant
    if variant == "bfloat16-avx2":
        env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
        dtype = "bfloat16"
    cmd = [sys.executable, __file__, "--child", model, dtype, "--threads", str(args.threads)]
    cmd += ["--max-tokens", str(args.max_tokens)] + (["--prepare"] if prepare else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{model} {variant} failed:\n{done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--no-bf16-units", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.threads, args.max_tokens, args.prepare)))
        return
    from ragkit.assets import cpu_has_bf16

    variants = ["float32", "bfloat16"] + (["bfloat16-avx2"] if args.no_bf16_units else [])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, bf16 units: {cpu_has_bf16()}, "
        f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads"
    )
    for model in args.models.split(","):
        for dtype in ("float32", "bfloat16"):  # converts the cached copies outside the timed rounds
            first = _run_child(model, dtype, args, prepare=True)
            print(f"{model} {dtype}: first load {first['load_s']:.1f} s, peak {first['load_peak_gb']:.2f} GB")
        runs: dict[str, list[dict[str, object]]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for v in variants if r % 2 == 0 else variants[::-1]:
                runs[v].append(_run_child(model, v, args))
        base = statistics.median(s for run in runs["float32"] for s in run["seconds"])  # type: ignore[attr-defined]
        print(f"\n{model}: medians over {args.rounds} rounds x {len(PROMPTS)} prompts")
        print("| dtype | load s | peak GB | s per answer | vs fp32 | answers identical to fp32 |")
        print("|---|---:|---:|---:|---:|---:|")
        ref = runs["float32"][0]["texts"]
        for v in variants:
            secs = statistics.median(s for run in runs[v] for s in run["seconds"])  # type: ignore[attr-defined]
            load = statistics.median(float(run["load_s"]) for run in runs[v])  # type: ignore[arg-type]
            peak = max(float(run["peak_gb"]) for run in runs[v])  # type: ignore[arg-type]
            same = sum(a == b for a, b in zip(runs[v][0]["texts"], ref, strict=True))  # type: ignore[call-overload]
            print(f"| {v} | {load:.1f} | {peak:.2f} | {secs:.2f} | {secs / base:.2f} | {same} / {len(PROMPTS)} |")
        for v in variants[1:]:
            for i, (a, b) in enumerate(zip(ref, runs[v][0]["texts"], strict=True)):  # type: ignore[call-overload]
                if a != b:
                    print(f"  prompt {i + 1}, {v}: {b[:160]!r}\n  prompt {i + 1}, float32: {a[:160]!r}")


if __name__ == "__main__":
    main()
