"""Retrieval when one KB holds many manuals: is a chunk of the question's own manual, holding its gold answer,
among the top k?

    python bench/multidoc_recall.py KB [--trials t71 ... t100] [--k 1 3 5] [--set retrieval.KEY=VALUE]...

The real-document trials each ask one manual in a KB of its own. A user's KB holds many (the issue's "about
twenty manuals"); there a question in a user's words can be answered from the wrong manual's chunks (du's for a
sort question). KB is one knowledge base holding the trials' documents (`ragkit ingest FOLDER`, where FOLDER holds
the files bench/run_trials.sh names for those trials, under the same names). For each answerable question of
those trials it counts the questions whose first chunk from the trial's own document(s) holding a gold answer
(case-insensitive, as text) ranks within k, and the questions whose top k hold any chunk of their own document.
No generation. Each --set changes a setting for this measurement only, as `ragkit search --set` does.
--rendered reads a KB of the same manual pages rendered as a user saves them (`man -l ar.1.gz > ar.txt`): the
document "ar.1.gz" is then "ar.txt".
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import ragkit

ROOT = Path(__file__).resolve().parent.parent


def trial_documents() -> dict[str, tuple[str, list[str]]]:
    """trial name -> (question file, the names its documents have in a KB) from bench/run_trials.sh."""
    out = {}
    for line in (ROOT / "bench" / "run_trials.sh").read_text(encoding="utf-8").splitlines():
        m = re.match(r'\s*"(t\d+) (\S+) (.+)"\s*$', line)
        if m:
            names = [(s.split(":", 1)[1] if ":" in s else s.rsplit("/", 1)[-1]) for s in m.group(3).split()]
            out[m.group(1)] = (m.group(2), names)
    return out


def rendered_name(name: str) -> str:
    """A man page's name once rendered as text: "ar.1.gz" -> "ar.txt", "openssl-enc.1ssl.gz" -> "openssl-enc.txt"."""
    return re.sub(r"\.\d\w*\.gz$", ".txt", name)


def _value(text: str) -> object:
    """A --set value as TOML would read it ("true", "5", "0.5"), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kb", type=Path)
    ap.add_argument("--trials", nargs="+", default=[f"t{n}" for n in range(71, 101)])
    ap.add_argument("--k", nargs="+", type=int, default=[1, 3, 5])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rendered", action="store_true", help="the KB holds man pages rendered as NAME.txt")
    args = ap.parse_args()
    docs = trial_documents()
    overrides = {k: _value(v) for k, _, v in (kv.partition("=") for kv in args.set)}
    found: Counter[tuple[str, int]] = Counter()
    n = 0
    kb = ragkit.open(args.kb, create=False, **overrides)
    try:
        for trial in args.trials:
            qfile, names = docs[trial]
            if args.rendered:
                names = [rendered_name(name) for name in names]
            items = (ROOT / "bench" / "data" / f"{qfile}.jsonl").read_text(encoding="utf-8").splitlines()
            for item in (json.loads(line) for line in items if line.strip()):
                if not item.get("answerable", True):
                    continue
                n += 1
                gold = [g.lower() for g in item.get("answers") or []]
                hits = kb.search(item["question"], max(args.k))
                own = [h.chunk.uri.rsplit("/", 1)[-1] in names for h in hits]
                holds = [o and any(g in h.chunk.text.lower() for g in gold) for h, o in zip(hits, own, strict=True)]
                rank = next((i for i, ok in enumerate(holds, 1) if ok), 0)
                first_own = next((i for i, o in enumerate(own, 1) if o), 0)
                for k in args.k:
                    found[("gold", k)] += 0 < rank <= k
                    found[("own", k)] += 0 < first_own <= k
    finally:
        kb.close()
    result = {f"{what}@{k}": round(found[(what, k)] / max(n, 1), 3) for what in ("gold", "own") for k in args.k}
    if args.json:
        print(json.dumps({"questions": n, **result}))
        return
    print(f"{n} answerable questions of {len(args.trials)} trials, one KB ({args.kb})")
    labels = (("gold", "own document's chunk with the gold answer"), ("own", "any chunk of its own document"))
    for what, label in labels:
        shares = (f"@{k}: {found[(what, k)]} ({found[(what, k)] / max(n, 1):.3f})" for k in args.k)
        print(f"{label:<44}", "  ".join(shares))


if __name__ == "__main__":
    main()
