"""transformers/torch backend: bundled SmolLM2, any local model directory, or any .gguf file.

Loading a GGUF through transformers dequantises every tensor (25 s for 135M parameters on 2 cores) and leaves
the model flagged as quantised, which blocks save_pretrained and training. So a GGUF is converted once into a
plain safetensors checkpoint cached under ragkit's cache folder, keyed by the GGUF's sha256; later loads take
about a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragkit.assets import (
    auto_device,
    cache_dir,
    converted_name,
    quiet_transformers,
    resolve_generator,
    run_dtypes,
    set_offline_env,
)
from ragkit.errors import ModelError
from ragkit.fsutil import atomic_dir, atomic_write
from ragkit.generation.transcript import plain_transcript
from ragkit.types import Generation, Message

_convert_lock = threading.Lock()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_digest(gguf: Path) -> str:
    """The file's sha256, remembered per path, size and mtime under the cache folder: hashing the 1.1 GB
    Qwen2.5-Coder-1.5B took 2-3 s of every `ragkit ask`, for a file that never changes."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = cache_dir() / "generators" / "digests.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    digest = _sha256(gguf)
    try:  # best effort: two processes racing here lose one entry, computed again next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo, json.dumps({**(known if isinstance(known, dict) else {}), key: digest}, indent=0))
    except OSError:
        pass
    return digest


def converted_gguf_dir(gguf: Path, spec: str = "", dtype: str = "float32") -> Path:
    """Return a plain transformers checkpoint for a GGUF file with weights in `dtype` ("float32" or "bfloat16"),
    converting it on first use (raises ModelError first when the memory for that is clearly missing). A bf16
    copy is converted from the GGUF itself: casting a loaded fp32 copy peaked at 10.9 GB for Qwen 1.5B."""
    if dtype not in ("float32", "bfloat16"):
        raise ModelError(f"a GGUF model is converted to float32 or bfloat16, not {dtype}")
    target = cache_dir() / "generators" / converted_name(gguf_digest(gguf), dtype)
    if (target / "config.json").exists():
        return target
    with _convert_lock:
        if (target / "config.json").exists():
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # the reader dequantises through fp32 even for a bf16 copy: Qwen 1.5B's peaked at 5.65 GB (6.2 GB in fp32)
        check_memory(gguf_fp32_bytes(gguf), spec or gguf.name)
        try:
            # transformers' GGUF reader draws its own tqdm bar on stderr; the library never prints
            with contextlib.redirect_stderr(io.StringIO()):
                tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype)
                )
        except Exception as exc:
            raise ModelError(f"cannot load GGUF {gguf}: {exc} (is the 'gguf' package installed?)") from exc
        # drop the GGUF quantiser flag so the dequantised weights can be saved as a normal checkpoint
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        with atomic_dir(target) as tmp:  # a crash mid-conversion leaves no half checkpoint behind
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            (tmp / "source.txt").write_text(f"{gguf}\n", encoding="utf-8")
    return target


def _merge_adapter(model: Any, adapter: Path) -> Any:
    """The model with a peft LoRA adapter folded into its weights (no extra cost per token)."""
    if not (adapter / "adapter_config.json").exists():
        raise ModelError(f"{adapter} holds no LoRA adapter (adapter_config.json); list them with: ragkit models")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelError("LoRA adapters need the peft package: pip install 'peft>=0.21'") from exc
    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user to do
            warnings.simplefilter("ignore", FutureWarning)
            return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except Exception as exc:
        raise ModelError(f"cannot apply the adapter {adapter} to this model: {exc}") from exc


