"""Which signal tells an unanswerable question from an answerable one? AUROC on real HaluEval questions.

    python bench/abstention_signals.py --workdir /tmp/ftbench_d
    python bench/abstention_signals.py --workdir /tmp/ftbench_d --model base --model H --model I

Uses the HaluEval KB that bench/finetune.py and bench/generators.py build in WORKDIR/halueval/kb (120 items,
30 % of them with their passage left out, so their questions are unanswerable). For the first 20 + 20
questions ("test", the ones the other benchmarks ask) and the next ones ("dev") it scores:

- relevance: the best cosine similarity of the question to a retrieved chunk (what `generator.min_relevance`
  thresholds);
- coverage: the largest share of the question's content words found in one retrieved chunk;
- for each --model (base, or an adapter name under the KB's models/) of the KB's generator or --generator:
  the log-probability that the model's reply to `ask`'s exact prompt is the abstention phrase
  (teacher-forced, no sampling).

AUROC 1.0 means the score ranks every unanswerable question above every answerable one (low relevance and
coverage, high abstention probability); 0.5 is chance. One JSON line per signal and split is appended to
WORKDIR/abstention_signals.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import ragkit
from ragkit.evals.datasets import load_halueval_qa
from ragkit.generation.answer import packed_prompt, relevance_of
from ragkit.textutil import content_words


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positive for n in negative]
    return sum(pairs) / len(pairs)


def abstain_logprob(gen, messages: list[dict[str, str]], phrase: str) -> float:  # type: ignore[no-untyped-def]
    """log P(reply starts with phrase | prompt) under the transformers generator, in nats."""
    import torch

    prompt = gen.prompt_ids(messages)
    reply = gen.tokenizer(phrase, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + reply], device=gen.device)
    with torch.inference_mode():
        logits = gen.model(ids, logits_to_keep=len(reply) + 1).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[i, t] for i, t in enumerate(reply)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--model", action="append", default=[], help="base or an adapter name; repeatable")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--generator", default=None, help="generator.model for --model (default: the KB's, SmolLM2)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kb_dir = args.workdir / "halueval" / "kb"
    if not (kb_dir / "manifest.json").exists():
        raise SystemExit(f"{kb_dir} is missing: run bench/generators.py --workdir {args.workdir} first")
    dataset = load_halueval_qa(limit=120, unanswerable=0.3, seed=7)
    unans = [i for i in dataset.items if not i.answerable]
    ans = [i for i in dataset.items if i.answerable]
    splits = {"test": ans[:20] + unans[:20], "dev": ans[20:40] + unans[20:]}

    rows = []
    for model in ["retrieval", *args.model]:
        over: dict[str, object] = {"generator.threads": args.threads}
        if args.generator:
            over["generator.model"] = args.generator
        if model not in ("retrieval", "base"):
            over["generator.adapter"] = model
        with ragkit.open(kb_dir, create=False, **over) as kb:
            options = kb.answer_options(max_new_tokens=48)
            for split, items in splits.items():
                scores: dict[str, list[tuple[bool, float]]] = {}
                for item in items:
                    hits = kb.search(item.question)
                    if model == "retrieval":
                        q = content_words(item.question)
                        cover = max(len(q & content_words(h.chunk.text)) / max(1, len(q)) for h in hits)
                        # low relevance / coverage should mean unanswerable: negate so higher = abstain
                        scores.setdefault("relevance", []).append((item.answerable, -(relevance_of(hits) or 0.0)))
                        scores.setdefault("coverage", []).append((item.answerable, -cover))
                    else:
                        packed = packed_prompt(item.question, hits, kb.generator, options)
                        lp = abstain_logprob(kb.generator, packed.messages, options.template.abstain)
                        label = f"{args.generator}:{model}" if args.generator else model
                        scores.setdefault(f"abstain_logprob:{label}", []).append((item.answerable, lp))
                for signal, pairs in scores.items():
                    row = {
                        "signal": signal,
                        "split": split,
                        "answerable": sum(a for a, _ in pairs),
                        "unanswerable": sum(not a for a, _ in pairs),
                        "auroc": round(auroc([s for a, s in pairs if not a], [s for a, s in pairs if a]), 3),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    with (args.workdir / "abstention_signals.jsonl").open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
