"""`ragkit eval [run] DATASET | compare | judge-accuracy | train-judge`: evaluation runs, their comparison, the judges.

Exit codes: 0 success; 1 error; 4 `compare` found a regression past --max-drop; 130 interrupted (the run is
kept; the same command continues it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ragkit.cli.common import (
    AdminOpt,
    AsOpt,
    DbOpt,
    DtypeOpt,
    FallbackMinVerifiedOpt,
    FallbackOpt,
    GeneratorOpt,
    GroupsOpt,
    JsonOpt,
    KbOpt,
    MinVerifiedOpt,
    ModelOpt,
    ModeOpt,
    OwnMinVerifiedOpt,
    ReleaseMinVerifiedOpt,
    check_model_option,
    check_reader,
    db_override,
    err,
    fallback_overrides,
    first_use_of_models,
    out,
    parse_mode,
    plain_progress,
    progress_bar,
    reader,
    user_errors,
)
from ragkit.cli.overrides import SetOpt, parse_sets
from ragkit.cli.scale import RayAddressOpt, RayOpt, check_ray_database, on_ray

EXIT_REGRESSION = 4
PROGRESS_QUESTION_CHARS = 60  # of the current question, shown beside the progress bar


class _RunByDefault(TyperGroup):
    """`ragkit eval DATASET ...` means `ragkit eval run DATASET ...`: running a dataset is what `eval` is for,
    so the short form works; the other subcommands are still found by name."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    add_completion=False,
    help="Evaluate a knowledge base (retrieval, answers, hallucination), compare runs, measure the judges. "
    "`ragkit eval DATASET` is short for `ragkit eval run DATASET`.",
)
JudgeOpt = Annotated[
    str,
    typer.Option(
        "--judge",
        help="Claim judge: minilm-lexical (default, calibrated), lexical, cross-encoder:PATH, trained, llm, llm:MODEL.",
    ),
]


def _dump(data: Any) -> None:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    typer.echo(json.dumps(clean(data), ensure_ascii=False, indent=2, default=str))


def _fmt(v: float | None) -> str:
    from ragkit.evals.report import fmt

    return fmt(v)


