"""After generation: parse [n] markers, check each sentence against the sources, detect abstention.

A small local GPT often cites the wrong number, or none. Each answer sentence is checked against the
numbered sources by content-word support (the share of the sentence's content words, numbers and names that
occur in the source). A citation is kept when its source supports the sentence, moved to the source that
does when it does not ("corrected"), added when the model wrote none ("inferred"); a sentence no source
supports is reported as unsupported. The kind of every citation is recorded, so nothing is passed off as
the model's own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragkit.textutil import NUMBER, content_words, repeats, split_sentences
from ragkit.types import Citation, Hit

SUPPORT_THRESHOLD = 0.5

_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_ABSTAIN = re.compile(
    r"\b(i\s+(do\s+not|don'?t|cannot|can'?t)\s+know|(do|does)\s+not\s+(contain|answer|mention|say)|"
    r"(cannot|can'?t)\s+(be\s+)?answer(ed)?|not\s+(mentioned|provided|stated|found)\s+in\s+the\s+sources?)",
    re.IGNORECASE,
)
# small models go on to invent the next turn of the conversation; everything from here on is not the answer
_RUNAWAY = re.compile(r"\n\s*(Question|Sources?|User|Assistant)\s*:", re.IGNORECASE)


def support(sentence: str, source: str) -> float:
    """Share of the sentence's content words found in the source, 0..1 (1.0 for a sentence with none).

    A number in the sentence that the source does not contain makes the support 0: small models copy the
    wording of a source and change its figures, the most common hallucination in RAG answers.
    """
    words = content_words(sentence)
    if not words:
        return 1.0
    if not set(NUMBER.findall(sentence)) <= set(NUMBER.findall(source)):
        return 0.0
    return len(words & content_words(source)) / len(words)


def should_stop(generated: str) -> bool:
    """Stop decoding once the answer invents a new turn or a finished sentence restates an earlier one."""
    if _RUNAWAY.search(generated):
        return True
    done = split_sentences(_MARKER.sub("", generated))
    if generated and generated[-1] not in ".!?\n":
        done = done[:-1]  # the last piece is still being written
    return len(done) > 1 and repeats(done[-1], done[:-1])


def is_abstention(text: str) -> bool:
    """True when the answer says the sources do not hold the answer (the phrase or a close variant)."""
    return bool(_ABSTAIN.search(text))


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    text: str  # sentences with verified [n] markers, repeated sentences removed
    citations: tuple[Citation, ...]
    unsupported: tuple[str, ...]
    abstained: bool


def _with_marker(sentence: str, numbers: Sequence[int]) -> str:
    if not numbers:
        return sentence
    marks = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?]+$", sentence)
    if m:
        return f"{sentence[: m.start()]} {marks}{m.group()}"
    return f"{sentence} {marks}"


def check_answer(
    raw: str, hits: Sequence[Hit], *, complete: bool = True, threshold: float = SUPPORT_THRESHOLD
) -> CheckedAnswer:
    """Verify an answer against the sources it was given; hits[0] is source [1].

    complete=False means decoding was cut (token limit or a stop rule): an unfinished last sentence is dropped.
    """
    runaway = _RUNAWAY.search(raw)
    if runaway:
        raw, complete = raw[: runaway.start()], True
    if is_abstention(raw) or not raw.strip():
        return CheckedAnswer(text=raw.strip(), citations=(), unsupported=(), abstained=True)
    pieces = split_sentences(raw)
    if not complete and pieces and _MARKER.sub("", pieces[-1]).rstrip()[-1:] not in {".", "!", "?"}:
        pieces = pieces[:-1]
    citations: list[Citation] = []
    unsupported: list[str] = []
    rebuilt: list[str] = []
    kept: list[str] = []
    for piece in pieces:
        cited = [int(n) for m in _MARKER.finditer(piece) for n in m.group(1).split(",")]
        sentence = _MARKER.sub("", piece).strip()
        if not sentence or not content_words(sentence):
            if sentence:
                rebuilt.append(sentence)
            continue
        if repeats(sentence, kept):
            continue  # greedy decoding of small models loops; a restated sentence adds nothing
        kept.append(sentence)
        scores = [support(sentence, h.chunk.text) for h in hits]
        valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(hits) and scores[n - 1] >= threshold]
        if valid:
            chosen, kind = valid, "cited"
        elif scores and max(scores) >= threshold:
            chosen, kind = [scores.index(max(scores)) + 1], ("corrected" if cited else "inferred")
        else:
            chosen, kind = [], ""
            unsupported.append(sentence)
        for n in chosen:
            c = hits[n - 1].chunk
            citations.append(
                Citation(
                    n=n,
                    chunk_id=c.id,
                    uri=c.uri,
                    page=c.page,
                    section=c.section,
                    start=c.start,
                    end=c.end,
                    kind=kind,
                    sentence=sentence,
                    support=round(scores[n - 1], 3),
                )
            )
        rebuilt.append(_with_marker(sentence, chosen))
    return CheckedAnswer(
        text=" ".join(rebuilt), citations=tuple(citations), unsupported=tuple(unsupported), abstained=False
    )
