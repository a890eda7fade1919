"""Rule R: the generator reads the answer's own manual entry alone, beside the entries that compete with it.

The coverage check (ragkit.coverage, off_question) is word-level. Asked in the user's own words ("I need an
account for a background service daemon, not a real person. Which useradd option creates that kind of
account?"), the right option's entry ("-r, --system  Create a system account.") shares almost none of the
question's words, so right drafts are withheld as copied neighbours are; the release reading (ragkit.withholding,
"Do the sources state this answer?" over every source at once) read such drafts at 0.56-0.84, under its floor.

A manual page says what an option does in the entry the option heads, so the question can be put to each entry
alone: "Is the option in this entry the answer to the question?" The draft is released when the model reads its
own entry as the answer (P(yes) >= the floor) and better than every competing entry in view by a margin: a
neighbour copied into a wrong draft is then out-read by the entry that does answer, and an invented answer to an
unanswerable question finds no entry that reads as the answer. It reads at most ENTRY_RIVALS + 1 short prompts
(one forward pass each, nothing generated), and only for a draft the coverage check alone withheld or, by rule RU,
one the citation check withheld because it cited nothing ("The option for that is `-n`."): released, such a draft
cites the source that holds the entry (a citation of kind "entry").

Read by the base model it separated right drafts from wrong ones on the labelled runs it was written from and not
on eight held-out trials asked in the user's own words. Read by the bundled 1.5B model with a LoRA adapter trained
on this prompt (ragkit.generation.entry_reader, rule RT) it put the entry that answers first for 39 of 41
user-worded questions on four new held-out trials (the base model 32) and released 7 right drafts and nothing
wrong there: on by default for that model where the adapter has been built (bench/entry_reader.py); off for the
others, and for it without the adapter, unless generator.entry_release_min is set (docs/design-notes.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ragkit.citations import CheckedAnswer
from ragkit.entries import ENTRY_CHARS as EMBED_CHARS
from ragkit.entries import answer_entries
from ragkit.generation.entry_reader import ReaderUnavailable, entry_adapter
from ragkit.protocols import YesNoScorer
from ragkit.textutil import split_sentences, unwrap_lines
from ragkit.types import Citation, Flag, Hit, Message
from ragkit.withholding import RELEASABLE, WITHHOLDING_FLAGS, Withholding

SYSTEM = "You decide whether a manual entry answers a user's question. Reply yes or no only."
ASK = "Is the option in this entry the answer to the question? Reply yes or no."
ENTRY_CHARS = 800  # of each entry: its tag line and first paragraphs say what the option does
ENTRY_RIVALS = 5  # competing entries read, the most similar to the question (embedder) first

# the floor on the own entry's P(yes) (generator.entry_release_min unset), per model, on its own P(yes) scale, for
# a model read with its entry adapter only: the base 1.5B's reading at 0.5 separated right drafts from wrong ones on
# the runs it was written from (AUROC 0.95) but not on held-out user-worded trials (0.56); the tuned reading at the
# same floor released 7 right drafts and none wrong on trials 83-86; on trials 87-90 its releases under 0.5 (0.32,
# twice) were both right, so the floor is 0.3 (docs/design-notes.md, rules R, RT and RF)
ENTRY_RELEASE_MIN: dict[str, float] = {"Qwen2.5-Coder-1.5B-Instruct": 0.3}
ENTRY_MARGIN = 0.1
# the checks whose drafts rule R reads: the word-level coverage check (RELEASABLE), and the citation check (rule RU:
# "The option to do that is `-n`." cites nothing, and no word-overlap reading can say whether its entry answers)
ENTRY_RELEASABLE = (*RELEASABLE, "unsourced")
READ_ENTRY = "the model read the entry of"  # in a "released" flag's detail: this rule, not the release reading
IN_PLACE = "in place of the draft's"  # ... and rule RA's: another entry delivered instead of the draft


@dataclass(frozen=True, slots=True)
class EntryReading:
    """P(yes) that the answer's option (`named`) is the answer, read from its own entry, and the best P(yes) of
    the competing entries read (None when there were none)."""

    named: str
    own: float
    rival: float | None
    source: int = 0  # index of the source holding the own entry
    other: str = ""  # the text of the competing entry read highest ("" when none was read)
    other_source: int = 0  # index of the source holding it
    runner_up: float | None = None  # the second-best competing entry's reading (None with fewer than two)


def default_entry_release_min(model: str) -> float:
    """The floor measured for a bundled model read with its built entry adapter; 0.0 (off) for any other model,
    and for that one if its adapter is missing (the base reading is an option, not a default)."""
    return ENTRY_RELEASE_MIN.get(model, 0.0) if entry_adapter(model) is not None else 0.0


def entry_messages(question: str, entry: str) -> list[Message]:
    """The chat that asks whether one manual entry (cut at ENTRY_CHARS) answers `question`."""
    user = f"Manual entry:\n{entry[:ENTRY_CHARS].strip()}\n\nQuestion: {question}\n\n{ASK}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def read_entries(
    question: str,
    answer: str,
    sources: Sequence[str],
    reader: YesNoScorer,
    embed: Callable[[list[str]], Any] | None,
) -> EntryReading | None:
    """The reader's P(yes) for the answer's own entry and its best competitor's; None when the question asks
    for no option or the answer names none heading an entry (ragkit.entries.answer_entries). Competitors are the
    ENTRY_RIVALS entries most similar to the question by `embed` (source order without it)."""
    found = answer_entries(question, answer, sources)
    if found is None:
        return None
    others = competing_entries(question, found.others, embed)
    own = reader.yes_probability(entry_messages(question, found.own))
    rivals = [reader.yes_probability(entry_messages(question, o)) for o in others]
    source = next(i for i, text in enumerate(sources) if found.own in text)
    if not rivals:
        return EntryReading(found.named, round(own, 4), None, source)
    ranked = sorted(range(len(rivals)), key=lambda i: -rivals[i])
    best = others[ranked[0]]
    where = next(i for i, text in enumerate(sources) if best in text)
    runner_up = round(rivals[ranked[1]], 4) if len(ranked) > 1 else None
    return EntryReading(found.named, round(own, 4), round(rivals[ranked[0]], 4), source, best, where, runner_up)


def competing_entries(question: str, others: Sequence[str], embed: Callable[[list[str]], Any] | None) -> list[str]:
    """The ENTRY_RIVALS entries rule R reads beside the answer's own: the most similar to the question by `embed`
    ((n,) texts -> (n, dim) vectors), else the first in source order."""
    others = list(others)
    if embed is not None and len(others) > ENTRY_RIVALS:
        vectors = np.asarray(embed([question, *(o[:EMBED_CHARS] for o in others)]), dtype=float)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        order = np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")
        others = [others[i] for i in order]
    return others[:ENTRY_RIVALS]


def reads_as_answer(read: EntryReading, floor: float) -> bool:
    """The own entry reads P(yes) >= floor and at least ENTRY_MARGIN above every competing entry read."""
    return read.own >= floor and (read.rival is None or read.own >= read.rival + ENTRY_MARGIN)


def reads_as_other_answer(read: EntryReading, floor: float) -> bool:
    """Rule RA: the competing entry read highest reads P(yes) >= floor and ENTRY_MARGIN above both the draft's own
    entry and the next competing entry."""
    if floor <= 0 or read.rival is None or not read.other or read.rival < floor:
        return False
    return read.rival >= read.own + ENTRY_MARGIN and read.rival >= (read.runner_up or 0.0) + ENTRY_MARGIN


def release_by_entry(
    question: str,
    before: CheckedAnswer,
    held: Withholding,
    hits: Sequence[Hit],
    reader: object,
    embed: Callable[[list[str]], Any] | None,
    floor: float,
    answer_floor: float = 0.0,
) -> Withholding:
    """`held`, or, when only a coverage check (RELEASABLE) or the citation check (unsourced: rule RU) withheld the
    draft and the reader reads the draft's own entry as the answer (P(yes) >= floor, and ENTRY_MARGIN above every
    competing entry), `before` delivered with a "released" flag saying so; an unsourced draft is delivered citing
    the source that holds the entry. When any check withheld the draft and the reader reads another entry as the
    answer instead (rule RA, reads_as_other_answer at `answer_floor`), that entry is delivered in its place
    (answered_by_entry). A reader without probabilities (HTTP, llama.cpp) releases nothing; rule R off (floor 0)
    turns rule RA off too: both are the same reading."""
    why = next((f for f in held.checked.flags if f.kind in WITHHOLDING_FLAGS), None)
    if floor <= 0 or not held.draft or why is None:
        return held
    releasable = why.kind in ENTRY_RELEASABLE
    if not releasable and answer_floor <= 0:
        return held
    if not isinstance(reader, YesNoScorer):
        return held
    try:
        read = read_entries(question, held.draft, [h.chunk.text for h in hits], reader, embed)
    except ReaderUnavailable as exc:  # the draft stays withheld, and its reason says the reading was skipped
        noted = replace(why, detail=f"{why.detail}; {exc}")
        flags = tuple(noted if f is why else f for f in held.checked.flags)
        return replace(held, checked=replace(held.checked, flags=flags))
    if read is not None and reads_as_other_answer(read, answer_floor):
        return answered_by_entry(before, held, hits, read, why)
    if read is None or not releasable or not reads_as_answer(read, floor):
        return held
    rival = "no other entry in view" if read.rival is None else f"the best other entry {read.rival:.2f}"
    detail = f"{why.detail}; but {READ_ENTRY} {read.named} as the answer ({read.own:.2f}; {rival})"
    flag = Flag("released", held.draft, detail=detail, quote=why.quote)
    delivered = cite_entry(before, hits, read) if why.kind == "unsourced" else before
    return replace(held, checked=replace(delivered, flags=(*delivered.flags, flag)), draft="")


def answered_by_entry(
    before: CheckedAnswer, held: Withholding, hits: Sequence[Hit], read: EntryReading, why: Flag
) -> Withholding:
    """Rule RA's answer: the entry read as the answer, given as its tag line and first sentence, citing the
    source that holds it (a Citation of kind "entry"), with a "released" flag naming the draft's option it
    replaces; the withholding flag stays, saying what was wrong with the draft."""
    tag, _, body = read.other.strip().partition("\n")
    first = next(iter(split_sentences(unwrap_lines(body.strip()))), "").strip().rstrip(".")
    n = read.other_source + 1
    text = f"`{tag.strip()}`: {first} [{n}]." if first else f"`{tag.strip()}` [{n}]."
    c = hits[read.other_source].chunk
    cited = Citation(n, c.id, c.uri, c.page, c.section, c.start, c.end, "entry", text, 0.0)
    detail = (
        f"{why.detail}; but {READ_ENTRY} {tag.strip()} as the answer {IN_PLACE} {read.named} "
        f"({read.rival:.2f}; the draft's own entry {read.own:.2f}, the next entry {read.runner_up or 0.0:.2f})"
    )
    flag = Flag("released", held.draft, detail=detail, quote=why.quote)
    kept = tuple(f for f in before.flags if f.kind not in _OF_THE_DRAFT)  # the draft's sentences are not delivered
    answer = CheckedAnswer(text=text, citations=(cited,), unsupported=(), abstained=False, flags=(*kept, flag))
    return replace(held, checked=answer, draft="")


_OF_THE_DRAFT = frozenset({"unsupported", "uncited", "invalid_citation"})


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def cite_entry(before: CheckedAnswer, hits: Sequence[Hit], read: EntryReading) -> CheckedAnswer:
    """`before` (an answer no source supported word by word) citing the source that holds the entry read as the
    answer: [n] at the end of the sentence naming the option (of the whole text if none does), and a Citation of
    kind "entry" for it."""
    n = read.source + 1
    c = hits[read.source].chunk
    text = before.text
    at = text.find(read.named)
    end = _SENTENCE_END.search(text, at + len(read.named)) if at >= 0 else None
    cut = end.start() if end is not None else len(text.rstrip())
    start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, max(at, 0))), default=0)
    sentence = text[start:cut].strip()
    cited = Citation(n, c.id, c.uri, c.page, c.section, c.start, c.end, "entry", sentence, 0.0)
    return replace(before, text=f"{text[:cut].rstrip()} [{n}]{text[cut:]}", citations=(*before.citations, cited))
