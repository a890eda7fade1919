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

Read by the base model it separated right drafts from wrong ones on the labelled runs it was written from and not
on eight held-out trials asked in the user's own words. Read by the bundled 1.5B model with a LoRA adapter trained
on this prompt (ragkit.generation.entry_reader, rule RT) it put the entry that answers first for 39 of 41
user-worded questions on four new held-out trials (the base model 32) and released 7 right drafts and nothing
wrong there: on by default for that model where the adapter has been built (bench/entry_reader.py); off for the
others, and for it without the adapter, unless generator.entry_release_min is set (docs/design-notes.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ragkit.citations import CheckedAnswer
from ragkit.entries import ENTRY_CHARS as EMBED_CHARS
from ragkit.entries import answer_entries
from ragkit.generation.entry_reader import entry_adapter
from ragkit.protocols import YesNoScorer
from ragkit.types import Flag, Hit, Message
from ragkit.withholding import RELEASABLE, WITHHOLDING_FLAGS, Withholding

SYSTEM = "You decide whether a manual entry answers a user's question. Reply yes or no only."
ASK = "Is the option in this entry the answer to the question? Reply yes or no."
ENTRY_CHARS = 800  # of each entry: its tag line and first paragraphs say what the option does
ENTRY_RIVALS = 5  # competing entries read, the most similar to the question (embedder) first

# the floor on the own entry's P(yes) (generator.entry_release_min unset), per model, on its own P(yes) scale, for
# a model read with its entry adapter only: the base 1.5B's reading at 0.5 separated right drafts from wrong ones on
# the runs it was written from (AUROC 0.95) but not on held-out user-worded trials (0.56); the tuned reading at the
# same floor released 7 right drafts and none wrong on trials 83-86 (docs/design-notes.md, rules R and RT)
ENTRY_RELEASE_MIN: dict[str, float] = {"Qwen2.5-Coder-1.5B-Instruct": 0.5}
ENTRY_MARGIN = 0.1
READ_ENTRY = "the model read the entry of"  # in a "released" flag's detail: this rule, not the release reading


@dataclass(frozen=True, slots=True)
class EntryReading:
    """P(yes) that the answer's option (`named`) is the answer, read from its own entry, and the best P(yes) of
    the competing entries read (None when there were none)."""

    named: str
    own: float
    rival: float | None


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
    others = list(found.others)
    if embed is not None and len(others) > ENTRY_RIVALS:
        vectors = np.asarray(embed([question, *(o[:EMBED_CHARS] for o in others)]), dtype=float)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        order = np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")
        others = [others[i] for i in order]
    own = reader.yes_probability(entry_messages(question, found.own))
    rivals = [reader.yes_probability(entry_messages(question, o)) for o in others[:ENTRY_RIVALS]]
    return EntryReading(found.named, round(own, 4), round(max(rivals), 4) if rivals else None)


def reads_as_answer(read: EntryReading, floor: float) -> bool:
    """The own entry reads P(yes) >= floor and at least ENTRY_MARGIN above every competing entry read."""
    return read.own >= floor and (read.rival is None or read.own >= read.rival + ENTRY_MARGIN)


def release_by_entry(
    question: str,
    before: CheckedAnswer,
    held: Withholding,
    hits: Sequence[Hit],
    reader: object,
    embed: Callable[[list[str]], Any] | None,
    floor: float,
) -> Withholding:
    """`held`, or, when only a coverage check (RELEASABLE) withheld the draft and the reader reads the draft's own
    entry as the answer (P(yes) >= floor, and ENTRY_MARGIN above every competing entry), `before` delivered with a
    "released" flag saying so. A reader without probabilities (HTTP, llama.cpp) releases nothing."""
    why = next((f for f in held.checked.flags if f.kind in WITHHOLDING_FLAGS), None)
    if floor <= 0 or not held.draft or why is None or why.kind not in RELEASABLE:
        return held
    if not isinstance(reader, YesNoScorer):
        return held
    read = read_entries(question, held.draft, [h.chunk.text for h in hits], reader, embed)
    if read is None or not reads_as_answer(read, floor):
        return held
    rival = "no other entry in view" if read.rival is None else f"the best other entry {read.rival:.2f}"
    detail = f"{why.detail}; but {READ_ENTRY} {read.named} as the answer ({read.own:.2f}; {rival})"
    flag = Flag("released", held.draft, detail=detail, quote=why.quote)
    return replace(held, checked=replace(before, flags=(*before.flags, flag)), draft="")
