"""Honest abstention on the dev set (docs/devset.md): abstention per construction, false abstention and answer
quality of `ragkit eval` on three corpora, for one generator.

    python bench/devset.py --workdir /tmp/devset [--split heldout] [--generator Qwen2.5-Coder-0.5B-Instruct]
        [--parts halueval --model NAME]   # an adapter `ragkit finetune --name NAME` saved in that part's KB
        [--fallback Qwen2.5-Coder-1.5B-Instruct [--min-verified 0.72] [--fallback-min-verified 0.5]]  # a second model
        [--own-min-verified 0.5]  # a model alone reads its own answers
        [--dtype float32|bfloat16]  # generator.dtype for the runs (default: the KB's, auto)
        [--set generator.template_file=bench/data/manual_example.toml]  # any other setting, as `eval run --set`

Builds (once, under --workdir) a KB of the sample corpus, one of the Python reference topics (pydoc_data) and
one of HaluEval-QA passages (answerable items' own passages, answer-removed items' passages without the
answer's sentences; off-topic items' passages left out), then runs each part of the chosen split through
`ragkit eval run` (the CLI, as a user would) and prints one table: per corpus and construction, the share
of questions answered with the abstention phrase, the gold-answer rate, unsupported claims and seconds per
answer. Results go to --workdir/results-<split>-<generator>.json as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT / "examples" / "devset"
HALUEVAL = {"limit": 120, "unanswerable": 0.25, "removed": 0.25, "seed": 7}  # 30 off-topic, ~25 answer-removed


def _ragkit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("ragkit")  # the console script beside this Python
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env)


def _corpus_pydocs(folder: Path) -> Path:
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    for name, body in sorted(topics.items()):
        (folder / f"topic-{name}.md").write_text(f"# {name}\n\n{body}", encoding="utf-8")
    return folder


def _halueval_parts(work: Path) -> tuple[Path, dict[str, Path]]:
    """The HaluEval corpus and the dataset split in two halves (dev = even positions, heldout = odd)."""
    from ragkit.evals.datasets import load_halueval_qa, write_contexts

    ds = load_halueval_qa(HALUEVAL["limit"], HALUEVAL["unanswerable"], HALUEVAL["seed"], removed=HALUEVAL["removed"])
    corpus = write_contexts(ds, work / "corpus-halueval")
    files = {}
    for split, parity in (("dev", 0), ("heldout", 1)):
        path = work / f"halueval_{split}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for pos, item in enumerate(ds.items):
                if pos % 2 == parity:
                    rec = item.to_json()
                    rec.pop("context", None)
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        files[split] = path
    return corpus, files


def _kb(work: Path, name: str, corpus: Path) -> Path:
    kb = work / f"kb-{name}"
    if not (kb / "manifest.json").exists():
        shutil.rmtree(kb, ignore_errors=True)
        res = _ragkit("ingest", str(corpus), "--kb", str(kb))
        if res.returncode not in (0, 3):
            raise SystemExit(f"ingest {name} failed: {res.stderr.strip()}")
    return kb


def _contains(sample: dict[str, object]) -> float:
    """Answer-contains-gold of what ragkit would have delivered without the grounding check."""
    from ragkit.evals.metrics import contains_answer

    withheld = sample.get("withheld")
    if isinstance(withheld, dict):
        return contains_answer(str(withheld["draft"]), list(sample.get("gold_answers", [])))  # type: ignore[arg-type]
    return _delivered_contains(sample)


def _delivered_contains(sample: dict[str, object]) -> float:
    """Answer-contains-gold of the delivered answer, scored now (runs made before a metric fix re-score)."""
    from ragkit.evals.metrics import contains_answer

    if sample.get("abstained"):
        return 0.0
    return contains_answer(str(sample.get("answer", "")), list(sample.get("gold_answers", [])))  # type: ignore[arg-type]


def _gated(sample: dict[str, Any], floor: float) -> dict[str, Any]:
    """The sample as a higher relevance floor would have answered it: below the floor, the abstention phrase
    before generation (no draft, no claims); exact, since the floor only moves questions to that abstention."""
    if (
        floor <= 0
        or sample.get("relevance") is None
        or sample["relevance"] >= floor
        or sample.get("abstained")
        and ("withheld" not in sample)
    ):
        return sample
    gated = {k: v for k, v in sample.items() if k not in ("withheld", "claims")}
    gated.update(abstained=True, answer="I don't know based on the provided sources.", timings={"total": 0.0})
    return gated


def _rows(run_dir: Path, floor: float = 0.0) -> list[dict[str, object]]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    samples = [_gated(json.loads(line), floor) for line in lines if line.strip()]
    out = []
    for kind in sorted({s.get("construction") or "?" for s in samples}):
        group = [s for s in samples if (s.get("construction") or "?") == kind and s.get("status") == "ok"]
        claims = [c for s in group if not s.get("abstained") for c in s.get("claims", [])]
        answerable = [s for s in group if s.get("answerable")]
        out.append(
            {
                "construction": kind,
                "n": len(group),
                "abstained": sum(bool(s.get("abstained")) for s in group) / max(1, len(group)),
                # of which the grounding check withheld a drafted answer (0 with min_grounding = 0)
                "withheld": sum("withheld" in s for s in group) / max(1, len(group)),
                "contains_gold": (
                    sum(_delivered_contains(s) for s in answerable) / len(answerable) if answerable else None
                ),
                # answerable questions whose withheld draft held the gold answer: right answers lost to a check
                "withheld_right": (
                    sum(_contains(s) for s in answerable if "withheld" in s) / len(answerable) if answerable else None
                ),
                # the same run as if min_grounding were 0: withheld drafts count as delivered answers
                "abstained_without_grounding": sum(bool(s.get("abstained")) and "withheld" not in s for s in group)
                / max(1, len(group)),
                "contains_gold_without_grounding": (
                    sum(_contains(s) for s in answerable) / len(answerable) if answerable else None
                ),
                "unsupported_claims": sum(not c["supported"] for c in claims) / len(claims) if claims else None,
                "claims": len(claims),
                "seconds": sum(s.get("timings", {}).get("total", 0.0) for s in group) / max(1, len(group)),
            }
        )
    return out


def _totals(parts: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per construction over every corpus: shares weighted by questions, unsupported claims by claims."""
    out = []
    for kind in sorted({r["construction"] for rows in parts.values() for r in rows}):
        rows = [r for rs in parts.values() for r in rs if r["construction"] == kind]
        n = sum(r["n"] for r in rows)
        golds = [r for r in rows if r["contains_gold"] is not None]
        claims = sum(r.get("claims", 0) for r in rows)
        out.append(
            {
                "construction": kind,
                "n": n,
                "abstained": sum(r["abstained"] * r["n"] for r in rows) / n,
                "withheld": sum(r["withheld"] * r["n"] for r in rows) / n,
                "contains_gold": sum(r["contains_gold"] * r["n"] for r in golds) / sum(r["n"] for r in golds)
                if golds
                else None,
                "withheld_right": sum((r.get("withheld_right") or 0) * r["n"] for r in golds)
                / sum(r["n"] for r in golds)
                if golds
                else None,
                "unsupported_claims": sum((r["unsupported_claims"] or 0) * r.get("claims", 0) for r in rows) / claims
                if claims
                else None,
                "claims": claims,
                "seconds": sum(r["seconds"] * r["n"] for r in rows) / n,
            }
        )
    return out


