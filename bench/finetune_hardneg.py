"""Experiment (run J in docs/benchmarks.md): refusal examples get the most similar other passage that does not
hold the answer, instead of one far along the list, to teach refusing when the sources are related but lack
the answer. Same arguments as bench/finetune.py, which it runs with ragkit.finetune.refusal_passage replaced:

    python bench/finetune_hardneg.py --workdir /tmp/ftbench_d halueval --passages 120 --train-items 160 \
        --heldout 0 --negatives 0.45 --epochs 1 --lr 3e-4 --model-questions 0 --halueval-questions 40 \
        --eval-max-tokens 32 --name J

It did not help (the model learned no refusals at all), so ragkit keeps the far passage.
"""

import sys
from pathlib import Path

import numpy as np

import ragkit.finetune as F

sys.path.insert(0, str(Path(__file__).resolve().parent))


_vectors: dict[int, np.ndarray] = {}


def nearest_passage(builder: F.ExampleBuilder, pair: F.QAPair, contexts: list[str]) -> str | None:
    """The most similar other passage that does not hold the pair's answer (contexts embedded once)."""
    vecs = _vectors.get(id(contexts))
    if vecs is None:
        vecs = _vectors[id(contexts)] = builder.kb.embedder.embed(contexts)
    j = contexts.index(pair.context)
    for k in np.argsort(-(vecs @ vecs[j])):
        if k != j and not F.holds(contexts[k], pair.answer):
            return contexts[k]
    return None


if __name__ == "__main__":
    import finetune as bench_ft  # bench/finetune.py

    F.refusal_passage = nearest_passage
    bench_ft.main()
