"""After generation: parse [n] markers, check each sentence against the sources, detect abstention.

A small local GPT often cites the wrong number, or none. Each answer sentence is checked against the
numbered sources by content-word support (the share of the sentence's content words, numbers and names that
occur in the source). A citation is kept when its source supports the sentence, moved to the source that
does when it does not ("corrected"), added when the model wrote none ("inferred"); a sentence no source
supports is reported as unsupported. The kind of every citation is recorded, so nothing is passed off as
the model's own.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragkit.safety import echoed_instruction
from ragkit.textutil import content_words, numbers_held, repeats, split_sentences, unwrap_lines
from ragkit.types import Citation, Flag, Hit

SUPPORT_THRESHOLD = 0.5

MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
# an inline code span is quoted text, never a marker: "always `[0, 0, 0]` on Windows" (Node's os.loadavg())
# lost its array to the marker stripper and was delivered as "always ``"
_CODE_OR_MARKER = re.compile(r"(``[^\n]*?``|`[^`\n]*`)|" + MARKER.pattern)  # ``rst literal`` too
_ABSTAIN = re.compile(
    r"\b(i\s+(do\s+not|don'?t|cannot|can'?t)\s+know|"
    # "the (provided) sources do not mention": said of the sources, not an order copied from one ("Don't include")
    r"(sources?|documents?|context|texts?|passages?|excerpts?|it|they)(\s+\w+){0,2}?\s+(do|does|did)\s*(not|n'?t)\s+"
    r"(explicitly\s+|directly\s+|specifically\s+)?(contain|answer|mention|say|include|provide|cover|specify|state)|"
    r"(cannot|can'?t|unable\s+to)\s+(be\s+)?(answer(ed)?|determine|find|tell)|"
    r"not\s+(explicitly\s+|directly\s+|specifically\s+)?(mentioned|provided|stated|found|given|specified|covered)\s+in\s+"
    r"the\s+(provided\s+)?(sources?|documents?|"
    r"context|text)|(no|not\s+enough|insufficient)\s+information\s+(about|on|in|to|regarding)|i'?m\s+not\s+sure|"
    r"i\s+(have|had)\s+no\s+(information|idea)|there\s+is\s+no\s+(mention|information))",
    re.IGNORECASE,
)
_QUOTED = re.compile(r'"[^"\n]*"|\u201c[^\u201d\n]*\u201d|`[^`\n]*`')  # "...", “...”, `...`
# markers the model wrote after a sentence's stop ("... NFKC. [3].") and words joining markers ("[1] and [2]"):
# split as they stand, the markers became a sentence of their own (". ") and their sentence lost its citation
_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)(?:[ \t]*[.!?])?")
_JOINED = re.compile(r"\]\s*(?:,|and|&)\s*\[")
ABSTAIN_SIMILARITY = 0.8  # difflib ratio to the abstention phrase above which a reply counts as it
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
    if not numbers_held(sentence, source):
        return 0.0
    return len(words & content_words(source)) / len(words)


def should_stop(generated: str) -> bool:
    """Stop decoding once the answer invents a new turn or a finished sentence restates an earlier one."""
    if _RUNAWAY.search(generated):
        return True
    done = split_sentences(strip_markers(generated))
    if generated and generated[-1] not in ".!?\n":
        done = done[:-1]  # the last piece is still being written
    return len(done) > 1 and repeats(done[-1], done[:-1])


def is_abstention(text: str, phrase: str | None = None) -> bool:
    """True when the answer says the sources do not hold the answer (the phrase or a close variant).

    Close variants: a known way of saying so (regex), or a reply whose first sentence is at least 80% similar to
    `phrase` (character-level, case-insensitive), which catches small models' misspellings of it.
    """
    # a quotation is not the model speaking: "... fails with "cannot find -lc"" quotes an error message
    if _ABSTAIN.search(_QUOTED.sub(" ", text)):
        return True
    if phrase and text.strip():
        first = split_sentences(strip_markers(text))[:1]
        return bool(first) and _similar(first[0], phrase) >= ABSTAIN_SIMILARITY
    return False


def strip_markers(text: str, repl: str = "") -> str:
    """`text` with its [n] / [n, m] citation markers replaced by `repl`; inline `code` keeps its brackets."""
    return _CODE_OR_MARKER.sub(lambda m: m.group(1) or repl, text)


def marker_numbers(text: str) -> list[int]:
    """The source numbers `text`'s citation markers name, in order (repeats kept); inline `code` is skipped."""
    return [int(n) for m in _CODE_OR_MARKER.finditer(text) if m.group(2) for n in m.group(2).split(",")]


