"""LoRA training on (input_ids, labels) rows, nanoGPT-style: the options and constants first, then the loop.

The loss is the cross-entropy over the answer tokens only (labels are -100 on the prompt), averaged over a
batch's answer tokens whether the batch runs as one forward pass or as micro-batches.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

GRAD_CLIP = 1.0  # clip the gradients' global norm at this value (nanoGPT's default)
WARMUP_SHARE = 0.1  # the learning rate rises linearly over this share of the planned steps (at least one)...
MIN_LR_SHARE = 0.1  # ...then decays linearly towards 0, floored at this share of the peak


@dataclass(frozen=True, slots=True)
class FinetuneOptions:
    """What `finetune` does. Sizes are counts; lr is AdamW's peak learning rate; max_length is in tokens."""

    name: str = "finetuned"
    chunks: int = 64  # chunks sampled from the KB
    questions_per_chunk: int = 2
    model_questions: int = 8  # chunks the generator writes a question for (about 10 s each on a CPU); 0 = templates
    negatives: float = 0.5  # share of training questions that also get an abstention example
    heldout: float = 0.2  # share of sampled chunks whose questions are kept for the before/after evaluation
    steps: int | None = None  # None: `epochs` passes over the examples
    epochs: int = 2
    batch_size: int = 4
    micro_batch: int | None = None  # examples per forward pass (None: the batch on a GPU, 1 on the CPU)
    lr: float = 3e-4
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 1024  # longer examples (prompt + answer) are left out, and counted
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads (None: torch's default)
    use_kb: bool = True  # build questions from the KB (False: only the --train file)
    evaluate: bool = True
    eval_max_new_tokens: int | None = None  # None: the KB's generator.max_new_tokens


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A step of the work: stage is "questions", "examples", "train", "eval-base" or "eval-tuned"."""

    stage: str
    done: int
    total: int | None
    loss: float | None = None  # training loss of the last step (stage "train")
    note: str = ""


ProgressFn = Callable[[ProgressEvent], None]
NOTE_CHARS = 60  # characters of a question shown in a progress note


@dataclass(frozen=True, slots=True)
class TrainLog:
    """How training went: steps, time in seconds, throughput and the loss per step."""

    steps: int
    planned_steps: int
    interrupted: bool
    seconds: float
    examples: int  # examples seen, repeats included
    tokens: int  # tokens seen
    losses: tuple[float, ...]
    device: str
    dtype: str

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else math.nan


def batches(n: int, batch_size: int, steps: int, rng: random.Random) -> list[list[int]]:
    """`steps` batches of example indices: shuffled passes over range(n), the last pass cut short."""
    out: list[list[int]] = []
    while len(out) < steps:
        order = list(range(n))
        rng.shuffle(order)
        out += [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return out[:steps]


def lr_factor(step: int, planned: int) -> float:
    """The learning rate at `step` (0-based) as a share of the peak: a linear warmup over WARMUP_SHARE of the
    planned steps, times a linear decay towards 0 floored at MIN_LR_SHARE."""
    warmup = max(1, int(planned * WARMUP_SHARE))
    return min(1.0, (step + 1) / warmup) * max(MIN_LR_SHARE, 1.0 - step / planned)


def answer_loss(model: Any, rows: Sequence[tuple[list[int], list[int]]], pad_id: int, device: str) -> Any:
    """Summed cross-entropy over the answer tokens of these rows, as one left-padded forward pass.

    Left padding puts every answer at the end, so the LM head runs on the answer span only (logits_to_keep):
    on a 49k vocabulary that is most of the memory.
    """
    import torch

    width = max(len(ids) for ids, _ in rows)
    keep = max(sum(1 for x in labels if x != -100) for _, labels in rows) + 1
    ids_t = torch.full((len(rows), width), pad_id, dtype=torch.long)
    lab_t = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, labels) in enumerate(rows):
        ids_t[r, width - len(ids) :] = torch.tensor(ids)
        lab_t[r, width - len(ids) :] = torch.tensor(labels)
        mask[r, width - len(ids) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    ids_t, lab_t, mask, pos = (t.to(device) for t in (ids_t, lab_t, mask, pos))
    logits = model(input_ids=ids_t, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
    # logits[:, j] predicts the token after position (width - keep + j)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), lab_t[:, width - keep + 1 :].reshape(-1), reduction="sum"
    )


def train_lora(
    model: Any,
    data: Sequence[tuple[list[int], list[int]]],
    options: FinetuneOptions,
    *,
    pad_id: int,
    device: str,
    progress: ProgressFn | None = None,
) -> tuple[Any, TrainLog]:
    """Train a LoRA adapter on (input_ids, labels) pairs; returns (peft model, log).

    The loss is the mean over a batch's answer tokens, whether the batch runs as one pass or as micro-batches
    (options.micro_batch). Ctrl-C stops after the current step and returns what was trained
    (log.interrupted). Deterministic for a seed on CPU.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    # the model: LoRA on the base
    torch.manual_seed(options.seed)
    cfg = LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=list(options.target_modules),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user to do
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(model, cfg)
    model.to(device)
    model.train()

    # the optimizer, its schedule and mixed precision (bf16 where the GPU has it, else fp16 with loss scaling)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    planned = options.steps or max(1, options.epochs * math.ceil(len(data) / options.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(lr_factor, planned=planned))
    amp_dtype = None
    if device == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)  # disabled: passes through

    # the loop
    steps = batches(len(data), options.batch_size, planned, random.Random(options.seed))
    # On the CPU one example per pass, with the gradients summed over the batch: the same step, but no
    # padding to the longest example (prompts run 400-1,000 tokens) and a quarter of the activation memory.
    micro = options.micro_batch or (options.batch_size if device == "cuda" else 1)
    losses: list[float] = []
    seen = tokens = 0
    interrupted = False
    t0 = time.perf_counter()
    try:
        for step, idx in enumerate(steps, start=1):
            rows = [data[i] for i in idx]
            n_answer = sum(sum(1 for x in labels if x != -100) for _, labels in rows)
            step_loss = 0.0
            for start in range(0, len(rows), micro):
                part = rows[start : start + micro]
                with torch.autocast(device_type=device, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = answer_loss(model, part, pad_id, device) / max(1, n_answer)
                scaler.scale(loss).backward()
                step_loss += float(loss.detach())
                tokens += sum(len(ids) for ids, _ in part)
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            sched.step()
            losses.append(round(step_loss, 5))
            seen += len(rows)
            if progress:
                progress(ProgressEvent("train", step, planned, losses[-1]))
    except KeyboardInterrupt:
        interrupted = True
    model.eval()
    log = TrainLog(
        steps=len(losses),
        planned_steps=planned,
        interrupted=interrupted,
        seconds=round(time.perf_counter() - t0, 3),
        examples=seen,
        tokens=tokens,
        losses=tuple(losses),
        device=device,
        dtype=str(amp_dtype or torch.float32).replace("torch.", ""),
    )
    return model, log
