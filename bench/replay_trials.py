"""Replay today's checks on the drafts of real-document trial runs and tally them with the hand labels.

    python bench/replay_trials.py KB/runs/NAME [KB/runs/NAME ...] [--labels bench/data/trial_labels.jsonl]

A change to the checks after generation (ragkit.withholding) moves drafts between "delivered" and "withheld".
Each run's samples hold every draft and the sources the model saw, so this replays the current checks under
the floors the run's generator and embedder get by default, prints each draft whose fate changed (with its
hand label, when a person read it), and the trial figures before and after (bench/trial_tally.py).

What the replay cannot redo: the relevance floor before generation and the citation checks, the injection
defence's echo check among them (those abstentions stay), the model's token confidence (a floor only SmolLM2
has; the run's recorded confidence is applied to a draft the replay would deliver), and a second model's
reading. Runs of a generator pair (a fallback draft) are replayed on the first model's draft only.

The generator's own reading (generator.release_min_verified, ragkit.withholding.release) is redone: a draft a
word-level check alone withholds is delivered when the run's recorded reading reaches the floor; a draft the
run never read is read now with `--read` (the run's generator, seconds each), else named as unread.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from replay_checks import replay_held, sample_hits
from trial_tally import LABELS, load_labels, tally

import ragkit
from ragkit.answering import AnswerOptions, default_min_coverage, default_min_grounding
from ragkit.confidence import default_min_confidence
from ragkit.verification import default_release_min_verified, verified
from ragkit.withholding import RELEASABLE

# the checks the replay re-decides; a draft withheld for another reason keeps the run's decision: the model's
# confidence or a second model's reading, or no reason (the citation checks removed every sentence first)
REPLAYED = {"restated", "ungrounded", "unquantified", "no_default", "no_limit", "off_question"}


def replay_run(
    run: Path, labels: dict[tuple[str, str], str], read: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's samples as today's checks decide them, and one line per draft whose fate changed. A draft the
    checks withhold by a word-level check alone (RELEASABLE) is released as the run's generator would release
    it: by the run's recorded reading, or, with `read`, by reading it now (a draft the run never read)."""
    config = json.loads((run / "config.json").read_text())["config"]
    generator, embedder = config["generator"]["model"], config["embedder"]["model"]
    options = AnswerOptions(min_coverage=default_min_coverage(generator), min_grounding=default_min_grounding(embedder))
    floor = default_release_min_verified(generator)
    kb = ragkit.open(run.parent.parent, create=False)
    out, changes = [], []
    for line in (run / "samples.jsonl").read_text().splitlines():
        s = json.loads(line)
        withheld = s.get("withheld") or {}
        kept = s["abstained"] and withheld.get("reason") not in REPLAYED
        if s.get("status", "ok") != "ok" or kept:
            out.append(s)
            continue
        draft = withheld.get("draft") or s["answer"]
        held = replay_held(s, options, generator, kb.embedder.embed)
        now, note = held.checked.abstained, ""
        why = next((f.kind for f in held.checked.flags if f.kind in REPLAYED), None)
        if now and why in RELEASABLE and floor > 0:
            p = _reading(s, kb, read)
            if p is None:
                note = " (unread: the release may deliver it)"
            else:
                now, note = p < floor, f" (read {p:.2f})"
        confidence = withheld.get("confidence")
        if not now and confidence is not None and confidence < default_min_confidence(generator):
            now = True
        if now != s["abstained"]:
            label = labels.get((s["id"], draft.strip()), "unlabelled")
            verb = "withheld now" if now else "delivered now"
            changes.append(f"  {verb} [{label}] {s['id']}{note}: {draft[:110]!r}")
            s = {**s, "abstained": now}
            if now:
                s["withheld"] = {"draft": draft, "reason": "replay"}
            else:
                s["answer"], s["withheld"] = draft, None
        out.append(s)
    kb.close()
    return out, changes


def _reading(sample: dict[str, Any], kb: Any, read: bool) -> float | None:
    """The run's generator's P(yes) that the sources state the draft: recorded by the run, else read now (with
    `read`), else None."""
    recorded = sample.get("verified") or (sample.get("withheld") or {}).get("verified")  # released, or withheld
    if recorded is not None:
        return float(recorded)
    if not read:
        return None
    draft = (sample.get("withheld") or {}).get("draft") or sample["answer"]
    return verified(sample["question"], draft, sample_hits(sample), kb.generator)


def _line(t: dict[str, Any]) -> str:
    return (
        f"right {t['right']} wrong {t['wrong']} right-withheld {t['right_withheld']} | on-topic abstained "
        f"{t['abstained_on_topic']}/{t['on_topic']} inventions {t['inventions']} | score {t['score']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="eval run folders (KB/runs/NAME)")
    ap.add_argument("--labels", type=Path, default=LABELS, help="hand labels, one JSON line per answer")
    ap.add_argument("--read", action="store_true", help="read drafts the run never read with its generator (slow)")
    args = ap.parse_args()
    labels = load_labels(args.labels)
    total = [0, 0]
    for run in args.runs:
        before = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines() if line.strip()]
        after, changes = replay_run(run, labels, read=args.read)
        t0, t1 = tally(before, labels), tally(after, labels)
        total[0] += t0["score"]
        total[1] += t1["score"]
        print(f"{run.parent.parent.name}/{run.name}")
        print(f"  before: {_line(t0)}")
        print(f"  after:  {_line(t1)}")
        print("\n".join(changes) if changes else "  no draft changed its fate")
    print(f"total score: before {total[0]}, after {total[1]}")


if __name__ == "__main__":
    main()
