"""Fine-tune a cross-encoder judge from the bundled MiniLM weights on HaluEval-QA pairs (`ragkit eval train-judge`).

Length is balanced so the model cannot learn "long answer = hallucinated": the length-matched calibration
pairs (right vs hallucinated answer, see judge_data.halueval_judge_pairs) plus, from items outside the held-out
split, an item's question and right answer against its knowledge (supported) and the same question with
another item's right answer of about the same length against the same knowledge (unsupported). Question and
context are identical in both, so the only signal is whether the answer is in the context, which is what
the held-out pairs test. (Pairing the answer with another item's knowledge instead teaches topic overlap,
which does not transfer: a 60-step run of that scored 0.50.) The held-out split is never trained on, so
`ragkit eval judge-accuracy --judge trained` measures it fairly.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragkit.evals.datasets import halueval_records
from ragkit.evals.judge_data import LabelledPair, as_claim, halueval_judge_pairs
from ragkit.evals.judges import trained_judge_dir

StepFn = Callable[[int, int, float], None]  # (step, total steps, loss)


def training_pairs(extra_items: int = 2000, seed: int = 0) -> list[LabelledPair]:
    """Calibration pairs plus 2 * extra_items answer-swap pairs (own vs another item's answer), shuffled."""
    pairs = list(halueval_judge_pairs("calibration"))
    held = {p.claim for p in halueval_judge_pairs("heldout")}
    rng = random.Random(seed)
    records = [r for r in halueval_records() if as_claim(r["question"], r["right_answer"]) not in held]
    rng.shuffle(records)
    by_len: dict[int, list[str]] = {}
    for r in records:
        by_len.setdefault(len(r["right_answer"].split()), []).append(r["right_answer"])
    for r in records[:extra_items]:
        answer = r["right_answer"]
        same_len = [a for a in by_len[len(answer.split())] if a.lower() not in r["knowledge"].lower()]
        if not same_len:
            continue
        swapped = rng.choice(same_len)
        pairs += [
            LabelledPair(as_claim(r["question"], answer), r["knowledge"], False),
            LabelledPair(as_claim(r["question"], swapped), r["knowledge"], True),
        ]
    rng.shuffle(pairs)
    return pairs


@dataclass(frozen=True, slots=True)
class TrainResult:
    path: Path
    steps: int
    pairs: int
    first_loss: float
    last_loss: float  # mean of the last 10 steps
    seconds: float
    device: str


def train_judge(
    pairs: list[LabelledPair] | None = None,
    *,
    out: str | Path | None = None,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 5e-5,
    warmup: float = 0.1,
    max_steps: int | None = None,
    max_length: int = 256,
    device: str = "auto",
    progress: StepFn | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train a 1-logit cross-encoder (input: context, claim; target: supported) and save it to `out`
    (default: the local cache that `--judge trained` reads). GPU when present. The learning rate warms up
    linearly over the first `warmup` fraction of steps, then decays linearly to 0: the classification head
    starts random, and a full rate on it at step 1 disturbs the pretrained encoder. `seed` seeds torch before the
    head is initialised, so the same pairs and seed give the same judge on the same device."""
    import torch
    from sentence_transformers import CrossEncoder

    from ragkit.assets import auto_device, quiet_transformers, resolve_embedder, set_offline_env

    set_offline_env()
    quiet_transformers()
    pairs = pairs if pairs is not None else training_pairs()
    dev = auto_device(device)
    torch.manual_seed(seed)
    ce = CrossEncoder(
        str(resolve_embedder("all-MiniLM-L6-v2")),
        num_labels=1,
        device=dev,
        max_length=max_length,
        local_files_only=True,
    )
    model, tok = ce.model, ce.tokenizer
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)] * epochs
    total = min(len(batches), max_steps or len(batches))
    ramp = max(1, int(total * warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / ramp, max(0.0, (total - s) / max(1, total - ramp)))
    )
    losses: list[float] = []
    t0 = time.perf_counter()
    for step, batch in enumerate(batches[:total], start=1):
        enc = tok(
            [p.context for p in batch],
            [p.claim for p in batch],
            padding=True,
            truncation="only_first",  # the context gives way; the claim is short and must stay whole
            max_length=max_length,
            return_tensors="pt",
        ).to(dev)
        target = torch.tensor([0.0 if p.unsupported else 1.0 for p in batch], device=dev)
        loss = loss_fn(model(**enc).logits.squeeze(-1), target)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(step, total, losses[-1])
    model.eval()
    path = Path(out) if out else trained_judge_dir()
    path.mkdir(parents=True, exist_ok=True)
    ce.save_pretrained(str(path))
    result = TrainResult(
        path=path,
        steps=total,
        pairs=len(pairs),
        first_loss=losses[0] if losses else float("nan"),
        last_loss=sum(losses[-10:]) / len(losses[-10:]) if losses else float("nan"),
        seconds=round(time.perf_counter() - t0, 1),
        device=dev,
    )
    (path / "ragkit_judge.json").write_text(
        json.dumps(
            {
                "base": "all-MiniLM-L6-v2",
                "data": "HaluEval-QA calibration split + length-matched answer-swap pairs",
                "steps": total,
                "pairs": len(pairs),
                "batch_size": batch_size,
                "lr": lr,
                "last_loss": result.last_loss,
                "device": dev,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return result
