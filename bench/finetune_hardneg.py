"""Experiment (run J in docs/benchmarks.md): refusal examples get the most similar other passage that does not
hold the answer, instead of one far along the list, to teach refusing when the sources are related but lack
the answer. Same arguments as bench/finetune.py, which it runs with `nearest_passage` as the refusal passage:

    python bench/finetune_hardneg.py --workdir /tmp/ftbench_d halueval --passages 120 --train-items 160 \
        --heldout 0 --negatives 0.45 --epochs 1 --lr 3e-4 --model-questions 0 --halueval-questions 40 \
        --eval-max-tokens 32 --name J

It did not help (the model learned no refusals at all), so ragkit keeps the far passage.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.finetune import QAPair, holds

sys.path.insert(0, str(Path(__file__).resolve().parent))

_vectors: dict[int, np.ndarray] = {}
_embedder: Any = None


def nearest_passage(pair: QAPair, contexts: Sequence[str], index: int) -> str | None:
    """The most similar other passage that does not hold the pair's answer (contexts embedded once)."""
    vecs = _vectors.get(id(contexts))
    if vecs is None:
        vecs = _vectors[id(contexts)] = _embedder.embed(list(contexts))
    for k in np.argsort(-(vecs @ vecs[index])):
        if k != index and not holds(contexts[k], pair.answer):
            return contexts[k]
    return None


if __name__ == "__main__":
    import finetune as bench_ft  # bench/finetune.py

    from ragkit.embedding import SentenceTransformerEmbedder

    _embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")  # the bench KBs' embedder
    bench_ft.main(refusal=nearest_passage)
