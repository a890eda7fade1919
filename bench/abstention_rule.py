"""Which combination of abstention signals to use, and at which thresholds: a grid search on the dev split's
per-question signals (bench/abstention_dev.py --out, bench/probe_signals.py --out), joined by question.

    python bench/abstention_rule.py /tmp/devset/signals-dev.jsonl /tmp/devset/probe-dev-smollm.jsonl \
        [--signals relevance,grounding,support_min,lp_key,p_yes] [--max-false 0.10]

A rule abstains when any chosen signal is below its threshold. For each budget of false abstention on
answerable questions it prints the rule that abstains most on the unanswerable ones (on-topic-missing and
answer-removed weighted like off-topic, each construction counted as its own share). Rules are chosen here,
on dev, and then measured on the held-out split with `--apply`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KINDS = ("on-topic-missing", "answer-removed", "off-topic")


def load(paths: Sequence[Path], prefixes: Sequence[str]) -> list[dict[str, Any]]:
    """Rows joined on (corpus, id); the i-th file's signals get prefixes[i] (p_yes -> qwen.p_yes)."""
    joined: dict[tuple[str, str], dict[str, Any]] = {}
    for path, prefix in zip(paths, prefixes, strict=True):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            row = joined.setdefault((r["corpus"], r["id"]), {})
            for k, v in r.items():
                if k in ("corpus", "id", "construction", "answerable") or k in row and not prefix:
                    row.setdefault(k, v)
                else:
                    row[f"{prefix}{k}" if prefix else k] = v
    return [r for r in joined.values() if all(not isinstance(v, float) or v == v for v in r.values())]


def _samples(results: Path) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(the model said it does not know, its draft holds a gold answer) per question of the runs."""
    from ragkit.citations import is_abstention
    from ragkit.evals.metrics import contains_answer

    out = {}
    for corpus, part in json.loads(results.read_text())["parts"].items():
        for line in (Path(part["run_dir"]) / "samples.jsonl").read_text().splitlines():
            s = json.loads(line)
            raw = s.get("raw_answer") or ""
            right = bool(s.get("gold_answers")) and contains_answer(raw, s["gold_answers"]) == 1.0
            out[(corpus, s["id"])] = (bool(raw) and is_abstention(raw), right)
    return out


def rates(rows: Sequence[dict[str, Any]], rule: dict[str, float]) -> dict[str, float]:
    """Abstention share per construction (answerable = false abstention) under `rule`."""
    out: dict[str, float] = {}
    for kind in ("answerable", *KINDS):
        group = [r for r in rows if (r["construction"] or "answerable") == kind]
        if group:
            hit = [_abstains(r, rule) for r in group]
            out[kind] = sum(hit) / len(group)
    right = [r for r in rows if r["answerable"] and r["right"]]
    out["withheld right drafts"] = sum(_abstains(r, rule) for r in right) / max(1, len(right))
    out["delivered right"] = sum(not _abstains(r, rule) for r in right) / max(1, sum(r["answerable"] for r in rows))
    return out


def _abstains(r: dict[str, Any], rule: dict[str, float]) -> bool:
    return bool(r.get("gated") or r["abstained_by_floor"] or any(r[k] < t for k, t in rule.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", type=Path, nargs="+")
    ap.add_argument("--prefix", action="append", default=None, help="one per file ('' keeps names)")
    ap.add_argument("--signals", default="relevance,grounding,support_min,lp_key,p_yes")
    ap.add_argument("--max-signals", type=int, default=3)
    ap.add_argument("--apply", default=None, help="print rates for this rule, e.g. grounding=0.2,p_yes=0.3")
    ap.add_argument("--results", type=Path, required=True, help="bench/devset.py's results file of these runs")
    args = ap.parse_args()
    rows = load(args.files, args.prefix or [""] * len(args.files))
    known = _samples(args.results)
    for r in rows:
        said, r["right"] = known[(r["corpus"], r["id"])]
        # abstentions every rule keeps: the relevance floor's, and the model's own "I don't know"
        r["abstained_by_floor"] = r.get("relevance", 1.0) < 0.35 or said
    if args.apply:
        rule = {k: float(v) for k, v in (p.split("=") for p in args.apply.split(","))}
        print(json.dumps({k: round(v, 3) for k, v in rates(rows, rule).items()}), f"n={len(rows)}")
        return
    names = args.signals.split(",")
    grids = {}
    for k in names:
        values = sorted({round(float(r[k]), 3) for r in rows})
        step = max(1, len(values) // 24)
        grids[k] = [None, *values[::step]]
    best: dict[float, tuple[float, dict[str, float], dict[str, float]]] = {}
    sizes = range(1, args.max_signals + 1)
    for chosen in itertools.chain.from_iterable(itertools.combinations(names, n) for n in sizes):
        for ts in itertools.product(*(grids[k] for k in chosen)):
            rule = {k: t for k, t in zip(chosen, ts, strict=True) if t is not None}
            rt = rates(rows, rule)
            score = sum(rt.get(k, 0.0) for k in KINDS) / sum(k in rt for k in KINDS)
            for budget in (0.05, 0.10, 0.15, 0.20, 0.25):
                if rt["answerable"] <= budget and score > best.get(budget, (-1.0, {}, {}))[0]:
                    best[budget] = (score, rule, rt)
    for budget, (score, rule, rt) in sorted(best.items()):
        shown = ", ".join(f"{k}<{v:g}" for k, v in rule.items())
        shares = json.dumps({k: round(v, 2) for k, v in rt.items()})
        print(f"false<={budget:.2f}: mean abstention {score:.3f}  {shares}  [{shown}]")


if __name__ == "__main__":
    main()
