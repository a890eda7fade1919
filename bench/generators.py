"""Generators compared on the same real HaluEval questions: answer F1, abstention, unsupported claims, speed.

    python bench/generators.py --workdir /tmp/genbench
    python bench/generators.py --workdir /tmp/genbench --generator SmolLM2-135M-Instruct \\
        --generator Qwen2.5-Coder-0.5B-Instruct --questions 40 --threads 1

A KB of HaluEval-QA passages is built in WORKDIR/halueval/kb (the same one bench/finetune.py builds, so the
two can share a workdir); half the questions are answerable (their passage is in the KB) and half are not.
Each generator (a bundled name, a local directory or .gguf, optionally NAME+ADAPTER for a fine-tuned model of
the KB) answers them through `ragkit eval`, and one JSON line per generator is appended to
WORKDIR/generators.jsonl.

--min-relevance sets the relevance floor the runs use (default 0: off, every question goes to the model);
--sweep 0.3,0.35,... then re-scores each run's samples as the floor would have: a sample whose recorded
relevance is below it becomes an abstention with no claims (what `ask` returns then, without generating).
--split dev asks the next questions instead of the first ones (to choose a floor without looking at test).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import ragkit
from ragkit.evals.datasets import Dataset, load_halueval_qa, write_contexts
from ragkit.evals.runner import EvalOptions, compute_metrics, read_samples, run_eval
from ragkit.finetune import COMPARED

SHOWN = (*COMPARED, ("latency/generate_p50_s", "generate p50 (s)"), ("tokens/per_s", "tokens/s"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--passages", type=int, default=120, help="HaluEval items whose passages form the KB")
    ap.add_argument("--questions", type=int, default=40, help="half answerable, half not")
    ap.add_argument("--generator", action="append", help="repeatable; default: both bundled generators")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--min-relevance", type=float, default=0.0, help="the floor the runs use; 0 = off")
    ap.add_argument("--sweep", default="", help="comma-separated floors to re-score the samples at")
    ap.add_argument("--split", choices=["test", "dev"], default="test")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    generators = args.generator or ["SmolLM2-135M-Instruct", "Qwen2.5-Coder-0.5B-Instruct"]

    dataset = load_halueval_qa(limit=args.passages, unanswerable=0.3, seed=7)
    kb_dir = args.workdir / "halueval" / "kb"
    if not (kb_dir / "manifest.json").exists():
        src = write_contexts(dataset, args.workdir / "halueval" / "passages")
        with ragkit.open(kb_dir) as kb:
            kb.ingest([src])
    half = args.questions // 2
    skip = half if args.split == "dev" else 0
    unans = [i for i in dataset.items if not i.answerable][skip : skip + half]
    ans = [i for i in dataset.items if i.answerable][skip : skip + args.questions - half]
    ds = Dataset(f"halueval-generators-{args.split}", tuple(ans + unans), dataset.source)
    floors = [float(x) for x in args.sweep.split(",") if x.strip()]

    rows = []
    for spec in generators:
        model, _, adapter = spec.partition("+")
        over = {
            "generator.model": model,
            "generator.threads": args.threads,
            "generator.min_relevance": args.min_relevance,
        }
        if adapter:
            over["generator.adapter"] = adapter
        t0 = time.perf_counter()
        with ragkit.open(kb_dir, create=False, **over) as kb:
            opts = EvalOptions(max_new_tokens=args.max_tokens)
            run = run_eval(kb, ds, name=f"generators-{spec.replace('+', '-')}", options=opts)
        row = {
            "generator": spec,
            "questions": {"answerable": len(ans), "unanswerable": len(unans)},
            "split": args.split,
            "min_relevance": args.min_relevance,
            "metrics": {key: run.metrics.get(key) for key, _ in SHOWN},
            "run": str(run.run_dir),
            "wall_s": round(time.perf_counter() - t0, 1),
            "threads": args.threads,
            "loadavg": round(os.getloadavg()[0], 2),
        }
        samples = read_samples(run.run_dir / "samples.jsonl")
        row["sweep"] = {str(f): {key: gated_metrics(samples, f).get(key) for key, _ in COMPARED} for f in floors}
        rows.append(row)
        with (args.workdir / "generators.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    print(f"{'metric':<32}" + "".join(f"{r['generator'][:30]:>32}" for r in rows))
    for key, label in SHOWN:
        cells = "".join(f"{_fmt(r['metrics'][key]):>32}" for r in rows)
        print(f"{label:<32}{cells}")
    for f in floors:
        print(f"\nmin_relevance {f}")
        for key, label in COMPARED:
            cells = "".join(f"{_fmt(r['sweep'][str(f)][key]):>32}" for r in rows)
            print(f"{label:<32}{cells}")


def gated_metrics(samples: list[dict], floor: float) -> dict:
    """The run's metrics had the relevance floor been `floor`: a sample below it abstains, with no claims."""
    out = []
    for s in samples:
        rel = s.get("relevance")
        if s.get("status") == "ok" and rel is not None and rel < floor:
            s = {**s, "abstained": True, "claims": [], "citations": [], "completion_tokens": 0}
            if "scores" in s:
                s["scores"] = dict.fromkeys(s["scores"], 0.0)
        out.append(s)
    return compute_metrics(out)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
