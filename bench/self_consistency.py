"""Self-consistency as an abstention signal: does the greedy answer agree with answers sampled at temperature?

    python bench/self_consistency.py /tmp/devset/results-dev-Qwen2.5-Coder-0.5B-Instruct.json \
        --generator Qwen2.5-Coder-0.5B-Instruct --samples 3 --out /tmp/devset/sc-dev-qwen.jsonl

For every question of the run folders bench/devset.py wrote whose greedy draft was generated (not refused by
the relevance floor, not the model's own abstention), draws --samples answers at `generator.sample_temperature`
(0.7) from the same prompt `ask` builds, and scores the share that agree with the greedy draft (content-word
Jaccard >= 0.5, as `ask --samples` votes; an abstention agrees only with an abstention). A model that knows
the answer says it again; one that guesses says something else each time. Prints AUROC of right answers
against each unanswerable construction and against wrong answers, over all drafts and over the drafts the
default checks deliver (does it add to them?), and the cost: generation seconds per question.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_signals import _hits  # noqa: E402 - the run's contexts as Hits, as the probe rebuilds them


def _auroc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def _score(gen: Any, sample: dict[str, Any], n: int, temperature: float) -> tuple[float, float]:
    """(share of n sampled answers agreeing with the greedy draft, generation seconds)."""
    from ragkit.citations import _answer_key, check_answer, should_stop
    from ragkit.prompts import build_messages

    hits = _hits(sample)
    messages = build_messages(sample["question"], hits)
    greedy = _answer_key(check_answer(str(sample["draft"]), hits))
    agree, seconds = 0, 0.0
    for _ in range(n):
        out = gen.generate(messages, 160, temperature, stop=should_stop)
        seconds += out.seconds
        key = _answer_key(check_answer(out.text, hits))
        agree += key == greedy or (bool(key | greedy) and len(key & greedy) / len(key | greedy) >= 0.5)
    return agree / n, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="a results-<split>-<generator>.json of bench/devset.py")
    ap.add_argument("--generator", required=True, help="the generator the run used (bundled name or path)")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--out", type=Path, required=True, help="per-question scores (JSON lines; resumed if present)")
    args = ap.parse_args()

    from ragkit.evals.metrics import contains_answer
    from ragkit.generation import build_generator

    gen = build_generator("transformers", args.generator)
    done = {}
    if args.out.exists():
        done = {r["id"]: r for r in map(json.loads, args.out.read_text().splitlines()) if r}
    parts = json.loads(args.results.read_text())["parts"]
    t0 = time.perf_counter()
    with args.out.open("a", encoding="utf-8") as f:
        for part in parts.values():
            for line in (Path(part["run_dir"]) / "samples.jsonl").read_text().splitlines():
                s = json.loads(line)
                withheld = s.get("withheld") or {}
                s["draft"] = withheld.get("draft") if s["abstained"] else s.get("answer")
                if not s["draft"] or (s["abstained"] and not withheld) or s["id"] in done:
                    continue
                agreement, seconds = _score(gen, s, args.samples, args.temperature)
                golds = s.get("gold_answers") or []
                rec = {
                    "id": s["id"],
                    "construction": s.get("construction"),
                    "right": bool(s["answerable"]) and contains_answer(s["draft"], golds) == 1.0,
                    "answerable": bool(s["answerable"]),
                    "delivered": not s["abstained"],
                    "agreement": agreement,
                    "seconds": round(seconds, 2),
                }
                done[s["id"]] = rec
                f.write(json.dumps(rec) + "\n")
                f.flush()
    recs = list(done.values())
    print(f"{len(recs)} drafts scored in {time.perf_counter() - t0:.0f} s")
    for scope, chosen in (
        ("all drafts", recs),
        ("delivered by the default checks", [r for r in recs if r["delivered"]]),
    ):
        right = [r["agreement"] for r in chosen if r["right"]]
        rows = {"wrong answers": [r["agreement"] for r in chosen if r["answerable"] and not r["right"]]}
        for kind in sorted({r["construction"] for r in chosen if not r["answerable"]}):
            rows[kind] = [r["agreement"] for r in chosen if not r["answerable"] and r["construction"] == kind]
        cells = ", ".join(f"{k} {a:.3f} (n={len(v)})" for k, v in rows.items() if (a := _auroc(right, v)) is not None)
        print(f"{scope}: right n={len(right)}; AUROC vs {cells}")
    per_q = sum(r["seconds"] for r in recs) / max(1, len(recs))
    print(f"generation: {per_q:.1f} s per question for {args.samples} samples")


if __name__ == "__main__":
    main()
