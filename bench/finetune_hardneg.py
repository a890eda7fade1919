"""Experiment (run J in docs/benchmarks.md): refusal examples get the most similar other passage that does not
hold the answer, instead of one far along the list, to teach refusing when the sources are related but lack
the answer. Same arguments as bench/finetune.py, which it runs with ragkit.finetune._examples replaced:

    python bench/finetune_hardneg.py --workdir /tmp/ftbench_d halueval --passages 120 --train-items 160 \
        --heldout 0 --negatives 0.45 --epochs 1 --lr 3e-4 --model-questions 0 --halueval-questions 40 \
        --eval-max-tokens 32 --name J

It did not help (the model learned no refusals at all), so ragkit keeps the far passage.
"""

import sys
from pathlib import Path

import numpy as np

import ragkit.finetune as F
from ragkit.finetune import ProgressEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _examples(builder, pairs, options, rng, progress):  # type: ignore[no-untyped-def]  # noqa: ANN001
    n_neg = round(len(pairs) * max(0.0, min(1.0, options.negatives)))
    negative = set(rng.sample(range(len(pairs)), n_neg))
    contexts = [p.context for p in pairs if p.context]
    vecs = builder.kb.embedder.embed(contexts) if contexts else None
    out = []
    for i, pair in enumerate(pairs):
        pos = builder.positive(pair, i)
        if pos is not None:
            out.append(pos)
        if i in negative:
            other = None
            if pair.context and len(contexts) > 1:
                j = contexts.index(pair.context)
                sims = vecs @ vecs[j]
                for k in np.argsort(-sims):
                    if k != j and not F.holds(contexts[k], pair.answer):
                        other = contexts[k]
                        break
            neg = builder.negative(pair, other, i)
            if neg is not None:
                out.append(neg)
        if progress:
            progress(ProgressEvent("examples", i + 1, len(pairs), note=pair.question[:60]))
    rng.shuffle(out)
    return out


if __name__ == "__main__":
    import finetune as bench_ft  # bench/finetune.py

    F._examples = _examples
    bench_ft.main()
