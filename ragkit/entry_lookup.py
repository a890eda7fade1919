"""Rule RL: the entry of the option a withheld draft names, looked up in the documents the answer came from.

Rule R reads a draft's own manual entry only when it is among the sources the model was shown. On trials 87-90, 5
of the 7 right option drafts still withheld named an option heading no entry in view ("The option that lets you
give the destination folder first is the `-t` option."): retrieval had brought the page's other entries, and the
model knew the option. Its entry was in the same document, a few chunks away.

So a draft withheld by a check rule R may overrule (ENTRY_RELEASABLE), naming an option that heads no entry in
view, has that option looked up: a keyword search for it under the question's filters and the principal's access,
kept to the documents already in view and to chunks where the option heads an entry. That entry is read beside
the entries in view as rule R reads (same floor, margin and rivals), and when it reads as the answer the draft is
delivered citing that chunk, added to the answer's sources as the next [n] (a citation of kind "entry"); the
draft's own markers, pointing at sources that do not hold the option, are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ragkit.citations import CheckedAnswer, strip_markers
from ragkit.entries import answer_entries, heads_entry, named_option
from ragkit.entry_reading import ENTRY_RELEASABLE, READ_ENTRY, cite_entry, read_entries, reads_as_answer
from ragkit.generation.entry_reader import entry_reader
from ragkit.protocols import YesNoScorer
from ragkit.types import Answer, Flag, Hit
from ragkit.withholding import WITHHOLDING_FLAGS

LOOKUP_K = 50  # keyword hits searched for the option's entry: a manual page is a few dozen chunks
Search = Callable[..., Sequence[Hit]]  # (query, k, *, filters, mode, rerank) -> hits, as KnowledgeBase.search


def entry_hit(named: str, hits: Sequence[Hit], search: Search, filters: Any) -> Hit | None:
    """The best keyword hit for `named` (`search`, under `filters`) in a document of `hits` but not among them,
    where `named` heads an entry; None when there is none."""
    docs = {h.chunk.doc_id for h in hits}
    seen = {h.chunk.id for h in hits}
    found = search(named, LOOKUP_K, filters=filters, mode="keyword", rerank=False)
    found = [h for h in found if h.chunk.doc_id in docs and h.chunk.id not in seen]
    return next((h for h in found if heads_entry(named, h.chunk.text)), None)


def look_up_entry(
    answer: Answer,
    search: Search,
    filters: Any,
    generator: object,
    embed: Callable[[list[str]], Any] | None,
    floor: float,
) -> Answer:
    """`answer`, or, when its draft was withheld by a check in ENTRY_RELEASABLE and names an option heading no entry
    in its hits, the draft delivered citing the entry `search` finds for it (KnowledgeBase.search's shape: a keyword
    search under the question's `filters` and the principal's access), if the generator's entry reader
    (ragkit.generation.entry_reader) reads that entry as the answer (rule R's test at `floor`). A generator without
    probabilities, or floor 0, changes nothing."""
    why = next((f for f in answer.flags if f.kind in WITHHOLDING_FLAGS), None)
    if floor <= 0 or not answer.abstained or not answer.draft or why is None or why.kind not in ENTRY_RELEASABLE:
        return answer
    reader = entry_reader(generator)
    if not isinstance(reader, YesNoScorer):
        return answer
    question, draft = answer.question, strip_markers(answer.draft)
    sources = [h.chunk.text for h in answer.hits]
    named = named_option(question, draft)
    if named is None or answer_entries(question, draft, sources) is not None:
        return answer  # no option named, or its entry was in view: rule R has read it
    hit = entry_hit(named, answer.hits, search, filters)
    if hit is None:
        return answer
    hits = (*answer.hits, replace(hit, rank=len(answer.hits) + 1))
    read = read_entries(question, draft, [*sources, hit.chunk.text], reader, embed)
    if read is None or not reads_as_answer(read, floor):
        return answer
    rival = "no other entry in view" if read.rival is None else f"the best other entry {read.rival:.2f}"
    where = f"looked up in {hit.chunk.source_name}" + (f', section "{hit.chunk.section}"' if hit.chunk.section else "")
    detail = f"{why.detail}; but {READ_ENTRY} {read.named} as the answer ({read.own:.2f}; {rival}), {where}"
    cited = cite_entry(CheckedAnswer(draft, (), answer.unsupported, False), hits, read)
    flags = (*(f for f in answer.flags if f is not why), Flag("released", answer.draft, detail=detail, quote=why.quote))
    return replace(
        answer, text=cited.text, citations=cited.citations, hits=hits, abstained=False, draft="", flags=flags
    )
