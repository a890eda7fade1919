"""`ragkit finetune` and `ragkit models`: LoRA-tune the local GPT on the KB, list the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ragkit.cli.common import (
    EXIT_INTERRUPTED,
    AdminOpt,
    AsOpt,
    DbOpt,
    GroupsOpt,
    JsonOpt,
    KbOpt,
    check_reader,
    db_override,
    err,
    out,
    parse_device,
    progress_bar,
    reader,
    user_errors,
)

_STAGES = {
    "questions": "Writing questions",
    "examples": "Building examples",
    "train": "Training",
    "eval-base": "Evaluating base",
    "eval-tuned": "Evaluating tuned",
}

SMALL_HELDOUT = 20  # fewer held-out questions than this make a before/after table that says little


def finetune_command(
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    train: Annotated[
        Path | None,
        typer.Option(
            "--train",
            exists=True,
            dir_okay=False,
            help='Your own QA JSONL: {"question", "answer", "context" (optional)} per line. It replaces the '
            "questions made from the KB unless --with-kb is given.",
        ),
    ] = None,
    with_kb: Annotated[
        bool, typer.Option("--with-kb", help="With --train: add questions made from the KB to your file's.")
    ] = False,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Optimizer steps [default: --epochs passes over the data]")
    ] = None,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Passes over the examples when --steps is not given.")
    ] = 2,
    name: Annotated[str, typer.Option("--name", help="Saved as kb/models/NAME; use it with ask --model NAME.")] = (
        "finetuned"
    ),
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for sampling, splits and training (same seed, same run).")
    ] = 0,
    chunks: Annotated[
        int, typer.Option("--chunks", min=1, help="Chunks sampled from the KB to write questions from.")
    ] = 64,
    per_chunk: Annotated[int, typer.Option("--per-chunk", min=1, help="Questions per chunk at most.")] = 2,
    model_questions: Annotated[
        int,
        typer.Option(
            "--model-questions",
            min=0,
            help="Chunks the GPT itself writes a question for (kept only if the judge finds the answer in the "
            "chunk; about 10 s each on a CPU); templates do the rest. 0 = templates only.",
        ),
    ] = 8,
    negatives: Annotated[
        float,
        typer.Option(
            "--negatives",
            min=0.0,
            max=1.0,
            help="Share of questions that also get a refusal example (answer removed). Measured on HaluEval: "
            "0.3 taught the 0.5B Qwen selective refusals; the 135M SmolLM2 learned none at 0.3 and unselective "
            "ones at 0.45-0.6 (docs/benchmarks.md).",
        ),
    ] = 0.5,
    heldout: Annotated[
        float, typer.Option("--heldout", min=0.0, max=0.9, help="Share of chunks whose questions are held out.")
    ] = 0.2,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Examples per optimizer step.")] = 4,
    micro_batch: Annotated[
        int | None,
        typer.Option(
            "--micro-batch",
            min=1,
            help="Examples per forward pass, gradients summed over the batch; lower it to save memory "
            "[default: the whole batch on a GPU, 1 on the CPU].",
        ),
    ] = None,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW, LoRA weights).")] = 3e-4,
    rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank.")] = 8,
    max_length: Annotated[
        int, typer.Option("--max-length", min=32, help="Examples longer than this many tokens are left out.")
    ] = 1024,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator",
            help="The GPT to tune: a bundled name (ragkit models lists them), a transformers directory or a .gguf "
            "[default: generator.model of the KB]. ask --model NAME then runs on it.",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto (GPU when torch sees one), cpu or cuda.")] = "auto",
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads for torch (1 is fastest on a busy machine).")
    ] = None,
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Skip the before/after evaluation.")] = False,
    eval_max_tokens: Annotated[
        int | None, typer.Option("--eval-max-tokens", min=1, help="Answer length limit in the evaluation.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing kb/models/NAME.")] = False,
    as_user: AsOpt = None,
    groups: GroupsOpt = None,
    admin: AdminOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """LoRA-tune the local GPT on this knowledge base: cited answers to questions about its chunks, and
    refusals (the abstention phrase) when the chunk holding the answer is removed from the sources.

    Prompts are built exactly as `ask` builds them. Saves kb/models/NAME/ (adapter, finetune.json,
    data.json), then asks held-out questions of the base and the tuned model with the eval suite and prints
    the comparison (runs saved under kb/runs/). Ctrl-C during training saves the adapter trained so far.
    Use it with: ragkit ask "..." --model NAME (or generator.adapter = "NAME" in ragkit.toml).

    On an access-controlled KB questions are made only from the chunks --as (or --admin) may read; the adapter
    may have memorised them, so serve it only to that reader.
    """
    import ragkit
    from ragkit.finetune import FinetuneOptions, ProgressEvent

    with user_errors():
        device = parse_device(device)
        principal = reader(as_user, groups, admin)
    opts = FinetuneOptions(
        name=name,
        chunks=chunks,
        questions_per_chunk=per_chunk,
        model_questions=model_questions,
        negatives=negatives,
        heldout=heldout,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        micro_batch=micro_batch,
        lr=lr,
        lora_r=rank,
        lora_alpha=2 * rank,
        max_length=max_length,
        seed=seed,
        device=device,
        threads=threads,
        use_kb=train is None or with_kb,
        evaluate=not no_eval,
        eval_max_new_tokens=eval_max_tokens,
    )
    progress = progress_bar("{task.fields[stage]}", quiet=as_json)
    tasks: dict[str, Any] = {}

    def on_event(ev: ProgressEvent) -> None:
        if ev.stage not in tasks:
            tasks[ev.stage] = progress.add_task("", total=ev.total, stage=_STAGES.get(ev.stage, ev.stage))
        note = f"loss {ev.loss:.3f}" if ev.loss is not None else ev.note
        progress.update(tasks[ev.stage], completed=ev.done, total=ev.total, description=note)

    over = db_override(db)
    if generator:
        over |= {"generator.backend": "transformers", "generator.model": generator}
    with user_errors(), ragkit.open(kb, create=False, principal=principal, **over) as base, progress:
        check_reader(base, principal, as_json)
        result = base.finetune(opts, train_file=train, progress=on_event, overwrite=force)
    log = result.log
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "name": result.name,
                    "path": str(result.path),
                    "interrupted": log.interrupted,
                    "training": {
                        "steps": log.steps,
                        "planned_steps": log.planned_steps,
                        "seconds": log.seconds,
                        "examples_per_s": round(log.examples_per_s, 3),
                        "tokens": log.tokens,
                        "first_loss": log.losses[0] if log.losses else None,
                        "last_loss": log.losses[-1] if log.losses else None,
                        "device": log.device,
                        "dtype": log.dtype,
                        "trainable_params": result.trainable_params,
                    },
                    "data": result.data,
                    "comparison": result.comparison,
                    "base_run": str(result.base_run) if result.base_run else None,
                    "tuned_run": str(result.tuned_run) if result.tuned_run else None,
                },
                indent=2,
                default=str,
            )
        )
    else:
        _print_result(result)
    if log.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def _print_result(result: Any) -> None:
    from ragkit.evals.metrics import fmt
    from ragkit.finetune import COMPARED

    log, data = result.log, result.data
    pairs = data.get("pairs", {})
    total = sum(pairs.values()) or 1
    made = ", ".join(f"{n} by {k} ({n / total:.0%})" for k, n in sorted(pairs.items()))
    ex = data.get("examples", {})
    out.print(f"questions: {made}")
    out.print(
        f"examples: {ex.get('total')} ({ex.get('answer')} cited answers, {ex.get('abstain')} refusals); "
        f"held out: {data.get('heldout', {}).get('answerable', 0)} answerable, "
        f"{data.get('heldout', {}).get('unanswerable', 0)} unanswerable questions"
    )
    loss = f"; loss {log.losses[0]:.3f} -> {log.losses[-1]:.3f}" if log.losses else ""
    out.print(
        f"trained {log.steps}/{log.planned_steps} steps on {log.device} ({log.dtype}) in {log.seconds:.0f} s, "
        f"{log.examples_per_s:.2f} examples/s{loss}"
    )
    if log.interrupted:
        err.print(f"[yellow]Interrupted: the adapter after {log.steps} steps was saved; evaluation skipped.[/yellow]")
    out.print(f"saved to {result.path}")
    if result.comparison:
        out.print(f"\n{'held-out questions':<32} {'base':>7} {'tuned':>7} {'delta':>7}")
        for key, label in COMPARED:
            row = result.comparison[key]
            delta = "-" if row["delta"] is None else f"{row['delta']:+.3f}"
            out.print(f"{label:<32} {fmt(row['base']):>7} {fmt(row['tuned']):>7} {delta:>7}")
        held = data.get("heldout", {})
        n_held = held.get("answerable", 0) + held.get("unanswerable", 0)
        if n_held < SMALL_HELDOUT:
            # measured: a 10-question comparison swung by 0.1-0.3 between runs (docs/benchmarks.md, S1 vs S2)
            err.print(
                f"[dim]{n_held} held-out question{'' if n_held == 1 else 's'}: differences this size are noise; "
                "for a comparison to read, raise --chunks or --heldout (200 chunks at 0.25 gave 36).[/dim]"
            )
        out.print(f"runs: {result.base_run}\n      {result.tuned_run}")
    out.print(f'use it: ragkit ask "..." --kb {result.path.parent.parent} --model {result.name}')


def models_command(kb: KbOpt = Path("kb"), db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List the fine-tuned models of this knowledge base (kb/models/), with their before/after scores, and the
    bundled generators (ask --generator NAME) with whether they are installed."""
    import ragkit
    from ragkit.assets import GENERATORS, auto_cpu_bf16, choose_dtype, default_generator, is_installed
    from ragkit.errors import RagkitError
    from ragkit.evals.metrics import fmt

    def cpu_dtype(name: str) -> str:  # what generator.dtype means for this model on this machine's CPU
        try:
            return choose_dtype(dtype, "cpu", cpu_bf16=auto_cpu_bf16(name))
        except RagkitError:
            return "none (float16 needs a GPU)"

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        models = [a.to_json() for a in base.adapters()]
        active = base.config.generator.adapter
        generator, fallback = base.config.generator.model, base.config.generator.fallback
        dtype = base.config.generator.dtype
    bundled = [
        {"name": m.name, "installed": is_installed(m), "install": m.install, "active": m.name == generator}
        | {"fallback": m.name == fallback, "cpu_dtype": cpu_dtype(m.name)}
        for m in GENERATORS.values()
    ]
    new_kbs = default_generator()
    if as_json:
        payload = {"active": active, "models": models, "bundled": bundled, "new_kb_generator": new_kbs}
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    for b in bundled:
        state = f"installed, {b['cpu_dtype']} on the CPU" if b["installed"] else f"not installed: {b['install']}"
        role = " (generator.model)" if b["active"] else " (generator.fallback)" if b["fallback"] else ""
        out.print(f"bundled generator {b['name']}{role}: {state}")
    if new_kbs != generator:
        out.print(f"new knowledge bases get {new_kbs}; this one keeps {generator} (--generator or generator.model)")
    if not models:
        out.print(f"no fine-tuned models; make one with: ragkit finetune --kb {kb}")
        return
    out.print(
        f"{'name':<24} {'base model':<28} {'created':<20} {'steps':>5} {'examples':>8} {'F1 base->tuned':>15} "
        f"{'abstain unans.':>15}"
    )
    for m in models:
        cmp = m.get("comparison") or {}
        f1 = cmp.get("answer/f1", {})
        ab = cmp.get("abstention/rate_unanswerable", {})
        mark = " *" if m["name"] == active else ""
        note = " (interrupted)" if m.get("interrupted") else ""
        base_model = Path(str(m.get("base_model") or "-")).name[:28]  # a bundled name, or a path's last part
        out.print(
            f"{m['name'] + mark:<24} {base_model:<28} {str(m.get('created') or '-'):<20} {m.get('steps') or 0:>5} "
            f"{m.get('examples') or 0:>8} {fmt(f1.get('base')) + '->' + fmt(f1.get('tuned')):>15} "
            f"{fmt(ab.get('base')) + '->' + fmt(ab.get('tuned')):>15}{note}"
        )
    if active:
        out.print("* generator.adapter in ragkit.toml")
