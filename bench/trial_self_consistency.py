"""Self-consistency on the real-document trials: do more samples agree with the answer ragkit delivered?

    python bench/trial_self_consistency.py OUT.jsonl KB/runs/NAME [KB/runs/NAME ...] [--samples 4] [--per-label 15]
    python bench/trial_self_consistency.py OUT.jsonl --report

bench/self_consistency.py measured the same signal on the synthetic dev split's drafts (Qwen 0.5B); this one reads
the trials' runs and their hand labels (the delivered answers of any generator the KB records).

For each delivered answer of each run (a `ragkit eval run` on a real-document trial, whose KB is KB), it asks the
question again from the same sources with `--samples N` sampling (temperature generator.sample_temperature) and
records the share of the N answers that agree with the delivered one: their content words overlap by half or
more (Jaccard), as `--samples` votes, or both abstain. `--per-label K` keeps every answer labelled wrong or
invention (bench/data/trial_labels.jsonl) and K labelled right, spread over the runs, to bound the cost (each
sample is a generation). OUT is appended to, so a killed run continues. `--report` prints the AUROC of the
agreement for right against wrong-or-invented answers.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from self_consistency import _auroc  # noqa: E402 - one AUROC for both measurements

LABELS = Path(__file__).parent / "data" / "trial_labels.jsonl"
_ABSTAIN = re.compile(r"^\s*I don't know based on the provided sources", re.I)


def agreement(answer: str, samples: Sequence[str], min_overlap: float = 0.5) -> float:
    """The share of `samples` that agree with `answer` (content-word Jaccard >= min_overlap, or both abstain)."""
    from ragkit.citations import strip_markers
    from ragkit.textutil import content_words

    def key(text: str) -> frozenset[str]:  # as `--samples` votes (ragkit.citations._answer_key)
        return frozenset({"\x00abstain"}) if _ABSTAIN.match(text) else frozenset(content_words(strip_markers(text)))

    mine = key(answer)
    agree = [k == mine or (bool(k | mine) and len(k & mine) / len(k | mine) >= min_overlap) for k in map(key, samples)]
    return sum(agree) / len(agree) if agree else 0.0


def _labels() -> dict[tuple[str, str], str]:
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(r["id"], r["answer"]): r["label"] for r in rows}


def _chosen(runs: list[Path], labels: dict[tuple[str, str], str], per_label: int | None) -> set[tuple[str, str]]:
    bad, good = [], []
    for run in runs:
        for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r.get("abstained"):
                continue
            label = labels.get((r["id"], r["answer"]))
            if label in ("wrong", "invention"):
                bad.append((str(run), r["id"]))
            elif label in ("right", "supported"):
                good.append((str(run), r["id"]))
    if per_label is None or not good:
        return set(bad + good)
    step = len(good) / min(per_label, len(good))
    return set(bad) | {good[int(i * step)] for i in range(min(per_label, len(good)))}


def measure(out: Path, runs: list[Path], samples: int, per_label: int | None) -> None:
    import ragkit
    from ragkit import build
    from ragkit.answering import answer_question

    labels = _labels()
    chosen = _chosen(runs, labels, per_label)
    done = set()
    if out.exists():
        done = {(r["run"], r["id"]) for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    with out.open("a", encoding="utf-8") as sink:
        for run in runs:
            with ragkit.open(run.parent.parent, create=False) as kb:
                opts = build.answer_options(kb.config, samples=samples)
                for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
                    r = json.loads(line)
                    if (str(run), r["id"]) not in chosen or (str(run), r["id"]) in done:
                        continue
                    t = time.perf_counter()
                    again = answer_question(
                        r["question"], kb.search(r["question"]), kb.generator, opts, embed=kb.embedder.embed
                    )
                    row = {
                        "run": str(run),
                        "id": r["id"],
                        "label": labels.get((r["id"], r["answer"])),
                        "agreement": agreement(r["answer"], again.samples),
                        "samples": list(again.samples),
                        "seconds": round(time.perf_counter() - t, 1),
                    }
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()


def report(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    good = [r["agreement"] for r in rows if r["label"] in ("right", "supported")]
    bad = [r["agreement"] for r in rows if r["label"] in ("wrong", "invention")]
    print(f"{len(good)} right, {len(bad)} wrong or invented; AUROC {_auroc(good, bad) or 0.0:.3f}")
    print(f"median seconds per answer: {statistics.median(r['seconds'] for r in rows):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--per-label", type=int, default=None)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    if not args.report:
        measure(args.out, args.runs, args.samples, args.per_label)
    report(args.out)


if __name__ == "__main__":
    main()
