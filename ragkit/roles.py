"""Does each key span of a claim stand in the source in the same role, or was it copied from a neighbour?

A small model that answers "keys rotate every 30 days" from "keys rotate every 90 days; sessions expire after
30 days" wrote nothing that is absent from the source: every word and the number are there, so word overlap,
number coverage and sentence similarity all call it supported. What is wrong is the number's *role*: in the
source, 30 belongs to the sessions, not to the keys.

The role check reads each key span of the claim (number, name, identifier; grounding.key_spans) and finds the
clauses of the source that hold it. The claim's other content words say what the span is attached to. If the
clause holding the span matches those words about as well as the best-matching clause of the whole source,
the span is in its role; if some other clause matches them clearly better (the one with the 90), the span was
taken from elsewhere. A span's role score is (best match among clauses holding it) / (best match among all
clauses), 0..1; the claim's is the lowest over its spans. Words are weighted by how rare they are among the
source's clauses, so "production" (one clause) counts for more than "days" (every clause).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ragkit.grounding import _KEY, key_spans
from ragkit.textutil import (
    NUMBER,
    STOPWORDS,
    content_words,
    context_sentences,
    spelled_in,
    without_rejected,
)

# clause boundaries inside a sentence: semicolons, colons, dashes, and a comma before a word that starts a new
# clause ("..., after which", "..., while", "..., and the customer receives")
_CLAUSE = re.compile(
    r"\s*[;:]\s+|\s+[-\u2013\u2014]{1,2}\s+|,\s+(?=(?:and|but|while|whereas|which|who|after|before|so|or|then)\b)",
    re.IGNORECASE,
)
_WRAP = re.compile(r"(?<=[^\n])\n(?=[^\n])")  # a single line break inside a paragraph (PDF and pydoc text)


_QA = re.compile(r"^(?P<q>.*\?)\s+(?P<a>[^?]+)$", re.DOTALL)  # a "Q? A." claim: only the answer is claimed
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[\w'-]+(?:\(\))?")
NEIGHBOURS = 4  # tokens either side of a span that say what it is attached to ("every _ days")


@dataclass(frozen=True, slots=True)
class SpanRole:
    """One key span of a claim: its role score (1.0 = in its role, lower = the claim's words match another
    clause better, one holding a rival span of the same kind), the best clause holding the span, and the
    rival when there is one."""

    span: str
    score: float
    clause: str
    rival: str | None = None


def clauses(text: str) -> list[str]:
    """The text's clauses: its sentences (wrapped lines joined), each cut at clause boundaries."""
    units = [c.strip() for s in context_sentences(_WRAP.sub(" ", text)) for c in _CLAUSE.split(s)]
    return [u for u in units if content_words(u)]


def occurs(span: str, text: str) -> bool:
    """True when `span` stands in `text` as a whole token run, case-insensitive ("30" is not in "300" or
    "3.30", "Vault" is in "the vault"); a number below 100 also as its word ("14" in "at fourteen")."""
    return span_pattern(span).search(text) is not None or spelled_in(span, text)


def span_kind(span: str) -> str:
    """ "number", "identifier" (snake_case, dunder, call, `code`) or "name"."""
    if NUMBER.fullmatch(span):
        return "number"
    return "identifier" if "_" in span or span.endswith("()") or " " in span else "name"


def span_roles(claim: str, context: str, question: str = "") -> list[SpanRole]:
    """The role of each key span of the claim that the context holds. Spans the context lacks are another
    check's business (name and number coverage). In a "Q? A." claim only the answer's spans are checked; the
    question's words still say what they are attached to. An answer sentence with its `question` given skips
    the spans the question supplies: the answer repeats them, it does not claim them ("The Voivodeship, where
    Anna Maria Borowska was born, was created in 1926": only 1926 is the answer's)."""
    units = clauses(context)
    if not units:
        return []
    qa = _QA.match(claim.strip())
    stem, answer = (qa.group("q"), qa.group("a")) if qa else ("", claim)  # a "Q? A." claim's own question
    unit_words = [content_words(u) for u in units]
    weight = _rarity(unit_words)
    asked = content_words(stem)
    own = clauses(answer) or [answer]
    spans = key_spans(without_rejected(answer), stem or question)  # what the claim rules out, it does not claim
    out: list[SpanRole] = []
    for span in spans:
        holding = [i for i, u in enumerate(units) if occurs(span, u)]
        if holding and rejected(span, context):
            out.append(SpanRole(span, 0.0, units[holding[0]]))  # named only as the alternative ruled out
            continue
        # what the span is attached to in the claim: the words of its own clause (and the question's)
        mine = next((c for c in own if occurs(span, c)), answer)
        rest = (asked | content_words(mine)) - content_words(span)
        if not holding or not rest:
            continue
        match = [sum(weight[w] for w in rest & ws) for ws in unit_words]
        held = max(holding, key=lambda i: match[i])
        best = max(range(len(units)), key=lambda i: match[i])
        rival = None
        if match[best] > match[held]:
            # the words beside the span say which slot it fills ("every _ days"); a bare answer ("180 days.",
            # "Iggy Pop.") has none of its own, so the words beside it where the source holds it stand in
            near = _neighbours(mine, span, spans) or _neighbours(units[held], span, spans)
            rival = _rival(units[best], span, claim, near)
        score = match[held] / match[best] if rival else 1.0
        slot, slot_rival = _slot(span, mine, spans, context, claim)
        if slot < score:
            score, rival = slot, slot_rival
        out.append(SpanRole(span, score, units[held], rival))
    return out


