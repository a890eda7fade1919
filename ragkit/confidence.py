"""How sure was the model of the fact it stated?

A model copying a number or a name from its sources puts high probability on each of its tokens; one that
invents the author of a manual or the year of a release spreads its probability over many candidates. The
key spans of an answer (ragkit.grounding.key_spans: numbers, names, code words it states beyond the question)
are where that shows: the rest of a sentence ("The default is ...") is predictable either way. The score is
the geometric mean probability of the tokens that overlap a key span, in [0, 1].

The floors are per generator, because each model has its own calibration: measured on the abstention dev set
(docs/benchmarks.md, "Abstention dev set"), for the bundled generators only; any other model, a fine-tuned
adapter included, gets no floor until one is set (`generator.min_confidence`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ragkit.grounding import CITATION, key_spans

# geometric-mean probability of the key-span tokens below which `ask` withholds the answer. SmolLM2's guesses
# show (dev split: answer-removed abstention 0.42 -> 0.58, no right draft withheld). Qwen2.5-0.5B gets none: it
# copies a neighbouring fact with *more* confidence than it states a right one (AUROC 0.31 on answer-removed).
MIN_CONFIDENCE = {"SmolLM2-135M-Instruct": 0.2}


@dataclass(frozen=True, slots=True)
class Confidence:
    """The model's confidence in the answer's key spans: geometric-mean token probability in [0, 1]."""

    score: float
    spans: tuple[str, ...]


def default_min_confidence(generator: str) -> float:
    """The measured floor for a bundled generator's name; 0.0 (off) for any other model or an adapter."""
    return MIN_CONFIDENCE.get(generator, 0.0)


def key_confidence(question: str, tokens: Sequence[tuple[str, float]]) -> Confidence | None:
    """The confidence of a generation's key spans from its (piece, log-probability) tokens; None when the
    backend reported no tokens or the answer states nothing beyond the question."""
    if not tokens:
        return None
    text = "".join(piece for piece, _ in tokens)
    spans = key_spans(text, question)
    # citation markers blanked, so that a span "1" is not found inside "[1]"
    lowered = CITATION.sub(lambda m: " " * len(m.group()), text).lower()
    ends, at = [], 0
    for piece, _ in tokens:
        at += len(piece)
        ends.append(at)
    inside: set[int] = set()
    found = []
    for span in spans:
        start = lowered.find(span.lower())
        if start < 0:
            continue
        found.append(span)
        stop = start + len(span)
        for i, end in enumerate(ends):
            begin = end - len(tokens[i][0])
            if begin < stop and end > start and tokens[i][0].strip():
                inside.add(i)
    if not inside:
        return None
    mean = sum(tokens[i][1] for i in inside) / len(inside)
    return Confidence(math.exp(mean), tuple(found))
