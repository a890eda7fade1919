"""The checks after generation that withhold an answer the sources do not found, keeping it as the draft.

In order, the first that fails replaces the answer with the abstention phrase and adds a flag saying why:
- unsourced: no sentence of the answer is supported by any source (the citation check kept no citation; rule C
  in docs/design-notes.md: it was how inventions without a [n] were delivered);
- restated (ragkit.coverage): the answer says nothing beyond the question;
- ungrounded (ragkit.grounding): its key fact is in no source, or only in a sentence about something else
  (for a choice or yes/no question: the option it picks is named in no source, or for a comparison between named
  alternatives, one of them is, rule CO; ragkit.coverage, ragkit.alternatives), or the
  sources name it only as the alternative they rule out ("3, rather than 2", ragkit.roles), or the option it
  names heads an entry about something else while another entry matches the question (rule E, ragkit.entries),
  or the version asked for a named thing's change stands only in sentences that never name it (rule N);
- unquantified (ragkit.coverage): the question asks for a figure ("how many/much/long/often/old", "which year",
  "which version", a "numeric value", an amount "in seconds") and the answer gives none;
- no_default (ragkit.stated): the question asks for a default and the sentence holding the answer, the ones
  beside it and its section title never say "default" (a value from an example is not the default);
- no_limit (ragkit.stated, rule X): the question asks for a bound ("largest", "at most") and that evidence never
  states one ("5%" copied from "The default percentage is 5%");
- off_question (ragkit.coverage): the sentence holding its key fact does not mention what the question asks (a
  copied passage of several sentences needs more of the question than a short answer);
- unsure (ragkit.confidence): the model itself put little probability on the key fact.

The coverage check (off_question) is word-level: a right answer whose source sentence says "..." where the
question says "three dots" fails it as a copied neighbour does. So a draft withheld by it alone may be read by the
generator itself (`release`, generator.release_min_verified): when it finds its draft stated in the sources with
high probability, the draft is delivered with a "released" flag. The other checks are never overruled: the
factual ones (ungrounded, unsure), and the four that ask whether the draft answers at all (restated,
unquantified, no_default, no_limit), which a reading of whether the sources state it cannot judge: a copied
sentence is always stated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ragkit.alternatives import unnamed_alternatives
from ragkit.citations import CheckedAnswer, best_support
from ragkit.confidence import Confidence, default_min_confidence, key_confidence
from ragkit.coverage import (
    Coverage,
    coverage,
    coverage_floor,
    restates,
    unnamed_options,
    unquantified,
)
from ragkit.entries import Rival, rival_entry, undated_change
from ragkit.grounding import Grounding, grounding
from ragkit.roles import rejected_spans
from ragkit.stated import unsaid_bound, unsaid_default
from ragkit.types import Flag, Generation, Hit
from ragkit.verification import verified

# the flags of these checks, in the order they run; then the fallback model's reading (ragkit.verification)
WITHHOLDING_FLAGS = (
    "unsourced",
    "restated",
    "ungrounded",
    "unquantified",
    "no_default",
    "no_limit",
    "off_question",
    "unsure",
    "unverified",
)
# the checks a reading by the generator may overrule (`release`): the word-level one, not whether the fact is
# there. Not a restatement nor a missing figure: a copied sentence is always "stated" by the sources, and the
# reading cannot tell whether it answers (two of the four restatements released over seventeen trials were wrong)
RELEASABLE = ("off_question",)

if TYPE_CHECKING:
    from ragkit.answering import AnswerOptions


@dataclass(frozen=True, slots=True)
class Withholding:
    """The checked answer after the checks, the draft they withheld ("" when none) and each measured score
    (rounded; None when not measured or the answer stated nothing to check)."""

    checked: CheckedAnswer
    draft: str = ""
    grounding: float | None = None
    coverage: float | None = None
    confidence: float | None = None
    verified: float | None = None  # the generator's P(yes) that the sources state the draft (`release`)


def withhold_unfounded(
    question: str,
    checked: CheckedAnswer,
    out: Generation,
    hits: Sequence[Hit],
    o: AnswerOptions,
    generator: str,
    embed: Callable[[list[str]], Any] | None,
) -> Withholding:
    """Run the checks on a text answer (`checked`, generated as `out` from `hits`) under the floors in `o`;
    generator names the model (its confidence floor). embed: the embedder's embed, for grounding (skipped
    without it). A JSON Schema answer, or one already abstained, passes unchanged."""
    if o.schema is not None or checked.abstained:
        return Withholding(checked)
    if not checked.text.strip():
        # every sentence was removed (echoed instructions, twice): an empty reply must not pass as an answer
        return Withholding(replace(checked, text=o.template.abstain, citations=(), abstained=True), draft=out.text)
    draft = checked.text
    sources = [h.chunk.text for h in hits]
    grounded: Grounding | None = None
    covered: Coverage | None = None
    sure: Confidence | None = None
    if o.min_grounding > 0 and not checked.citations:
        checked = _abstain(checked, _unsourced(draft, checked, o.threshold), o)
    if not checked.abstained and o.min_coverage > 0 and restates(question, draft):
        checked = _abstain(checked, Flag("restated", draft, detail="it adds no word or fact to the question"), o)
    unnamed = unnamed_options(question, draft, sources) if not checked.abstained and o.min_grounding > 0 else ()
    if unnamed:
        picks = f"the answer names {' and '.join(unnamed)}, which no source mentions"
        checked = _abstain(checked, Flag("ungrounded", draft, detail=picks), o)
    unasked = unnamed_alternatives(question, sources) if not checked.abstained and o.min_grounding > 0 else ()
    if unasked:
        compared = f"the question compares {' and '.join(unasked)}, which no source names"
        checked = _abstain(checked, Flag("ungrounded", draft, detail=compared), o)
    ruled_out = rejected_spans(draft, question, sources) if not checked.abstained and o.min_grounding > 0 else []
    if ruled_out:
        what = " and ".join(f'"{s}"' for s in ruled_out)
        detail = f'the sources name {what} only as the alternative they rule out ("rather than ...")'
        checked = _abstain(checked, Flag("ungrounded", draft, detail=detail), o)
    rival = rival_entry(question, draft, sources) if not checked.abstained and o.min_grounding > 0 else None
    if rival is not None:
        checked = _abstain(checked, _neighbour(draft, rival), o)
    undated = undated_change(question, draft, sources) if not checked.abstained and o.min_grounding > 0 else None
    if undated is not None:
        detail = f"the sources give {undated[0]} only in sentences that never name {' or '.join(undated[1])}"
        checked = _abstain(checked, Flag("ungrounded", draft, detail=detail), o)
    if not checked.abstained and embed is not None and o.min_grounding > 0:
        grounded = grounding(question, draft, sources, embed)
        if grounded is not None and grounded.score < o.min_grounding:
            checked = _abstain(checked, _ungrounded(draft, grounded, o.min_grounding), o)
    how = unquantified(question, draft) if not checked.abstained and o.min_coverage > 0 else None
    if how is not None:
        detail = f'the question asks "{how}" and the answer gives no number or amount'
        checked = _abstain(checked, Flag("unquantified", draft, detail=detail), o)
    if not checked.abstained and o.min_coverage > 0:
        covered = coverage(question, draft, sources, [_shown_title(h) for h in hits])
        floor = coverage_floor(draft, o.min_coverage)
        if covered is not None and unsaid_default(question, covered):
            # before the coverage floor, whose verdict the model's reading may overrule: this one it may not
            detail = 'the source sentence holding the answer, and the ones beside it, never say "default"'
            checked = _abstain(checked, Flag("no_default", draft, detail=detail, quote=covered.sentence or ""), o)
        elif covered is not None and (bound := unsaid_bound(question, covered)) is not None:
            detail = f'the source sentence holding the answer, and the ones beside it, state no limit ("{bound}")'
            checked = _abstain(checked, Flag("no_limit", draft, detail=detail, quote=covered.sentence or ""), o)
        elif covered is not None and covered.score < floor:
            checked = _abstain(checked, _off_question(draft, covered, floor, passage=floor > o.min_coverage), o)
    if out.tokens:
        floor = default_min_confidence(generator) if o.min_confidence is None else o.min_confidence
        sure = key_confidence(question, out.tokens)
        if sure is not None and sure.score < floor and not checked.abstained:
            checked = _abstain(checked, _unsure(draft, sure, floor), o)
    return Withholding(
        checked,
        draft=draft if checked.abstained else "",
        grounding=_rounded(grounded),
        coverage=_rounded(covered),
        confidence=_rounded(sure),
    )


def _shown_title(hit: Hit) -> str:
    """The file name and section title the model reads above a source ('dgram.md, section "Intro"', no page):
    "dgram" of "according to Node's dgram docs" is before its eyes, so the coverage check counts it as near."""
    return f"{hit.chunk.source_name} {hit.chunk.section or ''}".strip()


def _rounded(measured: Grounding | Coverage | Confidence | None) -> float | None:
    return None if measured is None else round(measured.score, 4)


def _unsourced(draft: str, checked: CheckedAnswer, threshold: float) -> Flag:
    best = best_support(checked)
    held = "" if best is None else f"best support {best:.2f}, "
    detail = f"none of its sentences is in a source ({held}support_threshold {threshold:.2f})"
    return Flag("unsourced", draft, detail=detail)


def _ungrounded(draft: str, g: Grounding, floor: float) -> Flag:
    where = f"only in a source sentence {g.score:.2f} similar to the question" if g.sentence else "in no source"
    detail = f"key fact {', '.join(g.spans)} is {where} (min_grounding {floor:.2f})"
    return Flag("ungrounded", draft, detail=detail, quote=g.sentence or "")


def _off_question(draft: str, c: Coverage, floor: float, passage: bool = False) -> Flag:
    lacks = ", ".join(c.missing)
    if passage and c.sentence is not None:
        detail = f"the answer copies a passage, and the source sentence at its heart does not mention {lacks} (it "
        detail += f"covers {c.score:.1%} of the question; a passage needs {floor:.0%})"
    elif c.sentence is None:
        detail = f"no source holds what the answer adds to the question (min_coverage {floor:.2f})"
    else:
        detail = f"the source sentence holding it does not mention {lacks} (it covers {c.score:.1%} of the question; "
        detail += f"min_coverage {floor:.2f})"
    return Flag("off_question", draft, detail=detail, quote=c.sentence or "")


def _neighbour(draft: str, r: Rival) -> Flag:
    detail = f"the answer names {r.named}, whose entry in the sources is about something else ({r.own:.2f} of the "
    detail += f"question); the entry of {r.rival} matches it better ({r.score:.2f})"
    return Flag("ungrounded", draft, detail=detail)


def _unsure(draft: str, c: Confidence, floor: float) -> Flag:
    detail = f"the model gave its key fact {', '.join(c.spans)} probability {c.score:.2f} (min_confidence {floor:.2f})"
    return Flag("unsure", draft, detail=detail)


def _abstain(checked: CheckedAnswer, flag: Flag, o: AnswerOptions) -> CheckedAnswer:
    """The abstention phrase in place of a generated answer, with the flag saying why."""
    return replace(
        checked, text=o.template.abstain, citations=(), abstained=True, unsupported=(), flags=(*checked.flags, flag)
    )


def release(
    question: str, before: CheckedAnswer, held: Withholding, hits: Sequence[Hit], reader: object, floor: float
) -> Withholding:
    """`held` (the checks' verdict on `before`, the answer as checked before them), or, when only a coverage check
    (RELEASABLE) withheld the draft and `reader` (the generator, if it reads its own probabilities) gives P(yes)
    >= floor that `hits` state it, `before` delivered with a "released" flag. Every other verdict passes as it
    is; the reading is kept (Withholding.verified) either way, so a run records it for drafts left withheld."""
    why = next((f for f in held.checked.flags if f.kind in WITHHOLDING_FLAGS), None)
    if floor <= 0 or not held.draft or why is None or why.kind not in RELEASABLE:
        return held
    p = verified(question, held.draft, hits, reader)  # its seconds count as the answer's "check" time
    if p is None:  # a backend that cannot read its own probabilities releases nothing
        return held
    if p < floor:
        return replace(held, verified=round(p, 4))
    detail = f"{why.detail}; but the model gave {p:.2f} that the sources state it (release_min_verified {floor:.2f})"
    flag = Flag("released", held.draft, detail=detail, quote=why.quote)
    delivered = replace(before, flags=(*before.flags, flag))
    return replace(held, checked=delivered, draft="", verified=round(p, 4))