@eval_app.command("run")
def run(
    dataset: Annotated[
        str,
        typer.Argument(
            help="A ragkit .jsonl (question, answers, answerable, gold_uris/gold_chunk_ids/gold_passages, "
            "category), a SQuAD-style .json, a BEIR folder, or halueval-qa[:N].",
            show_default=False,
        ),
    ],
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name [default: the dataset's name]")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Questions asked in parallel.")] = 1,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=100, help="Chunks given to the GPT")] = None,
    mode: ModeOpt = None,
    sets: SetOpt = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Answer length limit [default: config]")
    ] = None,
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Score retrieval only; no GPT, no judge (fast).")
    ] = False,
    judge: JudgeOpt = "minilm-lexical",
    generator: GeneratorOpt = None,
    dtype: DtypeOpt = None,
    model: ModelOpt = None,
    fallback: FallbackOpt = None,
    min_verified: MinVerifiedOpt = None,
    fallback_min_verified: FallbackMinVerifiedOpt = None,
    own_min_verified: OwnMinVerifiedOpt = None,
    release_min_verified: ReleaseMinVerifiedOpt = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new run even if an interrupted one with this name exists.")
    ] = False,
    as_user: AsOpt = None,
    groups: GroupsOpt = None,
    admin: AdminOpt = False,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every question of DATASET through the knowledge base and write runs/<timestamp>-<name>/ inside it:
    config.json, samples.jsonl, metrics.json, report.md and report.html.

    An interrupted run (Ctrl-C, a kill) is continued by running the same command again.

    --generator and --model compare generators on one KB without editing ragkit.toml (each run records the
    config it used in config.json).

    --mode compares retrieval modes (hybrid, dense, keyword) the same way.

    --set compares any other setting: --set retrieval.fusion=score --set retrieval.keyword_weight=1.

    On an access-controlled KB the run reads as --as (or --admin): its samples and reports hold only the chunks
    that reader may read.
    """
    import ragkit
    from ragkit.build import generator_overrides

    with user_errors():
        principal = reader(as_user, groups, admin)
        overrides = parse_sets(sets) | dict(db_override(db)) | generator_overrides(kb, generator, model, fallback)
        overrides |= fallback_overrides(min_verified, fallback_min_verified, own_min_verified, release_min_verified)
        overrides |= {"generator.dtype": dtype} if dtype else {}
        overrides |= {"retrieval.mode": m} if (m := parse_mode(mode)) else {}
    with (
        user_errors(),
        ragkit.open(kb, create=False, principal=principal, **overrides) as base,
        progress_bar("Evaluating", as_json) as bar,
    ):
        check_reader(base, principal, as_json)
        check_model_option(base, model)
        first_use_of_models(base.config.generator, as_json or retrieval_only)
        check_ray_database(kb, db, ray, ray_address)
        on_ray(base, ray, ray_address)  # questions in a Ray actor pool; the same run folder
        task = bar.add_task("", total=None)
        in_log = plain_progress("Evaluating (questions)", quiet=as_json)

        def on_sample(done: int, total: int, question: str) -> None:
            bar.update(task, completed=done, total=total, description=question[:PROGRESS_QUESTION_CHARS])
            in_log(done, total)

        result = base.evaluate(
            dataset,
            name=name,
            limit=limit,
            workers=workers,
            judge=judge,
            progress=on_sample,
            resume=not fresh,
            k=k,
            max_new_tokens=max_tokens,
            generate=not retrieval_only,
        )
    if as_json:
        _dump(
            {
                "run_dir": str(result.run_dir),
                "primary_metric": result.primary_metric,
                "samples": result.n_samples,
                "errors": result.n_errors,
                "resumed": result.resumed,
                "metrics": result.metrics,
            }
        )
        return
    from ragkit.evals.metrics import summary_rows

    if result.resumed:
        out.print(f"continued an interrupted run ({result.resumed} questions were already done)")
    out.print(f"{result.n_samples} questions, {result.n_errors} errors -> {result.run_dir}")
    rows = summary_rows(result.metrics)
    width = max([28, *(len(label) for _, label in rows)])  # per-construction labels are longer
    for key, label in rows:
        mark = "  (primary)" if key == result.primary_metric else ""
        out.print(f"  {label:<{width}} {_fmt(result.metrics[key])}{mark}")
    floor = result.metrics.get("abstention/suggested_min_relevance")
    if floor is not None:
        out.print(
            f"  {'suggested min_relevance':<{width}} {floor:.3f}  (best abstention trade-off on these questions; "
            "set generator.min_relevance or ask --min-relevance)"
        )
    out.print(f"report: {result.run_dir / 'report.html'}")
    if not retrieval_only:
        from ragkit.evals.report import judge_caveat

        err.print(judge_caveat(judge), style="dim", markup=False)


@eval_app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="Baseline run directory (kb/runs/...).", show_default=False)],
    run_b: Annotated[Path, typer.Argument(help="Run directory to compare with the baseline.", show_default=False)],
    metric: Annotated[
        str | None, typer.Option("--metric", help="Metric for wins/losses and the regression check [default: primary]")
    ] = None,
    max_drop: Annotated[
        float | None,
        typer.Option(
            "--max-drop", min=0.0, help="Exit 4 when METRIC gets worse than this from A to B (in its own units)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show two runs' metrics side by side with deltas (B - A) and which questions got better or worse.

    For CI: with --max-drop, a regression of --metric past it exits with code 4.
    """
    from ragkit.evals.compare import compare_runs

    with user_errors():
        cmp = compare_runs(run_a, run_b, metric)
        regression = cmp.regression(max_drop) if max_drop is not None else None
    if as_json:
        _dump(
            {
                "run_a": str(cmp.run_a),
                "run_b": str(cmp.run_b),
                "metric": cmp.metric,
                "metrics": {
                    d.metric: {"a": d.a, "b": d.b, "delta": d.delta, "improved": d.improved} for d in cmp.deltas
                },
                "wins": list(cmp.wins),
                "losses": list(cmp.losses),
                "ties": cmp.ties,
                "only_in_one": cmp.only_in_one,
                "regression": regression,
            }
        )
    else:
        out.print(f"A: {cmp.run_a}\nB: {cmp.run_b}")
        out.print(f"{'metric':<36} {'A':>9} {'B':>9} {'B - A':>9}")
        for d in cmp.deltas:
            if d.a is None and d.b is None:
                continue
            color = "" if d.improved is None else ("green" if d.improved else "red")
            delta = "-" if d.delta is None else f"{d.delta:+.3f}"
            line = f"{d.metric:<36} {_fmt(d.a):>9} {_fmt(d.b):>9} {delta:>9}"
            out.print(f"[{color}]{line}[/{color}]" if color else line, markup=bool(color))
        out.print(
            f"per question on {cmp.metric}: {len(cmp.wins)} better, {len(cmp.losses)} worse, {cmp.ties} same"
            + (f"; {cmp.only_in_one} in one run only" if cmp.only_in_one else "")
        )
        if cmp.losses:
            out.print("worse: " + ", ".join(cmp.losses[:20]) + (" ..." if len(cmp.losses) > 20 else ""))
        if regression is not None:
            err.print(f"[red]Regression: {cmp.metric} got worse by {regression:.4f} (max drop {max_drop}).[/red]")
    if regression is not None:
        raise typer.Exit(EXIT_REGRESSION)


