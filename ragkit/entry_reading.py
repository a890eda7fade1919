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
(one forward pass each, nothing generated), and only for a draft the coverage check alone withheld.

Rule R2 reads the same way a draft withheld as `unsourced` (the model wrote no [n] and no source sentence holds
the answer's words: "The option that makes losetup tell you which loop device it picked is --show.") or as
`ungrounded` by the grounding score or rule E's word-level rival entry. The option heads an entry of the sources,
so it is not invented; whether it answers is what the reading judges. Not the ungrounded verdicts that the
sources never name the option picked, or name it only as the alternative ruled out, or a version of a change
(ragkit.coverage.unnamed_options, ragkit.roles.rejected_spans, rule N). An unsourced draft is delivered citing the
source that holds the entry (citation kind "entry").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ragkit.citations import CheckedAnswer, support, with_marker
from ragkit.coverage import unnamed_options
from ragkit.entries import Candidates, answer_entries, undated_change
from ragkit.protocols import YesNoScorer
from ragkit.roles import rejected_spans
from ragkit.types import Citation, Flag, Hit, Message
from ragkit.withholding import RELEASABLE, WITHHOLDING_FLAGS, Withholding

SYSTEM = "You decide whether a manual entry answers a user's question. Reply yes or no only."
ASK = "Is the option in this entry the answer to the question? Reply yes or no."
ENTRY_CHARS = 800  # of each entry: its tag line and first paragraphs say what the option does
ENTRY_RIVALS = 5  # competing entries read, the most similar to the question (embedder) first

# the floor on the own entry's P(yes) and the margin over the best competing entry (generator.entry_release_min
# unset), per model, on its own P(yes) scale; unmeasured models get none (docs/design-notes.md, rule R)
ENTRY_RELEASE_MIN: dict[str, float] = {"Qwen2.5-Coder-1.5B-Instruct": 0.5}
ENTRY_MARGIN = 0.1
# the checks rule R may overrule: the word-level coverage check (R), and (R2) no citation, and the grounding
# checks that ask whether the option answers (a source names it: its entry is read)
ENTRY_RELEASABLE = (*RELEASABLE, "unsourced", "ungrounded")


@dataclass(frozen=True, slots=True)
class EntryReading:
    """P(yes) that the answer's option (`named`) is the answer, read from its own entry, and the best P(yes) of
    the competing entries read (None when there were none)."""

    named: str
    own: float
    rival: float | None


def default_entry_release_min(model: str) -> float:
    """The floor measured for a bundled model; 0.0 (off) for any other model."""
    return ENTRY_RELEASE_MIN.get(model, 0.0)


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
    return None if found is None else _read(question, found, reader, embed)


def _read(
    question: str, found: Candidates, reader: YesNoScorer, embed: Callable[[list[str]], Any] | None
) -> EntryReading:
    others = list(found.others)
    if embed is not None and len(others) > ENTRY_RIVALS:
        vectors = np.asarray(embed([question, *(o[:1000] for o in others)]), dtype=float)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        order = np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")
        others = [others[i] for i in order]
    own = reader.yes_probability(entry_messages(question, found.own))
    rivals = [reader.yes_probability(entry_messages(question, o)) for o in others[:ENTRY_RIVALS]]
    return EntryReading(found.named, round(own, 4), round(max(rivals), 4) if rivals else None)


def release_by_entry(
    question: str,
    before: CheckedAnswer,
    held: Withholding,
    hits: Sequence[Hit],
    reader: object,
    embed: Callable[[list[str]], Any] | None,
    floor: float,
) -> Withholding:
    """`held`, or, when a check rule R may overrule (ENTRY_RELEASABLE) withheld the draft and the reader reads the
    draft's own entry as the answer (P(yes) >= floor, and ENTRY_MARGIN above every competing entry), `before`
    delivered with a "released" flag saying so. A reader without probabilities (HTTP, llama.cpp) releases nothing."""
    why = next((f for f in held.checked.flags if f.kind in WITHHOLDING_FLAGS), None)
    if floor <= 0 or not held.draft or why is None or why.kind not in ENTRY_RELEASABLE:
        return held
    sources = [h.chunk.text for h in hits]
    if not isinstance(reader, YesNoScorer) or (why.kind == "ungrounded" and _names_no_entry(question, held, sources)):
        return held
    found = answer_entries(question, held.draft, sources)
    if found is None:
        return held
    read = _read(question, found, reader, embed)
    if read.own < floor or (read.rival is not None and read.own < read.rival + ENTRY_MARGIN):
        return held
    rival = "no other entry in view" if read.rival is None else f"the best other entry {read.rival:.2f}"
    detail = f"{why.detail}; but the model read the entry of {read.named} as the answer ({read.own:.2f}; {rival})"
    if why.kind != "off_question":
        detail = f"{why.kind}: {detail}"
    delivered = _cited(before, found, hits) if not before.citations else before
    flag = Flag("released", held.draft, detail=detail, quote=why.quote)
    return replace(held, checked=replace(delivered, flags=(*delivered.flags, flag)), draft="")


def _names_no_entry(question: str, held: Withholding, sources: list[str]) -> bool:
    """Whether the draft was withheld as ungrounded for what no reading of an entry can answer: an option no source
    names, one the sources rule out, or a version of a change (rule N)."""
    draft = held.draft
    return bool(
        unnamed_options(question, draft, sources)
        or rejected_spans(draft, question, sources)
        or undated_change(question, draft, sources) is not None
    )


def _cited(before: CheckedAnswer, found: Candidates, hits: Sequence[Hit]) -> CheckedAnswer:
    """`before` (no citation kept) with the first sentence naming the option citing the source holding its entry."""
    sentence = next((s for s in before.unsupported if found.named in s), None)
    if sentence is None or sentence not in before.text:
        return before
    c, n = hits[found.source].chunk, found.source + 1
    cite = Citation(
        n, c.id, c.uri, c.page, c.section, c.start, c.end, "entry", sentence, round(support(sentence, c.text), 3)
    )
    text = before.text.replace(sentence, with_marker(sentence, [n]), 1)
    left = tuple(s for s in before.unsupported if s != sentence)
    flags = tuple(f for f in before.flags if not (f.kind == "unsupported" and f.text == sentence))
    return replace(before, text=text, citations=(cite,), unsupported=left, flags=flags)
