"""Experiment (run K in docs/benchmarks.md): show the model each source's cosine similarity to the question.

The tuned models' own abstention barely depends on whether the sources hold the answer (AUROC 0.48-0.63),
while the best source's cosine separates the two almost perfectly (0.97-1.0). Here every source header
carries that number, "[2] (parking rules; match 0.71)", in training and at answer time, for the base and
the tuned model alike, to see whether fine-tuning teaches the 135M model to refuse when no source matches.
Same arguments as bench/finetune.py, which it runs with ragkit.prompts.build_messages replaced:

    python bench/finetune_scored.py --workdir /tmp/ftbench_d halueval --passages 120 --train-items 160 \
        --heldout 0 --negatives 0.45 --epochs 1 --lr 3e-4 --model-questions 0 --halueval-questions 40 \
        --eval-max-tokens 32 --name K
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import ragkit.prompts as P
from ragkit.types import Hit

sys.path.insert(0, str(Path(__file__).resolve().parent))

_SOURCE = '[{n}] ({location}; match {match:.2f})\n"""\n{text}\n"""'
# the worked example's sources get plausible matches: the one holding the answer high, the other low
_EXAMPLE_MATCH = (0.38, 0.71)
_cache: dict[str, np.ndarray] = {}
_embedder: Any = None


def _vector(text: str) -> np.ndarray:
    v = _cache.get(text)
    if v is None:
        v = _cache[text] = _embedder.embed([text])[0]
    return v


def scored_messages(
    question: str,
    hits: Sequence[Hit],
    template: P.PromptTemplate = P.DEFAULT_TEMPLATE,
    *,
    schema: dict[str, Any] | None = None,
    clean: bool = True,
) -> list[P.Message]:
    """ragkit.prompts.build_messages with each source's cosine similarity to the question in its header."""
    q = _vector(question)
    messages: list[P.Message] = [{"role": "system", "content": template.system_text()}]
    for ex in template.examples:
        blocks = "\n".join(
            _SOURCE.format(n=i, location=loc, text=text, match=_EXAMPLE_MATCH[(i - 1) % 2])
            for i, (loc, text) in enumerate(ex.sources, start=1)
        )
        messages.append({"role": "user", "content": P._user(ex.question, blocks, template, None)})
        messages.append({"role": "assistant", "content": ex.answer})
    blocks = []
    for i, h in enumerate(hits, start=1):
        text = (P.neutralise(h.chunk.text)[0] if clean else h.chunk.text).replace('"""', "'''")
        match = float(_vector(h.chunk.text) @ q)
        blocks.append(_SOURCE.format(n=i, location=h.chunk.location, text=text, match=match))
    messages.append({"role": "user", "content": P._user(question, "\n".join(blocks), template, schema)})
    return messages


if __name__ == "__main__":
    import finetune as bench_ft  # bench/finetune.py

    from ragkit.embedding import SentenceTransformerEmbedder

    _embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")  # the KB's embedder: the floor's cosine
    P.build_messages = scored_messages
    bench_ft.main()
