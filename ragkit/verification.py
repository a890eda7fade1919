"""A second model reads the first one's answer: do the sources state it? (generator.min_verified, off unless set)

The fallback model (ragkit.fallback) is asked "Do the sources state this answer to the question? Reply yes or
no." with the sources the first model saw; P(yes) from one forward pass is the score. Read by Qwen2.5-Coder-1.5B,
it separates the 0.5B model's right answers from its wrong ones among those every other check delivers (AUROC
0.93 on the dev split), where the 0.5B model reading its own answers managed 0.77 (docs/benchmarks.md,
"Tenth round").

The floor for that pair, 0.72, was chosen on the dev split: among the 38 answers the 0.5B model delivers there,
the one that withholds the most wrong answers net of right ones (10 of 11 wrong, 3 of 27 right, which the
fallback then answers itself). It is not a default: the reading costs a forward pass of the larger model for
every answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragkit.grounding import CITATION
from ragkit.protocols import YesNoScorer
from ragkit.types import Hit, Message

# the floor below which the fallback withholds its own answer (generator.fallback_min_verified unset), per model:
# a P(yes) is on the model's own scale (Qwen 0.5B gives its right answers 0.2-0.5, "Eighth round"), so a floor
# measured for one model does not carry over. Qwen 1.5B's 0.5 ("no" more likely than "yes") withheld 3 of 14
# wrong answers and none of 36 right ones on dev (docs/benchmarks.md, "Eleventh round")
OWN_MIN_VERIFIED = {"Qwen2.5-Coder-1.5B-Instruct": 0.5}

ASK = "Do the sources state this answer to the question? Reply yes or no."
SYSTEM = "You check whether an answer is stated in the sources. Reply yes or no only."
SOURCE_CHARS = 1500  # of each source, as the floor was measured (bench/self_verify.py)


def default_fallback_min_verified(model: str) -> float:
    """The floor measured for a bundled model reading its own answers; 0.0 (off) for any other model."""
    return OWN_MIN_VERIFIED.get(model, 0.0)


def verification_messages(question: str, answer: str, sources: Sequence[str]) -> list[Message]:
    """The chat that asks whether `sources` (numbered from 1) state `answer` (its [n] markers dropped)."""
    listed = "\n\n".join(f"[{i}] {text[:SOURCE_CHARS]}" for i, text in enumerate(sources, start=1))
    said = CITATION.sub("", answer).strip()
    user = f"Sources:\n{listed}\n\nQuestion: {question}\nProposed answer: {said}\n\n{ASK}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def verified(question: str, answer: str, hits: Sequence[Hit], verifier: object) -> float | None:
    """The verifier's P(yes) that the hits state the answer; None when it cannot read its own probabilities
    (an HTTP or llama.cpp backend)."""
    if not isinstance(verifier, YesNoScorer):
        return None
    return verifier.yes_probability(verification_messages(question, answer, [h.chunk.text for h in hits]))