def available_memory() -> int | None:
    """Bytes of memory the system can still give a process (Linux's MemAvailable: free plus reclaimable
    cache); None where /proc/meminfo does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# fp32 weights on the CPU take about their checkpoint's size in memory (Qwen2.5-Coder-1.5B: a 7.1 GB checkpoint,
# 6.9 GB peak RSS for one ask). Below this share of it the kernel kills the process mid-load, with no message.
MEMORY_FLOOR = 0.8


def checkpoint_bytes(model_dir: Path) -> int:
    """Bytes of the weight files of a transformers checkpoint: about what fp32 weights take in memory."""
    return sum(f.stat().st_size for pattern in ("*.safetensors", "*.bin") for f in model_dir.glob(pattern))


def gguf_fp32_bytes(gguf: Path) -> int:
    """What a GGUF file's weights take once dequantised to fp32 (4 bytes per parameter; reads the header, ~5 s);
    0 when the header cannot be read (loading it then says why)."""
    try:
        from gguf import GGUFReader

        return 4 * sum(int(t.n_elements) for t in GGUFReader(str(gguf)).tensors)
    except Exception:
        return 0


def short_of_memory(needed: int, available: int | None = None) -> int | None:
    """The free bytes when they clearly cannot hold `needed` bytes of weights (under MEMORY_FLOOR of them); None
    when they can, or where the free memory is unknown."""
    available = available_memory() if available is None else available
    if available is None or not needed or available >= MEMORY_FLOOR * needed:
        return None
    return available


def check_memory(needed: int, spec: str, available: int | None = None) -> None:
    """Raise ModelError when the CPU clearly lacks the memory for `needed` bytes of fp32 weights, naming what it
    needs and what to do; silent where the free memory is unknown."""
    available = short_of_memory(needed, available)
    if available is None:
        return
    raise ModelError(
        f"generator {spec} needs about {needed / 1e9:.1f} GB of memory on the CPU and {available / 1e9:.1f} GB is "
        "free; close other programs, or choose a smaller generator (ragkit models lists them) with --generator "
        "or generator.model in ragkit.toml"
    )


class TransformersGenerator:
    """A causal LM run with torch; GPU with bf16/fp16 when present, fp32 on CPU unless `dtype` says otherwise."""

    def __init__(
        self,
        spec: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        context_window: int = 2048,
        threads: int | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        set_offline_env()
        quiet_transformers()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        path = resolve_generator(spec)
        self.name = spec
        self.device = auto_device(device)
        self.dtype, stored = run_dtypes(spec, dtype, self.device)
        model_dir = converted_gguf_dir(path, spec, stored) if path.suffix == ".gguf" else path
        self.base_model_dir = model_dir  # what fine-tuning loads (the adapter below is merged into a copy)
        if self.device != "cuda":
            check_memory(checkpoint_bytes(model_dir), spec)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, self.dtype), local_files_only=True
            )
        except Exception as exc:
            raise ModelError(f"cannot load generator from {model_dir}: {exc}") from exc
        if adapter is not None:
            self.model = _merge_adapter(self.model, Path(adapter))
            self.name = f"{spec}+{Path(adapter).name}"
        self.model.to(self.device).eval()
        limit = int(getattr(self.model.config, "max_position_embeddings", context_window) or context_window)
        self.context_window = min(context_window, limit)
        self._stop_ids = self._stop_token_ids()

    def _stop_token_ids(self) -> list[int]:
        ids = set()
        eos = self.tokenizer.eos_token_id
        if isinstance(eos, int):
            ids.add(eos)
        for token in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            tid = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid >= 0:
                ids.add(tid)
        return sorted(ids)

    def _encode(self, messages: list[Message]) -> Any:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        # a base model without a chat template gets a plain transcript
        text = plain_transcript(messages)
        return self.tokenizer(text, return_tensors="pt")

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The token ids `generate` feeds the model for this chat (generation prompt included)."""
        return [int(t) for t in self._encode(messages)["input_ids"][0]]

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return int(self._encode(messages)["input_ids"].shape[1])

    def yes_probability(self, messages: list[Message]) -> float:
        """P(yes) / (P(yes) + P(no)) over the reply's first token, either case, with or without a leading
        space: one forward pass over the prompt, nothing generated (ragkit.verification)."""
        import torch

        def first_ids(words: tuple[str, ...]) -> list[int]:
            return sorted({self.tokenizer.encode(w, add_special_tokens=False)[0] for w in words})

        yes, no = first_ids(("yes", "Yes", " yes", " Yes")), first_ids(("no", "No", " no", " No"))
        with torch.inference_mode():
            logits = self.model(**self._encode(messages).to(self.device)).logits[0, -1]
        p = torch.softmax(logits.float(), dim=-1)
        y, n = float(p[yes].sum()), float(p[no].sum())
        return y / (y + n) if y + n > 0 else 0.5

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextStreamer

        inputs = self._encode(messages).to(self.device)
        n_prompt = int(inputs["input_ids"].shape[1])
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": 0.95}
        tokenizer = self.tokenizer
        fired = False

        class _Rule(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                nonlocal fired
                fired = fired or bool(stop(tokenizer.decode(input_ids[0][n_prompt:], skip_special_tokens=True)))
                return torch.full((input_ids.shape[0],), fired, dtype=torch.bool, device=input_ids.device)

        class _Streamer(TextStreamer):
            # TextStreamer holds text back until a word is complete, then hands it over here instead of printing
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text and on_text is not None:
                    on_text(text)

        extra: dict[str, Any] = {}
        if on_text is not None:
            extra["streamer"] = _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        recorder = _TokenLogprobs(n_prompt)
        processors: list[Any] = [recorder]  # first: it sees the model's own distribution
        if schema is not None:
            from ragkit.generation.constrained import json_schema_processor

            processors.append(json_schema_processor(tokenizer, schema, self._stop_ids, n_prompt))
        extra["logits_processor"] = LogitsProcessorList(processors)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                eos_token_id=self._stop_ids,
                pad_token_id=self._stop_ids[0] if self._stop_ids else None,
                stopping_criteria=StoppingCriteriaList([_Rule()]) if stop else None,
                **sampling,
                **extra,
            )
        seconds = time.perf_counter() - t0
        new_tokens = out[0][n_prompt:]
        ended = len(new_tokens) > 0 and int(new_tokens[-1]) in self._stop_ids
        finish = "rule" if fired else ("stop" if ended or len(new_tokens) < max_new_tokens else "length")
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return Generation(
            text=text,
            prompt_tokens=n_prompt,
            completion_tokens=int(len(new_tokens)),
            seconds=seconds,
            finish=finish,
            tokens=recorder.pieces(self.tokenizer, out[0]),
        )


