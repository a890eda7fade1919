"""Rule RT's reader, offline: the generator LoRA-tuned to read one manual entry against a question.

    python bench/entry_reader.py pairs OUT.jsonl t45 t46 ...         # each option question's gold entry and rivals
    python bench/entry_reader.py train PAIRS.jsonl [ADAPTER_DIR]      # LoRA on rule R's yes/no prompt (default:
                                                                      # ragkit's cache, where rule R finds it)
    python bench/entry_reader.py score PAIRS.jsonl [--adapter DIR]    # P(yes) of the gold entry against its rivals
    python bench/entry_reader.py replay RUN [RUN ...] --adapter DIR   # rule R with each reader on withheld drafts
    python bench/entry_reader.py lookup RUN [RUN ...] --adapter DIR   # rule RL: the named option's entry looked up

Rule R (ragkit.entry_reading) asks the generator "Is the option in this entry the answer to the question?" of the
draft's own entry and of the ENTRY_RIVALS entries nearest the question. The base model's reading separated right
drafts from wrong ones on manual-worded questions and not on user-worded ones (docs/design-notes.md). Here the
same prompt is trained: for every answerable question of the named trials whose gold option heads an entry of
its page (ragkit.entries.answer_entries, the gate rule R uses), the gold entry is a "yes" and the entries nearest
the question in meaning (MiniLM, as rule R orders its rivals) are "no". `score` reads the gold entry and its
ENTRY_RIVALS rivals with the base model and, with --adapter, the tuned one, and prints the AUROC of gold against
rival readings and how often the gold entry reads highest, by question wording (`category`).

The adapter rule R uses by default (rule RT2): `pairs PAIRS t26 t27 ... t90`, then `train PAIRS --steps 64`.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.connectors.files import parse_file
from ragkit.entries import ENTRY_CHARS as EMBED_CHARS
from ragkit.entries import answer_entries
from ragkit.entry_reading import ENTRY_CHARS, ENTRY_RIVALS, entry_messages

HERE = Path(__file__).resolve().parent
MODEL = "Qwen2.5-Coder-1.5B-Instruct"
KEPT_RIVALS = 8  # rivals stored per question, nearest the question first
TRAIN_RIVALS = 2  # "no" examples per question: the two rivals nearest the question (the ones rule R meets)


def trials(names: set[str]) -> list[tuple[str, Path, list[Path]]]:
    """(name, questions file, documents) of the named trials in bench/run_trials.sh (plain paths only)."""
    out = []
    for m in re.finditer(r'^  "(t\w+) (\S+) ([^"]+)"', (HERE / "run_trials.sh").read_text(), re.M):
        name, data, docs = m.groups()
        if name in names and "$" not in docs:
            out.append((name, HERE / "data" / f"{data}.jsonl", [Path(d.split(":")[0]) for d in docs.split()]))
    return out


def auroc(pos: list[float], neg: list[float]) -> float | None:
    """P(a gold reading > a rival reading), ties half."""
    if not pos or not neg:
        return None
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def _unit(vectors: Any) -> np.ndarray:
    v = np.asarray(vectors, dtype=float)
    return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)


def make_pairs(out: Path, names: list[str]) -> None:
    from ragkit.embedding import SentenceTransformerEmbedder

    embed = SentenceTransformerEmbedder("all-MiniLM-L6-v2").embed
    rows = []
    cache: dict[str, np.ndarray] = {}
    for name, data, docs in trials(set(names)):
        texts = [parse_file(d).text for d in docs if d.exists()]
        for q in map(json.loads, data.read_text().splitlines()):
            if not q.get("answerable"):
                continue
            found = next((f for a in q["answers"] if (f := answer_entries(q["question"], a, texts))), None)
            if found is None or not found.others:
                continue
            others = list(found.others)
            new = [o for o in {o[:EMBED_CHARS] for o in others} | {q["question"]} if o not in cache]
            cache.update(zip(new, _unit(embed(new)), strict=True))  # a page's entries embedded once
            vec = np.asarray([cache[q["question"]], *(cache[o[:EMBED_CHARS]] for o in others)])
            order = np.argsort(-(vec[1:] @ vec[0]), kind="stable")
            rest = [others[i][:ENTRY_CHARS] for i in order]
            rows.append(
                {
                    "trial": name,
                    "id": q["id"],
                    "question": q["question"],
                    "category": q.get("category", "-"),
                    "named": found.named,
                    "own": found.own[:ENTRY_CHARS],
                    "rivals": rest[:KEPT_RIVALS],
                }
            )
        print(f"{name}: {sum(r['trial'] == name for r in rows)} option questions", file=sys.stderr)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} questions -> {out}", file=sys.stderr)


def _base() -> Any:
    from ragkit.generation.hf import TransformersGenerator

    return TransformersGenerator(MODEL, dtype="bfloat16")


def train(pairs: Path, out: Path, epochs: int, lr: float, steps: int | None = None) -> None:
    from ragkit.finetune.examples import SftExample, tokenize_example
    from ragkit.finetune.train import FinetuneOptions, ProgressEvent, train_lora

    gen = _base()
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    data = []
    for r in rows:
        negatives = r["rivals"][:TRAIN_RIVALS]
        for entry, target in [(r["own"], "yes"), *((e, "no") for e in negatives)]:
            ex = SftExample(tuple(entry_messages(r["question"], entry)), target, "answer", r["question"], "entry", ())
            data.append(tokenize_example(gen, ex))
    random.Random(0).shuffle(data)
    tokens = sum(len(ids) for ids, _ in data)
    print(f"{len(data)} examples from {len(rows)} questions, {tokens} tokens", file=sys.stderr)
    opts = FinetuneOptions(epochs=epochs, steps=steps, batch_size=8, micro_batch=4, lr=lr, lora_dropout=0.05)
    t0 = time.time()

    def show(e: ProgressEvent) -> None:
        if e.done % 10 == 0 or e.done == e.total:
            print(f"step {e.done}/{e.total} loss {e.loss:.4f} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    tok = gen.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model, log = train_lora(gen.model.train(), data, opts, pad_id=int(pad), device="cpu", progress=show)
    model.save_pretrained(str(out))
    made = {"pairs": str(pairs), "examples": len(data), "steps": log.steps, "seconds": log.seconds}
    (out / "train.json").write_text(json.dumps(made))
    print(f"saved {out} ({log.seconds:.0f} s)", file=sys.stderr)


def _readers(gen: Any, adapter: Path | None, also: Path | None = None) -> dict[str, Any]:
    """YesNoScorers over one loaded model: "base", with an adapter "tuned" (its LoRA on; "base" turns it off), and
    with `also` a second adapter "also" beside it. Each is the generator itself with its model swapped, so P(yes) is
    read exactly as rule R reads it."""
    if adapter is None:
        return {"base": gen}
    from peft import PeftModel

    tuned = copy.copy(gen)
    tuned.model = PeftModel.from_pretrained(gen.model, str(adapter)).eval()
    if also is not None:
        tuned.model.load_adapter(str(also), adapter_name="also")

    class _Base:
        def yes_probability(self, messages: list[dict[str, str]]) -> float:
            with tuned.model.disable_adapter():
                return tuned.yes_probability(messages)

    class _Adapter:
        def __init__(self, name: str) -> None:
            self.name = name

        def yes_probability(self, messages: list[dict[str, str]]) -> float:
            tuned.model.set_adapter(self.name)
            return tuned.yes_probability(messages)

    out = {"base": _Base(), "tuned": _Adapter("default")}
    return out | ({"also": _Adapter("also")} if also is not None else {})


def score(pairs: Path, adapter: Path | None, out: Path | None, also: Path | None = None, base: bool = True) -> None:
    readers = _readers(_base(), adapter, also)
    if not base and adapter is not None:
        readers.pop("base")
    results = []
    for r in map(json.loads, pairs.read_text().splitlines()):
        entries = [r["own"], *r["rivals"][:ENTRY_RIVALS]]
        row = {"id": r["id"], "category": r["category"], "named": r["named"]}
        for name, reader in readers.items():
            row[name] = [reader.yes_probability(entry_messages(r["question"], e)) for e in entries]
        results.append(row)
    if out:
        out.write_text("".join(json.dumps(r) + "\n" for r in results))
    report(results, list(readers))


def replay(
    runs: list[Path],
    adapter: Path,
    labels_file: Path,
    reasons: list[str],
    base: bool,
    released: bool = False,
    also: Path | None = None,
    read_below: float = 0.0,
) -> None:
    """Rule R's release (floor, margin, rivals as ragkit.entry_reading) with the tuned reading (and the base one with
    `base`), on every draft withheld for one of `reasons` (flags), and with `released` every draft an entry reading
    delivered (its sources then hold a looked-up entry, rule RL), and every draft the model's own reading delivered at
    under `read_below` (rule RW's releases: what rule R would have done with them at a higher release floor), with
    its hand label."""
    from collections import Counter

    from trial_tally import load_labels

    from ragkit.citations import strip_markers
    from ragkit.embedding import SentenceTransformerEmbedder
    from ragkit.entry_reading import ENTRY_RELEASE_MIN, READ_ENTRY, read_entries, reads_as_answer

    labels = load_labels(labels_file)
    embed = SentenceTransformerEmbedder("all-MiniLM-L6-v2").embed
    readers = _readers(_base(), adapter, also)
    if not base:
        readers.pop("base")
    counts: Counter[str] = Counter()
    for run in runs:
        for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines()):
            held = s.get("withheld") or {}
            freed = (s.get("released") or {}).get("detail", "")
            own = re.search(r"the model gave ([\d.]+) that the sources state it", freed)
            if (released and READ_ENTRY in freed) or (own and float(own.group(1)) < read_below):
                held = {"draft": strip_markers(s["answer"]), "label": s["answer"].strip()}
            elif not s.get("abstained") or held.get("reason") not in reasons or not held.get("draft"):
                continue
            label = labels.get((s["id"], held.get("label", held["draft"]).strip()), "?")
            if not s["answerable"]:
                label = "invention" if label == "?" else label
            line = f"{run.name[:32]:32s} {s['id']:9s} {label:9s}"
            for name, reader in readers.items():
                read = read_entries(s["question"], held["draft"], [c["text"] for c in s["contexts"]], reader, embed)
                if read is None:
                    break
                free = reads_as_answer(read, ENTRY_RELEASE_MIN[MODEL])
                counts[f"{name} {'RELEASED' if free else 'kept'} {label}"] += 1
                rival = "-" if read.rival is None else f"{read.rival:.2f}"
                line += f" {name} {read.named:10s} {read.own:.2f}/{rival}"
                line += " RELEASED" if free else " kept"
            else:
                print(line, flush=True)
    for k, v in sorted(counts.items()):
        print(f"{k}: {v}")


def lookup(runs: list[Path], adapter: Path, labels_file: Path, reasons: list[str], also: Path | None = None) -> None:
    """Rule RL replayed with the tuned reading: a draft withheld for one of `reasons` that names an option heading
    no entry in view has that option's entry looked up among the other chunks of the documents in view, and read
    beside the rivals in view (floor and margin as rule R's default)."""
    from collections import Counter

    from trial_tally import load_labels

    import ragkit
    from ragkit.embedding import SentenceTransformerEmbedder
    from ragkit.entries import answer_entries, heads_entry, named_option
    from ragkit.entry_reading import ENTRY_RELEASE_MIN, read_entries, reads_as_answer

    labels = load_labels(labels_file)
    embed = SentenceTransformerEmbedder("all-MiniLM-L6-v2").embed
    readers = _readers(_base(), adapter, also)
    readers.pop("base")
    floor = ENTRY_RELEASE_MIN[MODEL]
    counts: Counter[str] = Counter()
    for run in runs:
        kb = ragkit.open(run.parent.parent, create=False)
        for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines()):
            held = s.get("withheld") or {}
            draft, q = held.get("draft") or "", s["question"]
            if not s.get("abstained") or held.get("reason") not in reasons or not draft:
                continue
            sources = [c["text"] for c in s["contexts"]]
            named = named_option(q, draft)
            if named is None or answer_entries(q, draft, sources) is not None:
                continue
            label = labels.get((s["id"], draft.strip()), "?")
            label = "invention" if not s["answerable"] and label == "?" else label
            docs = dict.fromkeys(c.doc_id for c in kb.chunks([c["chunk_id"] for c in s["contexts"]]).values())
            texts = (t for d in docs for _, t in kb.store.document_spans(d) if t not in sources)
            found = next((t for t in texts if heads_entry(named, t)), None)
            line = f"{run.name[:32]:32s} {s['id']:9s} {label:9s} {named:14s}"
            if found is None:
                counts[f"no entry {label}"] += 1
                print(f"{line} no entry in its documents", flush=True)
                continue
            for name, reader in readers.items():
                read = read_entries(q, draft, [*sources, found], reader, embed)
                assert read is not None
                free = reads_as_answer(read, floor)
                counts[f"{name} {'RELEASED' if free else 'kept'} {label}"] += 1
                rival = "-" if read.rival is None else f"{read.rival:.2f}"
                line += f" {name} {read.own:.2f}/{rival} {'RELEASED' if free else 'kept'}"
            print(line, flush=True)
        kb.close()
    for k, v in sorted(counts.items()):
        print(f"{k}: {v}")


def report(results: list[dict[str, Any]], readers: list[str]) -> None:
    """AUROC of gold against rival readings, and the share of questions whose gold entry reads highest."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups["all"].append(r)
        groups[r["category"]].append(r)
    for g, rs in sorted(groups.items()):
        for name in readers:
            gold = [r[name][0] for r in rs]
            rival = [x for r in rs for x in r[name][1:]]
            top = sum(r[name][0] > max(r[name][1:], default=-1) for r in rs)
            a = auroc(gold, rival)
            print(f"{g:7s} {name:6s} n={len(rs):3d} AUROC {a if a is None else round(a, 3)} gold first {top}/{len(rs)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("out", type=Path)
    p.add_argument("trials", nargs="+")
    t = sub.add_parser("train")
    t.add_argument("pairs", type=Path)
    t.add_argument("out", type=Path, nargs="?")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--steps", type=int, help="optimizer steps (default: the epochs); rule RT2 used 64")
    s = sub.add_parser("score")
    s.add_argument("pairs", type=Path)
    s.add_argument("--adapter", type=Path)
    s.add_argument("--out", type=Path)
    s.add_argument("--also", type=Path, help="a second adapter read beside --adapter")
    s.add_argument("--no-base", dest="base", action="store_false", help="skip the base model's reading")
    r = sub.add_parser("replay")
    r.add_argument("runs", nargs="+", type=Path)
    r.add_argument("--adapter", type=Path, required=True)
    r.add_argument("--labels", type=Path, default=HERE / "data" / "trial_labels.jsonl")
    r.add_argument("--reasons", nargs="+", default=["off_question"], help="the flags whose drafts are replayed")
    r.add_argument("--base", action="store_true", help="also read with the base model")
    r.add_argument("--released", action="store_true", help="also the drafts an entry reading delivered")
    r.add_argument(
        "--read-below",
        type=float,
        default=0.0,
        metavar="P",
        help="also the drafts the model's own reading delivered at under P (generator.release_min_verified)",
    )
    r.add_argument("--also", type=Path, help="a second adapter read beside --adapter")
    lk = sub.add_parser("lookup")
    lk.add_argument("runs", nargs="+", type=Path)
    lk.add_argument("--adapter", type=Path, required=True)
    lk.add_argument("--labels", type=Path, default=HERE / "data" / "trial_labels.jsonl")
    lk.add_argument("--reasons", nargs="+", default=["unsourced", "off_question"])
    lk.add_argument("--also", type=Path, help="a second adapter read beside --adapter")
    args = ap.parse_args()
    if args.cmd == "pairs":
        make_pairs(args.out, args.trials)
    elif args.cmd == "train":
        from ragkit.generation.entry_reader import entry_adapter_dir

        train(args.pairs, args.out or entry_adapter_dir(MODEL), args.epochs, args.lr, args.steps)
    elif args.cmd == "lookup":
        lookup(args.runs, args.adapter, args.labels, args.reasons, args.also)
    elif args.cmd == "replay":
        replay(args.runs, args.adapter, args.labels, args.reasons, args.base, args.released, args.also, args.read_below)
    else:
        score(args.pairs, args.adapter, args.out, args.also, args.base)


if __name__ == "__main__":
    main()