def _slot(span: str, own: str, spans: list[str], context: str, claim: str) -> tuple[float, str | None]:
    """The span's slot inside a clause: the words right beside it in the claim ("written by _") against
    the words beside it where the context holds it ("directed by _"). When a rival of the same kind stands
    beside those words more closely, the claim took the rival's slot: (fit at the span / fit at the rival,
    rival); else (1.0, None)."""
    m = span_pattern(span).search(own)
    if m is None:
        return 1.0, None
    others = {w for s in spans for w in content_words(s)}
    near = _sides(own, m, others)
    if not (near[0] or near[1]):
        return 1.0, None
    kind = span_kind(span)
    mine = max((_fit(near, _sides(context, o, others)) for o in span_pattern(span).finditer(context)), default=0.0)
    best, rival = mine, None
    for o in _KEY.finditer(context):
        other = o.group().strip("`")
        if span_kind(other) != kind or occurs(other, claim) or other.lower() in STOPWORDS:
            continue
        fit = _fit(near, _sides(context, o, others))
        if fit > best:
            best, rival = fit, other
    return (mine / best, rival) if rival else (1.0, None)


def _sides(text: str, m: re.Match[str], skip: set[str]) -> tuple[dict[str, int], dict[str, int]]:
    """The content words within NEIGHBOURS tokens before and after a match, each with its distance in tokens
    (1 = adjacent), not crossing a sentence end; words in `skip` (the claim's other key spans) left out."""
    before = _TOKEN.findall(re.split(r"[.!?;]\s", text[: m.start()])[-1])[-NEIGHBOURS:]
    after = _TOKEN.findall(re.split(r"[.!?;]\s", text[m.end() :])[0])[:NEIGHBOURS]

    def side(tokens: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for d, tok in enumerate(tokens, 1):
            for w in content_words(tok) - skip:
                out.setdefault(w, d)
        return out

    return side(before[::-1]), side(after)


def _fit(near: tuple[dict[str, int], dict[str, int]], there: tuple[dict[str, int], dict[str, int]]) -> float:
    """How well the words beside one occurrence match the claim's: shared words on the same side, each
    counting 1 / the larger of its two distances (an adjacent shared word counts most)."""
    pairs = zip(near, there, strict=True)
    return sum(1 / max(d, side[w]) for mine, side in pairs for w, d in mine.items() if w in side)


def rejected(span: str, text: str) -> bool:
    """True when `text` names `span` and every time only as the alternative it rules out ("rather than X",
    "instead of X", "as opposed to X", "in place of X")."""
    return occurs(span, text) and not occurs(span, without_rejected(text))


def rejected_spans(answer: str, question: str, sources: list[str]) -> list[str]:
    """The answer's key spans that the sources name only as the alternative they rule out (see `rejected`),
    in order; a span the answer itself rules out ("3, rather than 2") is not counted."""
    claimed = without_rejected(answer)
    text = "\n".join(sources)
    return [s for s in key_spans(claimed, question) if rejected(s, text)]


def role_support(claim: str, context: str, question: str = "") -> float:
    """The lowest role score of the claim's key spans in the context, 0..1; 1.0 when the claim has no key
    span the context holds in another role (question: what the claim answers, see span_roles)."""
    return min((r.score for r in span_roles(claim, context, question)), default=1.0)


def _rival(unit: str, span: str, claim: str, near: set[str]) -> str | None:
    """A span of the same kind in `unit` that the claim does not hold, standing beside the same words as the
    claim's span when the claim gives it any ("every 90 days" for "every 180 days"): the value the claim
    should have copied."""
    kind = span_kind(span)
    for m in _KEY.finditer(unit):
        other = m.group().strip("`")
        if span_kind(other) != kind or occurs(other, claim) or other.lower() in STOPWORDS:
            continue
        if not near or near & _neighbours(unit, other, []):
            return other
    return None


def _neighbours(text: str, span: str, spans: list[str]) -> set[str]:
    """Content words within NEIGHBOURS tokens of the span's first occurrence in `text`, other key spans
    left out."""
    m = span_pattern(span).search(text)
    if m is None:
        return set()
    before = _TOKEN.findall(text[: m.start()])[-NEIGHBOURS:]
    after = _TOKEN.findall(text[m.end() :])[:NEIGHBOURS]
    others = {w for s in spans for w in content_words(s)}
    return content_words(" ".join([*before, *after])) - others - content_words(span)


def span_pattern(span: str) -> re.Pattern[str]:
    """The span as a whole token run, case-insensitive: not inside a word or a decimal ("30" in "3.30"), but
    found after a glued full stop ("Nevada.Mount")."""
    # a version stands after its "v" too: "2.30" is in "since: v2.30" (util-linux's deprecated.txt)
    start = r"(?:(?<!\w)|(?<=\b[vV]))" if span[:1].isdigit() else r"(?<!\w)"
    return re.compile(start + r"(?<!\d\.)" + re.escape(span) + r"(?![\w]|\.\d)", re.IGNORECASE)


def _rarity(unit_words: list[set[str]]) -> dict[str, float]:
    """Inverse clause frequency of each word: log(1 + clauses / clauses holding it)."""
    df: dict[str, int] = {}
    for ws in unit_words:
        for w in ws:
            df[w] = df.get(w, 0) + 1
    n = len(unit_words)
    return {w: math.log(1 + n / k) for w, k in df.items()}
