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

from ragkit.types import Citation, Hit

SUPPORT_THRESHOLD = 0.5

_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ABSTAIN = re.compile(
    r"\b(i\s+(do\s+not|don'?t|cannot|can'?t)\s+know|(do|does)\s+not\s+(contain|answer|mention|say)|"
    r"(cannot|can'?t)\s+(be\s+)?answer(ed)?|not\s+(mentioned|provided|stated|found)\s+in\s+the\s+sources?)",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves answer answers
    source sources question according also must may might shall""".split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased content words, crudely stemmed to 6 characters so 'rotated' meets 'rotation'."""
    return {w[:6] for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS}


_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def support(sentence: str, source: str) -> float:
    """Share of the sentence's content words found in the source, 0..1 (1.0 for a sentence with none).

    A number in the sentence that the source does not contain makes the support 0: small models copy the
    wording of a source and change its figures, the most common hallucination in RAG answers.
    """
    words = content_words(sentence)
    if not words:
        return 1.0
    if not set(_NUMBER.findall(sentence)) <= set(_NUMBER.findall(source)):
        return 0.0
    return len(words & content_words(source)) / len(words)


def _near_duplicate(words: set[str], seen: list[set[str]]) -> bool:
    return any(len(words & s) / max(1, len(words | s)) >= 0.8 for s in seen)


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


def check_answer(raw: str, hits: Sequence[Hit], threshold: float = SUPPORT_THRESHOLD) -> CheckedAnswer:
    """Verify an answer against the sources it was given; hits[0] is source [1]."""
    if is_abstention(raw) or not raw.strip():
        return CheckedAnswer(text=raw.strip(), citations=(), unsupported=(), abstained=True)
    citations: list[Citation] = []
    unsupported: list[str] = []
    rebuilt: list[str] = []
    seen: list[set[str]] = []
    for piece in _SENTENCE_END.split(raw.strip()):
        if not piece.strip():
            continue
        cited = [int(n) for m in _MARKER.finditer(piece) for n in m.group(1).split(",")]
        sentence = _MARKER.sub("", piece).strip()
        words = content_words(sentence)
        if not sentence or not words:
            if sentence:
                rebuilt.append(sentence)
            continue
        if _near_duplicate(words, seen):
            continue  # greedy decoding of small models loops; a repeated sentence adds nothing
        seen.append(words)
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
