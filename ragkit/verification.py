"""A second model reads the first one's answer: do the sources state it? (generator.min_verified)

The fallback model (ragkit.fallback) is asked "Do the sources state this answer to the question? Reply yes or
no." with the sources the first model saw; P(yes) from one forward pass is the score. Read by Qwen2.5-Coder-1.5B,
it separates the 0.5B model's right answers from its wrong ones among those every other check delivers (AUROC
0.93 on the dev split), where the 0.5B model reading its own answers managed 0.77 (docs/benchmarks.md,
"Tenth round").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragkit.protocols import YesNoScorer
from ragkit.types import Hit, Message

ASK = "Do the sources state this answer to the question? Reply yes or no."
SYSTEM = "You check whether an answer is stated in the sources. Reply yes or no only."
SOURCE_CHARS = 1500  # of each source, as the floor was measured (bench/self_verify.py)
_MARKER = re.compile(r"\[\d+\]")

# The verifier's P(yes) below which the first model's answer is withheld, measured per bundled verifier on the
# dev split (docs/benchmarks.md, "Tenth round"): among the 38 answers Qwen 0.5B delivers there, the floor that
# withholds the most wrong answers net of right ones (10 of 11 wrong, 3 of 27 right, which the fallback then
# answers itself). Other models verify nothing until a floor is set.
MIN_VERIFIED: dict[str, float] = {"Qwen2.5-Coder-1.5B-Instruct": 0.72}


def default_min_verified(verifier: str) -> float:
    """The floor measured for a bundled verifier's name; 0.0 (off) for any other model."""
    return MIN_VERIFIED.get(verifier, 0.0)


def verification_messages(question: str, answer: str, sources: Sequence[str]) -> list[Message]:
    """The chat that asks whether `sources` (numbered from 1) state `answer` (its [n] markers dropped)."""
    listed = "\n\n".join(f"[{i}] {text[:SOURCE_CHARS]}" for i, text in enumerate(sources, start=1))
    said = _MARKER.sub("", answer).strip()
    user = f"Sources:\n{listed}\n\nQuestion: {question}\nProposed answer: {said}\n\n{ASK}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def verified(question: str, answer: str, hits: Sequence[Hit], verifier: object) -> float | None:
    """The verifier's P(yes) that the hits state the answer; None when it cannot read its own probabilities
    (an HTTP or llama.cpp backend)."""
    if not isinstance(verifier, YesNoScorer):
        return None
    return verifier.yes_probability(verification_messages(question, answer, [h.chunk.text for h in hits]))
