"""Replay the checks after generation (ragkit.withholding) on the drafts of a dev-set run, under other floors.

    python bench/replay_checks.py --workdir /tmp/devset --split heldout \
        --generator Qwen2.5-Coder-1.5B-Instruct --min-coverage 0.5

Reads the newest run of each corpus made by `bench/devset.py` for that split and generator. It runs each
draft (the withheld draft, or the answer delivered) and the sources the model saw through the current
checks. Then it prints, per construction, the share abstained, answer-contains-gold, the right answers
withheld, and the unsupported share of the judge's claims on the answers still delivered.

The checks are deterministic functions of the draft and its sources. The replay is therefore exact for a
higher floor or a changed check. An answer the run withheld and the replay would deliver has no judged
claims; the script names each one.
Questions the relevance floor refused before generation stay refused.

`--run KB/runs/NAME` replays one `ragkit eval run` instead (a trial such as bench/data/trial_heldout.jsonl),
with that KB's embedder. `--readings scores.jsonl --min-verified 0.5` also withholds a draft the checks deliver
when a model's reading of it (bench/self_verify.py --out) is below that floor, as generator.min_verified does.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import ragkit
from ragkit.answering import AnswerOptions
from ragkit.citations import check_answer
from ragkit.evals.metrics import contains_answer
from ragkit.testing import make_hit
from ragkit.types import Generation, Hit
from ragkit.withholding import Withholding, withhold_unfounded

CORPORA = ("sample", "pydocs", "halueval")


def _replay(sample: dict[str, Any], options: AnswerOptions, generator: str, embed: Any) -> bool:
    """True when the current checks withhold this sample's draft."""
    return replay_held(sample, options, generator, embed).checked.abstained


def sample_hits(sample: dict[str, Any]) -> list[Hit]:
    """The sources a recorded sample's model saw, as hits numbered from 1."""
    return [
        make_hit(i + 1, c["text"], c.get("uri", "source"), section=_section(c.get("location", "")))
        for i, c in enumerate(sample["contexts"])
    ]


def replay_held(sample: dict[str, Any], options: AnswerOptions, generator: str, embed: Any) -> Withholding:
    """The current checks' verdict on this sample's draft (the withheld draft, or the answer delivered)."""
    draft = (sample.get("withheld") or {}).get("draft") or sample["answer"]
    hits = sample_hits(sample)
    # the draft's citations, checked again against its sources: the first check (unsourced, rule C) withholds an
    # answer that kept none, so a draft replayed without them was always withheld
    checked = check_answer(draft, hits, threshold=options.threshold, abstain_phrase=options.template.abstain)
    out = Generation(draft, 0, 0, 0.0)
    return withhold_unfounded(sample["question"], checked, out, hits, options, generator, embed)


def _section(location: str) -> str | None:
    """The section title a recorded hit's location names ('file.md, section "Intro"'), or None."""
    m = re.search(r'section "(.*)"$', location)
    return m.group(1) if m else None


def _newest(workdir: Path, corpus: str, split: str, generator: str) -> Path:
    runs = sorted((workdir / f"kb-{corpus}" / "runs").glob(f"*-devset-{split}-{generator}"))
    if not runs:
        raise SystemExit(f"no {split} run of {generator} in kb-{corpus}; run bench/devset.py first")
    return runs[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="bench/devset.py's work folder")
    ap.add_argument("--split", choices=["dev", "heldout"], default="dev")
    ap.add_argument("--generator", default="Qwen2.5-Coder-0.5B-Instruct")
    ap.add_argument("--min-coverage", type=float, default=0.2)
    ap.add_argument("--min-grounding", type=float, default=0.2)
    ap.add_argument("--run", type=Path, help="one eval run folder (KB/runs/NAME) instead of the dev set's")
    ap.add_argument("--readings", type=Path, help="bench/self_verify.py --out scores of these drafts")
    ap.add_argument("--min-verified", type=float, default=0.0, help="withhold a delivered draft read below this")
    args = ap.parse_args()
    options = AnswerOptions(min_coverage=args.min_coverage, min_grounding=args.min_grounding)
    if args.run is not None:
        kb = ragkit.open(args.run.parent.parent, create=False)
        chosen = [args.run]
    elif args.workdir is None:
        raise SystemExit("give --workdir (the dev set's runs) or --run (one eval run)")
    else:
        kb = ragkit.open(args.workdir / "kb-sample", create=False)  # every part's KB has the same embedder
        chosen = [_newest(args.workdir, corpus, args.split, args.generator) for corpus in CORPORA]
    readings: dict[tuple[str, str], float] = {}
    for line in args.readings.read_text().splitlines() if args.readings else []:
        r = json.loads(line)
        readings[(r["run"], r["id"])] = r["score"]
    rows: list[tuple[str, bool, float, float, list[bool]]] = []
    for run in chosen:
        for line in (run / "samples.jsonl").read_text().splitlines():
            s = json.loads(line)
            if s.get("status") != "ok":
                continue
            refused = s["abstained"] and not s.get("withheld")
            now = True if refused else _replay(s, options, args.generator, kb.embedder.embed)
            if not now and args.min_verified > 0:
                if (run.name, s["id"]) not in readings:
                    raise SystemExit(f"no reading of {run.name} {s['id']} in {args.readings}")
                now = readings[(run.name, s["id"])] < args.min_verified
            if s["abstained"] and not now:
                print(f"delivered now, no judged claims: {s['question'][:80]}")
            draft = (s.get("withheld") or {}).get("draft") or ("" if refused else s["answer"])
            gold = contains_answer(draft, s["gold_answers"]) if s["answerable"] and draft else 0.0
            claims = [] if now else [bool(c["supported"]) for c in s.get("claims", [])]
            rows.append((s.get("construction") or "?", now, 0.0 if now else gold, gold if now else 0.0, claims))
    print(f"{'construction':<17} {'n':>3} {'abstained':>9} {'gold':>6} {'right_wh':>8}")
    for kind in sorted({r[0] for r in rows}):
        group = [r for r in rows if r[0] == kind]
        n = len(group)
        abstained = sum(r[1] for r in group) / n
        gold, right = sum(r[2] for r in group) / n, sum(r[3] for r in group) / n
        print(f"{kind:<17} {n:>3} {abstained:>9.2f} {gold:>6.2f} {right:>8.2f}")
    claims = [c for r in rows for c in r[4]]
    bad = sum(not c for c in claims)
    print(f"unsupported claims in delivered answers: {bad / max(1, len(claims)):.3f} of {len(claims)}")


if __name__ == "__main__":
    main()