def markers_before_stop(text: str) -> str:
    """The text with citation markers written after a sentence's stop moved before it ("NFKC. [3]." ->
    "NFKC [3].") and joined markers written together ("[1] and [2]" -> "[1][2]")."""
    text = _JOINED.sub("][", text)
    return _AFTER_STOP.sub(lambda m: f" {m.group(2).strip()}{m.group(1)}", text)


def _similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower().strip(" ."), b.lower().strip(" .")).ratio()


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    text: str  # sentences with verified [n] markers, repeated sentences removed
    citations: tuple[Citation, ...]
    unsupported: tuple[str, ...]
    abstained: bool
    flags: tuple[Flag, ...] = ()  # self-check findings: unsupported, uncited, invalid_citation


def _abstained(said: str, phrase: str | None) -> CheckedAnswer:
    """The model's own "I don't know": final, delivered as the phrase (Answer.raw_text keeps its words).

    A model that says the sources lack the answer often goes on to guess it ("The exact limit is not specified
    in the provided sources, but it is generally recommended to keep the file size under 10 MB"), and a guess
    behind a hedge is still a guess; a reply with a sentence that is not an abstention is flagged "hedged".
    """
    if not phrase:
        return CheckedAnswer(text=said, citations=(), unsupported=(), abstained=True)
    pieces = [p for p in split_sentences(strip_markers(said)) if content_words(p)]
    more = [p for p in pieces if not is_abstention(p, phrase)]
    flags = (Flag("hedged", said, None, "the model said the sources lack the answer, then went on"),) if more else ()
    return CheckedAnswer(text=phrase, citations=(), unsupported=(), abstained=True, flags=flags)


def _with_marker(sentence: str, numbers: Sequence[int]) -> str:
    if not numbers:
        return sentence
    marks = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?]+$", sentence)
    if m:
        return f"{sentence[: m.start()]} {marks}{m.group()}"
    return f"{sentence} {marks}"


