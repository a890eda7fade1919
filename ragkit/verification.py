"""A model reads an answer before it is delivered: do the sources state it?

generator.min_verified: the fallback model reads the first model's answer (off unless set).
generator.fallback_min_verified: the fallback model reads its own answer, at the floor measured for it
(OWN_MIN_VERIFIED) unless set. generator.own_min_verified: a generator without a fallback reads its own answer
(off unless set).

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

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ragkit.grounding import CITATION
from ragkit.protocols import Generator, YesNoScorer
from ragkit.types import Answer, Flag, Hit, Message

if TYPE_CHECKING:
    from ragkit.answering import AnswerOptions

# the floor below which the fallback withholds its own answer (generator.fallback_min_verified unset), per model:
# a P(yes) is on the model's own scale (Qwen 0.5B gives its right answers 0.2-0.5, "Eighth round"), so a floor
# measured for one model does not carry over. Qwen 1.5B's 0.5 ("no" more likely than "yes") withheld 3 of 14
# wrong answers and none of 36 right ones on dev (docs/benchmarks.md, "Eleventh round")
OWN_MIN_VERIFIED = {"Qwen2.5-Coder-1.5B-Instruct": 0.5}

ASK = "Do the sources state this answer to the question? Reply yes or no."
SYSTEM = "You check whether an answer is stated in the sources. Reply yes or no only."
SOURCE_CHARS = 1500  # of each source, as the floor was measured (bench/self_verify.py)


# the floor at which a generator's reading of its own draft overrules a coverage check (generator.release_min_verified
# unset; ragkit.withholding.release), per model, on its own P(yes) scale; unmeasured models get none. Qwen 1.5B's
# 0.85: on the dev split the 5 withheld drafts it read at 0.85 or more were all right, the next two inventions; on
# fifteen real-document trials +7 right, +3 wrong, +1 invention (docs/benchmarks.md, "Twentieth round"). 0.76
# (rule RW, docs/design-notes.md): on trials 71-94 the drafts it read at 0.76-0.85 were 43 right, 8 wrong or invented
RELEASE_MIN_VERIFIED: dict[str, float] = {"Qwen2.5-Coder-1.5B-Instruct": 0.76}


def default_release_min_verified(model: str) -> float:
    """The release floor measured for a bundled model; 0.0 (off) for any other model."""
    return RELEASE_MIN_VERIFIED.get(model, 0.0)


def default_own_min_verified(model: str) -> float:
    """The floor measured for a bundled model reading its own answers; 0.0 (off) for any other model."""
    return OWN_MIN_VERIFIED.get(model, 0.0)


def verification_messages(
    question: str, answer: str, sources: Sequence[str], source_chars: int = SOURCE_CHARS
) -> list[Message]:
    """The chat that asks whether `sources` (numbered from 1, each cut at `source_chars`) state `answer` (its
    [n] markers dropped)."""
    listed = "\n\n".join(f"[{i}] {text[:source_chars]}" for i, text in enumerate(sources, start=1))
    said = CITATION.sub("", answer).strip()
    user = f"Sources:\n{listed}\n\nQuestion: {question}\nProposed answer: {said}\n\n{ASK}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def verified(question: str, answer: str, hits: Sequence[Hit], verifier: object) -> float | None:
    """The verifier's P(yes) that the hits state the answer; None when it cannot read its own probabilities
    (an HTTP or llama.cpp backend)."""
    if not isinstance(verifier, YesNoScorer):
        return None
    return verifier.yes_probability(verification_messages(question, answer, [h.chunk.text for h in hits]))


def read(
    answer: Answer, verifier: Generator, floor: float, key: str, abstain: str, known: float | None = None
) -> Answer:
    """`answer` with the verifier's P(yes) that its sources state it (Answer.verified; `known` when already
    measured); below `floor` (the option named `key`), withheld as the other checks withhold: the `abstain`
    phrase, flag "unverified", the draft kept."""
    t0 = time.perf_counter()
    p = verified(answer.question, answer.text, answer.hits, verifier) if known is None else known
    if p is None:  # a backend that cannot read its own probabilities verifies nothing
        return answer
    spent = time.perf_counter() - t0
    total = round(answer.timings.get("total", 0.0) + spent, 4)
    timings = {**answer.timings, "verify": round(answer.timings.get("verify", 0.0) + spent, 4), "total": total}
    if p >= floor:
        return replace(answer, verified=round(p, 4), timings=timings)
    detail = f"{verifier.name} gave {p:.2f} that the sources state it ({key} {floor:.2f})"
    return replace(
        answer,
        text=abstain,
        citations=(),
        abstained=True,
        unsupported=(),
        flags=(*answer.flags, Flag("unverified", answer.text, detail=detail)),
        draft=answer.text,
        verified=round(p, 4),
        timings=timings,
    )


def read_own(answer: Answer, generator: Generator, options: AnswerOptions) -> Answer:
    """A generator without a fallback reads its own delivered answer at options.own_min_verified (0: off; a JSON
    Schema answer is not read)."""
    if answer.abstained or options.own_min_verified <= 0 or options.schema is not None:
        return answer
    # a released draft was read already, by the same model, with the same sources: its score stands
    known = answer.verified if any(f.kind == "released" for f in answer.flags) else None
    return read(answer, generator, options.own_min_verified, "own_min_verified", options.template.abstain, known)