@eval_app.command("judge-accuracy")
def judge_accuracy(
    judges: Annotated[
        list[str] | None,
        typer.Option("--judge", help="Judge to measure (repeatable) [default: minilm-lexical and lexical]"),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=2, help="Only the first N held-out pairs.")] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Refit the minilm-lexical judge on the calibration split first and print "
            "its weights (to paste into ragkit/evals/judges.py).",
        ),
    ] = False,
    parts: Annotated[
        list[str] | None,
        typer.Option(
            "--part",
            help="Which labelled pairs (repeatable): halueval (hallucinated answers) and copied-number (a number "
            "or name copied from a neighbouring fact, built from the dev set) [default: both]",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure judges on held-out labelled HaluEval-QA pairs (right vs hallucinated answer as "Q? A." claims
    against the item's knowledge, length-matched): balanced accuracy, precision, recall and F1 for
    "unsupported"."""
    from ragkit.errors import UsageError
    from ragkit.evals import judges as J

    names = judges or ["minilm-lexical", "lexical"]
    chosen = list(dict.fromkeys(parts or J.PARTS))
    by_part: dict[str, dict[str, Any]] = {}
    calibrated: dict[str, Any] = {}
    with user_errors():
        unknown = [p for p in chosen if p not in J.PARTS]
        if unknown:
            raise UsageError(f"unknown --part {unknown[0]!r}; use one of: {', '.join(J.PARTS)}")
        pairs_of = {part: J.judge_pairs(part, "heldout")[:limit] for part in chosen}
        for part in chosen:
            by_part[part] = {"pairs": len(pairs_of[part]), "judges": {}}
        for spec in names:
            judge = J.make_judge(spec)
            if calibrate and isinstance(judge, J.EmbeddingLexicalJudge):
                cal = J.halueval_judge_pairs("calibration")
                judge.calibrate([p.claim for p in cal], [p.context for p in cal], [p.unsupported for p in cal])
                calibrated = {"weights": judge.weights, "bias": judge.bias, "threshold": judge.threshold}
            for part in chosen:
                by_part[part]["judges"][judge.name] = J.judge_accuracy(judge, pairs_of[part])
    if as_json:
        first = by_part.get("halueval") or next(iter(by_part.values()))  # the old top-level shape, kept
        extra = {"calibrated": calibrated} if calibrated else {}
        _dump({"pairs": first["pairs"], "judges": first["judges"], "parts": by_part, **extra})
        return
    titles = {"halueval": "held-out HaluEval-QA pairs", "copied-number": "held-out copied-number pairs (dev set)"}
    for part, result in by_part.items():
        out.print(f"{titles[part]}: {result['pairs']} (half unsupported)")
        out.print(f"{'judge':<28} {'bal.acc':>8} {'prec':>7} {'recall':>7} {'F1':>7} {'thresh':>7}")
        for name, r in result["judges"].items():
            out.print(
                f"{name:<28} {_fmt(r['balanced_accuracy']):>8} {_fmt(r['precision']):>7} {_fmt(r['recall']):>7} "
                f"{_fmt(r['f1']):>7} {_fmt(r['threshold']):>7}"
            )
    if calibrated:
        out.print(f"calibrated minilm-lexical: {calibrated}")


@eval_app.command("train-judge")
def train_judge_cmd(
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Stop after N steps [default: one epoch]")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the training pairs.")] = 1,
    extra: Annotated[
        int,
        typer.Option(
            "--extra", min=0, help="HaluEval items added as answer-swap pairs (own vs another item's answer)."
        ),
    ] = 2000,
    lr: Annotated[float, typer.Option("--lr", min=1e-7, help="Peak learning rate (warm-up, decay).")] = 5e-5,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Training pairs per optimizer step.")] = 16,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to save [default: the cache that --judge trained reads]")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a cross-encoder judge from the bundled MiniLM weights on length-balanced HaluEval-QA pairs
    (never the held-out split); GPU when present. Then measure it: ragkit eval judge-accuracy --judge trained."""
    from ragkit.evals.train_judge import train_judge, training_pairs

    with user_errors(), progress_bar("Training", as_json) as bar:
        pairs = training_pairs(extra_items=extra)
        task = bar.add_task("", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, description=f"loss {loss:.3f}")

        result = train_judge(
            pairs, out=out_dir, epochs=epochs, batch_size=batch_size, lr=lr, max_steps=steps, progress=on_step
        )
    if as_json:
        _dump({**{k: getattr(result, k) for k in result.__slots__}, "path": str(result.path)})
        return
    out.print(
        f"trained on {result.pairs} pairs, {result.steps} steps on {result.device} in {result.seconds:.0f} s; "
        f"loss {result.first_loss:.3f} -> {result.last_loss:.3f}\nsaved to {result.path}\n"
        "measure it: ragkit eval judge-accuracy --judge trained"
        + (f" (or --judge cross-encoder:{result.path})" if out_dir else "")
    )