def check_answer(
    raw: str,
    hits: Sequence[Hit],
    *,
    complete: bool = True,
    threshold: float = SUPPORT_THRESHOLD,
    strict: bool = False,
    abstain_phrase: str | None = None,
    question: str | None = None,
) -> CheckedAnswer:
    """Verify an answer against the sources it was given; hits[0] is source [1].

    With the question, a sentence that echoes an instruction planted in a source (prompts.echoed_instruction)
    is removed and flagged "echoed_instruction".
    complete=False means decoding was cut (token limit or a stop rule): an unfinished last sentence is dropped
    and flagged "truncated"; when it is the only sentence it is kept, ending in "...", so the answer is never
    silently empty.
    strict=True removes sentences no source supports; an answer left empty becomes `abstain_phrase`, abstained.
    Citations of a source number that does not exist are dropped and flagged.
    """
    runaway = _RUNAWAY.search(raw)
    if runaway:
        raw, complete = raw[: runaway.start()], True
    if is_abstention(raw, abstain_phrase) or not raw.strip():
        return _abstained(raw.strip(), abstain_phrase)
    # a copied hard-wrapped passage is checked and cited by sentence, not by line ("attach the following [1]
    # boilerplate notice")
    pieces = split_sentences(markers_before_stop(unwrap_lines(raw)))
    flags: list[Flag] = []
    if not complete and pieces and strip_markers(pieces[-1]).rstrip()[-1:] not in {".", "!", "?"}:
        flags.append(Flag("truncated", pieces[-1].strip(), None, "the answer hit the token limit"))
        pieces = pieces[:-1] if len(pieces) > 1 else [pieces[0].rstrip() + "..."]
    citations: list[Citation] = []
    unsupported: list[str] = []
    rebuilt: list[str] = []
    kept: list[str] = []
    for piece in pieces:
        cited = marker_numbers(piece)
        sentence = strip_markers(piece).strip()
        if not sentence or not content_words(sentence):
            if sentence:
                rebuilt.append(sentence)
            continue
        if repeats(sentence, kept):
            continue  # greedy decoding of small models loops; a restated sentence adds nothing
        # the sentence without its [n]: a marker's digit read as a word the answer shares with a source sentence
        echo = echoed_instruction(sentence, question, [h.chunk.text for h in hits]) if question else None
        if echo:
            flags.append(Flag("echoed_instruction", sentence, echo[0] + 1, echo[2], quote=echo[1]))
            continue
        kept.append(sentence)
        scores = [support(sentence, h.chunk.text) for h in hits]
        flags += [Flag("invalid_citation", sentence, n) for n in dict.fromkeys(cited) if not 1 <= n <= len(hits)]
        valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(hits) and scores[n - 1] >= threshold]
        if valid:
            chosen, kind = valid, "cited"
        elif scores and max(scores) >= threshold:
            chosen, kind = [scores.index(max(scores)) + 1], ("corrected" if cited else "inferred")
        else:
            chosen, kind = [], ""
            unsupported.append(sentence)
            flags.append(Flag("unsupported", sentence, None, f"{_BEST_SUPPORT}{max(scores, default=0.0):.2f}"))
            if strict:
                continue
        if kind == "inferred":
            flags.append(Flag("uncited", sentence, chosen[0]))
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
    text = " ".join(rebuilt)
    if not text and any(f.kind == "echoed_instruction" for f in flags):
        return CheckedAnswer("", (), tuple(unsupported), False, tuple(flags))
    if strict and not citations and abstain_phrase:
        return CheckedAnswer(abstain_phrase, (), tuple(unsupported), True, tuple(flags))
    return CheckedAnswer(text, tuple(citations), tuple(unsupported), False, tuple(flags))


_BEST_SUPPORT = "best support "  # an "unsupported" flag's detail: "best support 0.10"


def best_support(checked: CheckedAnswer) -> float | None:
    """The highest support any unsupported sentence of `checked` found in a source (the share of its words a
    source holds), read back from its "unsupported" flags; None when it has none."""
    found = [f.detail for f in checked.flags if f.kind == "unsupported" and (f.detail or "").startswith(_BEST_SUPPORT)]
    return max((float(d.removeprefix(_BEST_SUPPORT)) for d in found), default=None)


def _answer_key(answer: CheckedAnswer) -> frozenset[str]:
    """What an answer says, for voting: its content words (numbers included), or one key for abstentions."""
    if answer.abstained:
        return frozenset({"\x00abstain"})
    return frozenset(content_words(strip_markers(answer.text)))


def majority(answers: Sequence[CheckedAnswer], *, min_overlap: float = 0.5) -> tuple[int, float]:
    """Self-consistency vote: (index of the answer most others agree with, share of answers that agree), 0..1.

    Two answers agree when their content words overlap by min_overlap or more (Jaccard), or both abstain.
    Ties go to the earliest answer.
    """
    if not answers:
        raise ValueError("majority() needs at least one answer")
    keys = [_answer_key(a) for a in answers]

    def agree(a: frozenset[str], b: frozenset[str]) -> bool:
        return a == b or (bool(a | b) and len(a & b) / len(a | b) >= min_overlap)

    votes = [sum(agree(k, other) for other in keys) for k in keys]
    best = max(range(len(answers)), key=lambda i: (votes[i], -i))
    return best, votes[best] / len(answers)
