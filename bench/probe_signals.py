"""Does the generator itself know when the sources lack the answer? Two signals from the model's own
probabilities, scored on the run folders bench/devset.py wrote, with AUROC per construction.

    python bench/probe_signals.py /tmp/devset/results-dev-config.json --generator SmolLM2-135M-Instruct \
        --out /tmp/devset/probe-dev-smollm.jsonl

- answer_logprob (mean / min / key spans): the drafted answer re-scored under `ask`'s own prompt (teacher
  forcing, one forward pass): mean and lowest log-probability of its tokens, and the mean over the tokens of
  its key spans (ragkit.grounding.key_spans: the numbers, names and code words it states). A model copying a
  fact from a source is sure of it; one inventing a name is not.
- p_yes: the probability of "Yes" against "No" when the same model is asked whether the sources state the
  answer to the question (one forward pass over the sources, no generation).

Questions the relevance floor already refused score the lowest value of every signal (they are abstentions
whatever the signal says). Higher = more likely answerable. AUROC 0.5 is chance.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

PROBE_SYSTEM = "You check whether numbered sources answer a question. Reply with one word: Yes or No."
PROBE_USER = (
    "Sources:\n{sources}\n\nQuestion: {question}\n\nDo the sources state the answer to this question? Reply Yes or No."
)


def _hits(sample: dict[str, Any]) -> list[Any]:
    from ragkit.types import Chunk, Hit

    hits = []
    for i, c in enumerate(sample.get("contexts", []), start=1):
        text = c["text"]
        chunk = Chunk(int(c.get("chunk_id", i)), 0, str(c.get("uri", "")), 0, text, 0, len(text), 0)
        hits.append(Hit(chunk, float(c.get("score", 0.0)), i))
    return hits


def _answer_logprobs(gen: Any, sample: dict[str, Any]) -> dict[str, float] | None:
    import torch

    from ragkit.grounding import key_spans
    from ragkit.prompts import build_messages

    answer = str(sample.get("raw_answer") or "").strip()
    if not answer:
        return None
    prompt = gen.prompt_ids(build_messages(sample["question"], _hits(sample)))
    enc = gen.tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    if not ids:
        return None
    x = torch.tensor([prompt + ids])
    with torch.inference_mode():
        logits = gen.model(input_ids=x).logits[0, len(prompt) - 1 : -1].float()
    lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids)[:, None])[:, 0].tolist()
    spans = key_spans(answer, sample["question"])
    inside: list[float] = []
    lowered = answer.lower()
    for span in spans:
        at = lowered.find(span.lower())
        if at < 0:
            continue
        end = at + len(span)
        inside += [v for v, (a, b) in zip(lp, enc["offset_mapping"], strict=True) if a < end and b > at]
    return {
        "lp_mean": sum(lp) / len(lp),
        "lp_min": min(lp),
        "lp_key": sum(inside) / len(inside) if inside else 0.0,
    }


def _p_yes(gen: Any, sample: dict[str, Any]) -> float:
    import torch

    from ragkit.prompts import DEFAULT_TEMPLATE, format_source

    sources = "\n".join(format_source(i, h, DEFAULT_TEMPLATE) for i, h in enumerate(_hits(sample), start=1))
    messages = [
        {"role": "system", "content": PROBE_SYSTEM},
        {"role": "user", "content": PROBE_USER.format(sources=sources, question=sample["question"])},
    ]
    x = torch.tensor([gen.prompt_ids(messages)])
    tok = gen.tokenizer
    yes = [tok.encode(w, add_special_tokens=False)[0] for w in ("Yes", " Yes", "yes")]
    no = [tok.encode(w, add_special_tokens=False)[0] for w in ("No", " No", "no")]
    with torch.inference_mode():
        logits = gen.model(input_ids=x).logits[0, -1].float()
    p = torch.softmax(logits, dim=-1)
    py, pn = float(p[yes].sum()), float(p[no].sum())
    return py / (py + pn) if py + pn > 0 else 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--generator", default="SmolLM2-135M-Instruct")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from bench.abstention_dev import auroc
    from ragkit.generation.hf import TransformersGenerator

    gen = TransformersGenerator(args.generator, device="cpu")
    results = json.loads(args.results.read_text())
    done = {}
    if args.out.exists():
        done = {(r["corpus"], r["id"]): r for r in map(json.loads, args.out.read_text().splitlines())}
    rows = []
    with args.out.open("a", encoding="utf-8") as out:
        for corpus, part in results["parts"].items():
            for line in (Path(part["run_dir"]) / "samples.jsonl").read_text().splitlines():
                s = json.loads(line)
                if s.get("status") != "ok":
                    continue
                if (corpus, s["id"]) in done:
                    rows.append(done[(corpus, s["id"])])
                    continue
                gated = s.get("abstained") and not s.get("raw_answer")
                row: dict[str, Any] = {
                    "corpus": corpus,
                    "id": s["id"],
                    "construction": s.get("construction", ""),
                    "answerable": bool(s["answerable"]),
                    "gated": bool(gated),
                    "relevance": float(s.get("relevance") or 0.0),
                }
                lps = None if gated else _answer_logprobs(gen, s)
                row.update(lps or {"lp_mean": -99.0, "lp_min": -99.0, "lp_key": -99.0})
                row["p_yes"] = 0.0 if gated else _p_yes(gen, s)
                out.write(json.dumps(row) + "\n")
                out.flush()
                rows.append(row)
    signals = ["relevance", "lp_mean", "lp_min", "lp_key", "p_yes"]
    print(f"{'vs answerable':<17} " + " ".join(f"{k:>9}" for k in signals))
    for kind in sorted({r["construction"] for r in rows if not r["answerable"]}) + ["all"]:
        group = [r for r in rows if r["answerable"] or kind in ("all", r["construction"])]
        labels = [r["answerable"] for r in group]
        cells = [auroc(labels, [r[k] for r in group]) for k in signals]
        print(f"{kind:<17} " + " ".join(f"{'-' if a is None or math.isnan(a) else f'{a:.3f}':>9}" for a in cells))


if __name__ == "__main__":
    main()
