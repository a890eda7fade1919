"""The fine-tune job, top to bottom in nanoGPT's order: data (questions, examples, tokens) -> the base model ->
train -> save the adapter as kb/models/NAME/ -> ask the held-out questions of the base and the tuned model.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit._version import __version__
from ragkit.errors import ConfigError, ModelError, RagkitError
from ragkit.finetune.examples import ExampleBuilder, RefusalPassage, SftExample, answer_removed, tokenize_example
from ragkit.finetune.heldout import evaluate_heldout, heldout_items
from ragkit.finetune.questions import QAPair, model_pair, read_train_file, template_pairs
from ragkit.finetune.train import NOTE_CHARS, FinetuneOptions, ProgressEvent, ProgressFn, TrainLog, train_lora
from ragkit.fsutil import atomic_dir
from ragkit.kbdir import models_dir
from ragkit.protocols import TrainableGenerator

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOT_TRAINABLE = "fine-tuning needs generator.backend = 'transformers' (a local model)"


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """A finished (or interrupted, then saved) fine-tune and, when evaluated, the before/after comparison."""

    name: str
    path: Path
    log: TrainLog
    data: dict[str, Any]
    comparison: dict[str, dict[str, float | None]] | None = None  # metric -> {base, tuned, delta}
    base_run: Path | None = None
    tuned_run: Path | None = None
    trainable_params: int = 0


def finetune(
    kb: KnowledgeBase,
    options: FinetuneOptions | None = None,
    *,
    train_file: str | Path | None = None,
    progress: ProgressFn | None = None,
    overwrite: bool = False,
    refusal_passage: RefusalPassage = answer_removed,
) -> FinetuneResult:
    """Fine-tune the KB's local GPT with LoRA and save the adapter as kb/models/NAME/.

    Questions come from the KB's chunks (options.use_kb) and/or a QA JSONL (train_file). With
    options.evaluate, held-out questions are asked of the base and the tuned model through the eval runner
    (runs saved under kb/runs/) and result.comparison holds the before/after metrics. Ctrl-C during training
    saves the adapter trained so far (result.log.interrupted) and skips the evaluation. options.threads sets
    torch's CPU threads for the whole job (restored afterwards). refusal_passage: how a user record's refusal
    example picks the passage that replaces its own (see ExampleBuilder).
    """
    options = FinetuneOptions() if options is None else options
    check_name(options.name)
    if not options.threads:
        return _run(kb, options, train_file, progress, overwrite, refusal_passage)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        return _run(kb, options, train_file, progress, overwrite, refusal_passage)
    finally:
        torch.set_num_threads(before)


def check_name(name: str) -> None:
    """Raise ConfigError unless `name` can be a folder under kb/models/."""
    if not _NAME.match(name):
        raise ConfigError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/')")


def _run(
    kb: KnowledgeBase,
    options: FinetuneOptions,
    train_file: str | Path | None,
    progress: ProgressFn | None,
    overwrite: bool,
    refusal: RefusalPassage,
) -> FinetuneResult:
    if kb.config.generator.backend != "transformers":  # before anything loads
        raise ConfigError(_NOT_TRAINABLE)
    if not options.use_kb and train_file is None:
        raise ConfigError("nothing to train on: give a training file or let ragkit make questions from the KB")
    out_dir = models_dir(kb.root) / options.name
    if out_dir.exists() and not overwrite:
        raise ConfigError(f"{out_dir} exists; choose another --name or pass --force to replace it")
    if kb.config.generator.adapter:  # always start from the base model
        kb = kb.with_adapter(None)

    # data: questions, then examples built as `ask` builds prompts, then tokens
    t_start = time.perf_counter()
    rng = random.Random(options.seed)
    train_pairs, held_pairs, summary = collect_pairs(kb, options, train_file, rng, progress)
    builder = ExampleBuilder(kb, refusal_passage=refusal)
    examples = build_examples(builder, train_pairs, options.negatives, rng, progress)
    gen = kb.generator
    if not isinstance(gen, TrainableGenerator):
        raise ConfigError(_NOT_TRAINABLE)
    kept, tokenized = _tokenized(gen, examples, options.max_length)
    summary["examples"] = _examples_summary(kept, tokenized, examples, train_pairs, builder.placed)
    summary["train_questions"] = len(train_pairs)
    summary["seconds_building"] = round(time.perf_counter() - t_start, 2)
    # the held-out questions are fixed before training, so an interrupted run can still be evaluated later
    held = heldout_items(held_pairs, builder, random.Random(options.seed + 1))
    summary["heldout"] = held.counts()

    # the base model, and LoRA training on it
    peft_model, log = _train(gen, tokenized, options, progress)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)

    # save: the adapter and what made it, whole or not at all
    with atomic_dir(out_dir) as tmp:
        peft_model.save_pretrained(str(tmp))
        del peft_model  # saved: free the weights before the evaluation loads the tuned model
        info = _info(kb, options, train_file, gen.base_model_dir, trainable, log)
        (tmp / "finetune.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        (tmp / "data.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        _write_jsonl(tmp / "train.jsonl", ({k: v for k, v in asdict(ex).items() if k != "messages"} for ex in kept))
        _write_jsonl(tmp / "heldout.jsonl", held.records())
    result = FinetuneResult(options.name, out_dir, log, summary, trainable_params=trainable)

    # evaluate: the held-out questions asked of the base and the tuned model
    if not options.evaluate or log.interrupted or not held.items:
        return result
    comparison, base_run, tuned_run = evaluate_heldout(
        kb, held, options.name, out_dir, builder.options, options.eval_max_new_tokens, progress
    )
    return replace(result, comparison=comparison, base_run=base_run, tuned_run=tuned_run)


def _train(
    gen: TrainableGenerator,
    tokenized: Sequence[tuple[list[int], list[int]]],
    options: FinetuneOptions,
    progress: ProgressFn | None,
) -> tuple[Any, TrainLog]:
    """Load the generator's base model in fp32 (a fresh copy: the KB's own stays as it is) and train LoRA on it."""
    import torch
    from transformers import AutoModelForCausalLM

    from ragkit.assets import auto_device

    device = auto_device(options.device)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gen.base_model_dir), dtype=torch.float32, local_files_only=True
        )
    except Exception as exc:
        raise ModelError(f"cannot load the base model from {gen.base_model_dir}: {exc}") from exc
    tok = gen.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return train_lora(model, tokenized, options, pad_id=int(pad or 0), device=device, progress=progress)


def _info(
    kb: KnowledgeBase,
    options: FinetuneOptions,
    train_file: str | Path | None,
    base_dir: Path,
    trainable: int,
    log: TrainLog,
) -> dict[str, Any]:
    """finetune.json: what the adapter was trained on, how, and how training went."""
    return {
        "name": options.name,
        "created": datetime.now().isoformat(timespec="seconds"),
        "ragkit_version": __version__,
        "base_model": kb.config.generator.model,
        "base_path": str(base_dir),
        # the adapter may have memorised what this reader could read: serve it only to readers who may read that
        "trained_as": str(kb.principal) if kb.principal else None,
        "options": {**asdict(options), "target_modules": list(options.target_modules)},
        "train_file": str(train_file) if train_file else None,
        "generator_config": kb.config.generator.model_dump(),
        "retrieval_config": kb.config.retrieval.model_dump(),
        "trainable_params": trainable,
        "training": {**asdict(log), "examples_per_s": round(log.examples_per_s, 3)},
    }


# --- data ---------------------------------------------------------------------------------------------


def collect_pairs(
    kb: KnowledgeBase,
    options: FinetuneOptions,
    train_file: str | Path | None,
    rng: random.Random,
    progress: ProgressFn | None,
) -> tuple[list[QAPair], list[QAPair], dict[str, Any]]:
    """The KB's questions (options.use_kb) and the training file's: (train pairs, held-out pairs, summary)."""
    train_pairs: list[QAPair] = []
    held_pairs: list[QAPair] = []
    summary: dict[str, Any] = {}
    if options.use_kb:
        train_pairs, held_pairs, summary = build_pairs(kb, options, rng, progress)
    if train_file is not None:
        user = read_train_file(train_file)
        n_held = round(len(user) * options.heldout) if options.evaluate and not options.use_kb else 0
        held_pairs += user[:n_held]
        train_pairs += user[n_held:]
        summary["user_records"] = len(user)
        summary.setdefault("pairs", {})["user"] = len(user)
    if not train_pairs:
        raise RagkitError("no training questions could be made; ingest more text or give --train FILE")
    return train_pairs, held_pairs, summary


def build_pairs(
    kb: KnowledgeBase, options: FinetuneOptions, rng: random.Random, progress: ProgressFn | None = None
) -> tuple[list[QAPair], list[QAPair], dict[str, Any]]:
    """Questions from sampled chunks, split by chunk: (train pairs, held-out pairs, summary)."""
    ids = [int(i) for i in kb.chunk_ids()]  # only what the KB's principal may read
    if not ids:
        raise RagkitError(f"{kb.root} holds no chunks; ingest documents first: ragkit ingest PATH --kb {kb.root}")
    chosen = sorted(rng.sample(ids, min(options.chunks, len(ids))))
    rng.shuffle(chosen)
    chunks = kb.chunks(chosen)
    n_held = 0
    if options.evaluate and len(chosen) > 1 and options.heldout > 0:
        n_held = min(len(chosen) - 1, max(1, round(len(chosen) * options.heldout)))
    held_ids = set(chosen[:n_held])
    judge = None
    rejected: Counter[str] = Counter()
    attempts = 0
    train: list[QAPair] = []
    held: list[QAPair] = []
    for done, cid in enumerate(chosen, start=1):
        chunk = chunks[cid]
        mine: list[QAPair] = []
        if attempts < options.model_questions:
            if judge is None:
                from ragkit.evals.judges import make_judge

                judge = make_judge("minilm-lexical", embedder=kb.embedder)
            attempts += 1
            pair, why = model_pair(kb.generator, judge, chunk)
            if pair is None:
                rejected[why] += 1
            else:
                mine.append(pair)
        for p in template_pairs(chunk, options.questions_per_chunk):
            if len(mine) < options.questions_per_chunk and p.answer not in {m.answer for m in mine}:
                mine.append(p)
        (held if cid in held_ids else train).extend(mine)
        if progress:
            progress(ProgressEvent("questions", done, len(chosen), note=chunk.location))
    made = Counter(p.origin for p in train + held)
    total = sum(made.values())
    summary = {
        "chunks_in_kb": len(ids),
        "chunks_sampled": len(chosen),
        "chunks_heldout": n_held,
        "model_attempts": attempts,
        "model_rejected": dict(rejected),
        "pairs": dict(made),
        "pair_shares": {k: round(v / total, 3) for k, v in made.items()} if total else {},
    }
    return train, held, summary


def build_examples(
    builder: ExampleBuilder,
    pairs: Sequence[QAPair],
    negatives: float,
    rng: random.Random,
    progress: ProgressFn | None = None,
) -> list[SftExample]:
    """A positive for every pair and a negative for a seeded share `negatives` of them, shuffled."""
    n_neg = round(len(pairs) * max(0.0, min(1.0, negatives)))
    negative = set(rng.sample(range(len(pairs)), n_neg))
    contexts = [p.context for p in pairs if p.context]
    out: list[SftExample] = []
    n_context = 0  # the position of the next pair's own passage in contexts
    for i, pair in enumerate(pairs):
        pos = builder.positive(pair, i)
        if pos is not None:
            out.append(pos)
        if i in negative:
            other = builder.refusal_passage(pair, contexts, n_context) if pair.context else None
            neg = builder.negative(pair, other, i)
            if neg is not None:
                out.append(neg)
        if pair.context:
            n_context += 1
        if progress:
            progress(ProgressEvent("examples", i + 1, len(pairs), note=pair.question[:NOTE_CHARS]))
    rng.shuffle(out)
    return out


def _tokenized(
    gen: TrainableGenerator, examples: Sequence[SftExample], max_length: int
) -> tuple[list[SftExample], list[tuple[list[int], list[int]]]]:
    """The examples that fit in max_length tokens, and their (input_ids, labels)."""
    tokenized: list[tuple[list[int], list[int]]] = []
    kept: list[SftExample] = []
    for ex in examples:
        ids, labels = tokenize_example(gen, ex)
        if len(ids) <= max_length:
            tokenized.append((ids, labels))
            kept.append(ex)
    if not kept:
        raise ConfigError(f"every example is longer than max_length={max_length} tokens; raise it")
    return kept, tokenized


def _examples_summary(
    kept: Sequence[SftExample],
    tokenized: Sequence[tuple[list[int], list[int]]],
    examples: Sequence[SftExample],
    train_pairs: Sequence[QAPair],
    placed: int,
) -> dict[str, Any]:
    """data.json's "examples": what was kept, and why the rest was not."""
    kinds = Counter(e.kind for e in kept)
    if not kinds["answer"]:
        # refusals alone teach the model to refuse everything
        raise RagkitError(
            f"none of the {len(train_pairs)} training questions gave an answer example (each needs its passage, or "
            "the answer, to fit in the prompt with ask's sources); check the --train file's contexts, or raise "
            "max_length"
        )
    return {
        "total": len(kept),
        "answer": kinds["answer"],
        "abstain": kinds["abstain"],
        "too_long_dropped": len(examples) - len(kept),
        "questions_without_answer_example": len(train_pairs) - sum(e.kind == "answer" for e in examples),
        "support_placed_in_last_slot": placed,
        "mean_tokens": round(sum(len(i) for i, _ in tokenized) / len(tokenized), 1),
        "mean_answer_tokens": round(sum(sum(x != -100 for x in lab) for _, lab in tokenized) / len(tokenized), 1),
    }


def _write_jsonl(path: Path, records: Any) -> None:
    with path.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