def _delivered_unsupported(totals: list[dict[str, Any]]) -> str:
    claims = sum(r["claims"] for r in totals)
    bad = sum((r["unsupported_claims"] or 0) * r["claims"] for r in totals)
    return f"unsupported claims in delivered answers, every construction: {bad / max(1, claims):.3f} of {claims}"


def _print_rows(name: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        gold = "-" if r["contains_gold"] is None else f"{r['contains_gold']:.2f}"
        right = "-" if r.get("withheld_right") is None else f"{r['withheld_right']:.2f}"
        uns = "-" if r["unsupported_claims"] is None else f"{r['unsupported_claims']:.2f}"
        print(
            f"{name:<9} {r['construction']:<17} {r['n']:>3} {r['abstained']:>9.2f} {r['withheld']:>8.2f} {right:>8} "
            f"{gold:>6} {uns:>7} {r['seconds']:>8.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--split", choices=["dev", "heldout"], default="dev")
    ap.add_argument("--generator", default=None, help="as `ragkit eval run --generator` [default: the KB's]")
    ap.add_argument("--model", default=None, help="as `ragkit eval run --model`: an adapter of `ragkit finetune`")
    ap.add_argument("--dtype", default=None, help="as `ragkit eval run --dtype` [default: the KB's, auto]")
    ap.add_argument("--fallback", default=None, help="as `ragkit eval run --fallback`")
    ap.add_argument("--min-verified", type=float, default=None, help="as `ragkit eval run --min-verified`")
    ap.add_argument(
        "--fallback-min-verified", type=float, default=None, help="as `ragkit eval run --fallback-min-verified`"
    )
    ap.add_argument("--own-min-verified", type=float, default=None, help="as `ragkit eval run --own-min-verified`")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as `ragkit eval run --set`")
    ap.add_argument("--parts", default="sample,pydocs,halueval")
    ap.add_argument("--rescore", type=Path, default=None, help="print the table of an earlier results file again")
    ap.add_argument("--min-relevance", type=float, default=0.0, help="--rescore: as if the floor had been this")
    args = ap.parse_args()
    if args.rescore:
        parts = json.loads(args.rescore.read_text())["parts"]
        rescored = {n: _rows(Path(p["run_dir"]), args.min_relevance) for n, p in parts.items()}
        for name, rows in rescored.items():
            _print_rows(name, rows)
        _print_rows("all", _totals(rescored))
        print(_delivered_unsupported(_totals(rescored)))
        return
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    parts = {}
    wanted = args.parts.split(",")
    if "sample" in wanted:
        parts["sample"] = (
            _kb(work, "sample", ROOT / "examples" / "sample_corpus"),
            DEVSET / f"sample_{args.split}.jsonl",
        )
    if "pydocs" in wanted:
        corpus = _corpus_pydocs(work / "corpus-pydocs")
        parts["pydocs"] = (_kb(work, "pydocs", corpus), DEVSET / f"pydocs_{args.split}.jsonl")
    if "halueval" in wanted:
        corpus, files = _halueval_parts(work)
        parts["halueval"] = (_kb(work, "halueval", corpus), files[args.split])

    gen = (args.generator or "config") + (f"+{args.model}" if args.model else "")
    gen += f"-then-{Path(args.fallback).name}" if args.fallback else ""
    gen += f"-read-{args.min_verified}" if args.min_verified else ""
    gen += f"-own-{args.fallback_min_verified}" if args.fallback_min_verified is not None else ""
    gen += f"-self-{args.own_min_verified}" if args.own_min_verified else ""
    gen += f"-{args.dtype}" if args.dtype else ""
    gen += "".join(f"-{Path(kv.partition('=')[2]).stem}" for kv in args.set)  # "-manual_example"
    results: dict[str, object] = {
        "split": args.split,
        "generator": gen,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "parts": {},
    }
    print(
        f"{'corpus':<9} {'construction':<17} {'n':>3} {'abstained':>9} {'withheld':>8} {'right_wh':>8} {'gold':>6} "
        f"{'unsupp':>7} "
        f"{'s/answer':>8}"
    )
    for name, (kb, questions) in parts.items():
        t0 = time.perf_counter()
        cmd = ["eval", "run", str(questions), "--kb", str(kb), "--json", "--name", f"devset-{args.split}-{gen}"]
        if args.generator:
            cmd += ["--generator", args.generator]
        if args.model:
            cmd += ["--model", args.model]
        if args.dtype:
            cmd += ["--dtype", args.dtype]
        if args.fallback:
            cmd += ["--fallback", args.fallback]
        if args.min_verified is not None:
            cmd += ["--min-verified", str(args.min_verified)]
        if args.fallback_min_verified is not None:
            cmd += ["--fallback-min-verified", str(args.fallback_min_verified)]
        if args.own_min_verified is not None:
            cmd += ["--own-min-verified", str(args.own_min_verified)]
        for kv in args.set:
            cmd += ["--set", kv]
        res = _ragkit(*cmd)
        if res.returncode != 0:
            raise SystemExit(f"eval {name} failed: {res.stderr.strip() or res.stdout.strip()}")
        run_dir = Path(json.loads(res.stdout)["run_dir"])
        rows = _rows(run_dir)
        results["parts"][name] = {"run_dir": str(run_dir), "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
        _print_rows(name, rows)
    results["all"] = _totals({n: p["rows"] for n, p in results["parts"].items()})
    _print_rows("all", results["all"])
    print(_delivered_unsupported(results["all"]))
    out = work / f"results-{args.split}-{Path(gen).name}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