class _TokenLogprobs:
    """A logits processor that keeps the log-probability of each token the decoder picked.

    At step t it sees the distribution for token t; which token was picked shows up at step t + 1 (or, for the
    last one, in the finished sequence), so it holds one log-softmax row at a time instead of every step's
    logits (a 150k vocabulary x 160 steps would be ~100 MB).
    """

    def __init__(self, n_prompt: int) -> None:
        self.n_prompt = n_prompt
        self.logprobs: list[float] = []
        self._last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._last is not None:
            self.logprobs.append(float(self._last[int(input_ids[0, -1])]))
        self._last = torch.log_softmax(scores[0].float(), dim=-1)
        return scores

    def pieces(self, tokenizer: Any, sequence: Any) -> tuple[tuple[str, float], ...]:
        """(text piece, log-probability) per generated token; special tokens give empty pieces."""
        new = [int(t) for t in sequence[self.n_prompt :]]
        lps = list(self.logprobs)
        if self._last is not None and len(lps) < len(new):
            lps.append(float(self._last[new[len(lps)]]))
        out, before = [], ""
        for i, lp in enumerate(lps[: len(new)]):
            # decoding the prefix, not the token alone, keeps multi-byte characters and leading spaces right
            now = tokenizer.decode(new[: i + 1], skip_special_tokens=True)
            out.append((now[len(before) :], lp))
            before = now
        return tuple(out)
