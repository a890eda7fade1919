"""What a source says of a named thing: rules E and N (docs/design-notes.md).

Rule E: an option the answer names is answered by its own entry in the sources.

Asked "Which nm option prints symbols in the order encountered?", the model answered `-n`, copied from the entry
beside the right one (`-p, --no-sort`). Every word of the answer stands in a source and the sentence holding `-n`
speaks of sorting, so the checks on sentences pass it; what they cannot see is that a manual page says what an
option does in the entry the option heads. So the entry the answer's option heads is scored against the question
and compared with the other entries in view: when another one matches the question far better, the answer is
withheld.

Rule N: a version asked for a change to a named thing ("Which version added --color?") must stand in a sentence
that names it: the page's own version in its footer dates nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ragkit.coverage import asked_words
from ragkit.grounding import key_spans
from ragkit.roles import occurs
from ragkit.textutil import content_words, entry_ranges, entry_tags, source_sentences

# the question asks for a named thing of the kinds a manual lists as entries
_ASKS_FOR_ENTRY = re.compile(
    r"\b(?:which|what)\b[^?]*\b(?:option|flag|switch|action|command|keyword|directive|primary|test|operator"
    r"|variable|setting)s?\b",
    re.I,
)
# a name in code shape: -n, --size-sort, NumberOfPasswordPrompts, PGDATA
_CODE_NAME = re.compile(r"(?<![\w-])(?:--?[A-Za-z0-9][\w-]*|[A-Z][A-Za-z0-9]+[A-Z]\w*)")
RIVAL_MIN_SCORE = 0.25  # a rival entry must hold at least this share of the question (rarity-weighted)
OWN_MIN_SHARE = 0.5  # the answer's own entry must score at least this share of the best rival's
ENTRY_CHARS = 1000  # rules M and R embed an entry's first characters (MiniLM reads 256 word pieces of them)


@dataclass(frozen=True, slots=True)
class Rival:
    """The option the answer names (`named`, its own entry scoring `own`) and the tag of an entry in the sources
    that matches the question better (`rival`, scoring `score`); scores are rarity-weighted shares in [0, 1]."""

    named: str
    own: float
    rival: str
    score: float


def _names(tag: str) -> set[str]:
    """The code-shaped names a tag line holds, without their arguments ("--radix=radix" -> "--radix")."""
    return {name.split("=")[0] for name in _CODE_NAME.findall(tag)}


def source_entries(text: str) -> list[tuple[str, str]]:
    """(tag, text) of each entry of a source, its text holding its tag line and running on to the next entry's tag
    (rule E'). A tag line over another tag line (Info's '-i[SUFFIX]' over '--in-place[=SUFFIX]') shares the entry
    below: both names head it."""
    ranges = entry_ranges(text)
    out: list[tuple[int, int, str]] = []
    k = 0
    while k < len(ranges):
        start, end, tag = ranges[k]
        while not text[start:end].strip()[len(tag) :].strip() and k + 1 < len(ranges) and ranges[k + 1][0] == end:
            k += 1
            end, tag = ranges[k][1], f"{tag} {ranges[k][2]}"
        out.append((start, end, tag))
        k += 1
    # an entry runs on to the next tag: its text may hold a blank line before an example ("For example:\n\n
    # dmesg --level=err,warn\n\nwill print error and warning messages only."), which ends a paragraph, not it
    return [(tag, text[a : out[i + 1][0] if i + 1 < len(out) else len(text)]) for i, (a, _, tag) in enumerate(out)]


def _scorer(question: str, entries: Sequence[tuple[str, str]]) -> Callable[[str], float]:
    """The rarity-weighted share of the question's words an entry's text holds, rarity over `entries`."""
    asked = asked_words(question)
    words = [content_words(body) for _, body in entries]
    rarity = {w: math.log((len(entries) + 1) / (sum(w in ws for ws in words) + 0.5)) for w in asked}
    total = sum(rarity.values()) or 1.0
    return lambda body: sum(rarity[w] for w in asked & content_words(body)) / total


def entry_order(question: str, texts: Sequence[str]) -> list[int] | None:
    """Rule O: for a question asking for a named thing, the indices of `texts` (chunks, best first) ordered by the
    best score any entry of each holds (ties and chunks without an entry keep their order); None otherwise."""
    if not _ASKS_FOR_ENTRY.search(question) or not asked_words(question):
        return None
    per_text = [source_entries(text) for text in texts]
    score = _scorer(question, [e for entries in per_text for e in entries])
    best = [max((score(body) for _, body in entries), default=0.0) for entries in per_text]
    return sorted(range(len(texts)), key=lambda i: (-best[i], i))


def meaning_order(question: str, texts: Sequence[str], embed: Callable[[list[str]], Any]) -> list[int] | None:
    """Rule M: for a question asking for a named thing or how to get something done, the indices of `texts` (chunks,
    best first) alternating two orders, each chunk once: by the cosine of the question and the chunk's entry nearest
    it in meaning (chunks without an entry after, in their order), and the given order. `embed`: (n,) texts ->
    (n, dim) unit vectors. None when the question is of neither kind or no chunk holds an entry."""
    if not (_ASKS_FOR_ENTRY.search(question) or _HOW_TO.search(question)):
        return None
    per_text = [[body for tag, body in source_entries(text) if _names(tag)] for text in texts]
    bodies = [body[:ENTRY_CHARS] for entries in per_text for body in entries]
    if not bodies:
        return None
    vectors = embed([question, *bodies])
    cosines = (vectors[1:] @ vectors[0]).tolist()
    best: list[float | None] = []
    for entries in per_text:
        best.append(max(cosines[: len(entries)]) if entries else None)
        cosines = cosines[len(entries) :]
    by_meaning = sorted(range(len(texts)), key=lambda i: (best[i] is None, -(best[i] or 0.0), i))
    order: list[int] = []
    for pair in zip(by_meaning, range(len(texts)), strict=True):
        order += [i for i in dict.fromkeys(pair) if i not in order]
    return order


@dataclass(frozen=True, slots=True)
class Candidates:
    """The option an answer names (`named`), the text of the entry it heads (`own`) and the texts of the other
    entries in the sources that head a code-shaped name, in source order (`others`)."""

    named: str
    own: str
    others: tuple[str, ...]


# a question asking how to get something done with a program: its answer is an option as much as "which option"'s
# ("How do I make pg_ctl hang on longer?"); only rule R reads it so (rules E and O keep to _ASKS_FOR_ENTRY)
_HOW_TO = re.compile(
    r"\bhow (?:do|can|would|should|could) (?:i|you|we)\b|\bwhat (?:should|do|can|must) (?:i|you|we) (?:add|pass|use"
    r"|give|type|put|run|set)\b|\bis there (?:an?|some) (?:way|flag|option|switch)\b",
    re.I,
)


def named_option(question: str, answer: str) -> str | None:
    """The option in code shape the answer names first ("--radix" of "`--radix=x`"), for a question asking for an
    option or how to get something done; else None."""
    if not (_ASKS_FOR_ENTRY.search(question) or _HOW_TO.search(question)):
        return None
    spans = [s for s in key_spans(answer, question) if _CODE_NAME.fullmatch(s.strip("`"))]
    return spans[0].strip("`").split("=")[0] if spans else None


def heads_entry(named: str, text: str) -> bool:
    """True when `named` heads an entry of `text` (its tag line names it)."""
    return any(named in _names(tag) for tag, _ in source_entries(text))


def answer_entries(question: str, answer: str, sources: Sequence[str]) -> Candidates | None:
    """For a question asking for an option, or how to get something done, whose answer names an option in code
    shape heading an entry of `sources`: that entry and the others (not those the question itself names); else
    None."""
    named = named_option(question, answer)
    if named is None:
        return None
    entries = [entry for text in sources for entry in source_entries(text) if _names(entry[0])]
    own = [body for tag, body in entries if named in _names(tag)]
    if not own:
        return None
    subjects = set(_CODE_NAME.findall(question)) - {named}
    others = tuple(body for tag, body in entries if named not in _names(tag) and not _names(tag) & subjects)
    return Candidates(named, own[0], others)


def rival_entry(question: str, answer: str, sources: Sequence[str]) -> Rival | None:
    """The rival entry that makes the answer's option a neighbour's, or None (the question asks for no named thing,
    the answer names none in code shape, no source has an entry it heads, or no rival matches far better)."""
    if not _ASKS_FOR_ENTRY.search(question):
        return None
    spans = [s for s in key_spans(answer, question) if _CODE_NAME.fullmatch(s.strip("`"))]
    asked = asked_words(question)
    if not spans or not asked:
        return None
    named = spans[0].strip("`").split("=")[0]
    entries = [entry for text in sources for entry in source_entries(text)]
    own = [e for e in entries if named in _names(e[0])]
    if not own:
        return None
    subjects = set(_CODE_NAME.findall(question))  # an entry the question names is its subject, not a rival
    score = _scorer(question, entries)
    mine = max(score(body) for _, body in own)
    rivals = [(score(body), tag) for tag, body in entries if (tag, body) not in own and _names(tag)]
    rivals = [(s, tag) for s, tag in rivals if not _names(tag) & subjects]
    if not rivals:
        return None
    best, tag = max(rivals)
    if best >= RIVAL_MIN_SCORE and mine < OWN_MIN_SHARE * best:
        return Rival(named, round(mine, 4), tag, round(best, 4))
    return None


# rule N: the question asks for the version of a change to a thing it names in code shape
_VERSION_WORD = re.compile(r"\b(?:version|release)\b", re.I)  # not coverage._VERSION_ASKED: any mention
_CHANGE = re.compile(r"\b(?:add|introduc|remov|deprecat|first|became|support|fix|ship|bundl)\w*", re.I)
_PRODUCT = (  # the product a version belongs to, not the changed thing: "version of GNU diffutils", "OpenSSH release"
    re.compile(r"\b(?:versions?|releases?)\s+of\s+(?:the\s+)?(?:[^\s?]+\s+){0,1}[^\s?]+", re.I),
    re.compile(r"[^\s?]+\s+(?:versions?|releases?)\b", re.I),
)
_NAMED_THING = re.compile(r"(?<![\w-])(?:--?[A-Za-z0-9][\w-]*|[A-Za-z]+[A-Z_]\w*|\w+\(\))")
_CAPITALISED = re.compile(r"[A-Z][a-z]+")
_VERSION = re.compile(r"v?\d+(?:\.\d+)+[a-z]?|\d+")


def undated_change(question: str, answer: str, sources: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """Rule N: (the answer's version, the things the question asks about) when the question asks for the version
    of a change to a thing it names in code shape and every source sentence holding that version (with the ones
    beside it and its entry's tag) never names any of them; None otherwise (also when no source holds it)."""
    if not (_VERSION_WORD.search(question) and _CHANGE.search(question)):
        return None
    rest = question
    for product in _PRODUCT:
        rest = product.sub("", rest)
    things = tuple(m for m in _NAMED_THING.findall(rest) if not _CAPITALISED.fullmatch(m))
    versions = [s for s in key_spans(answer, question) if _VERSION.fullmatch(s.strip("v"))]
    if not things or not versions:
        return None
    version, held = versions[0], False
    for text in sources:
        sents, tags = source_sentences(text), entry_tags(text)
        for i, sentence in enumerate(sents):
            if occurs(version, sentence):
                held = True
                tag = tags[i] if i < len(tags) else ""
                beside = range(max(0, i - 1), min(len(sents), i + 2))
                near = " ".join(sents[j] for j in beside if _same_entry(j, i, sents, tags))
                near = f"{near} {tag}"
                if any(thing in near for thing in things):
                    return None
    return (version, things) if held else None


def _same_entry(j: int, i: int, sents: Sequence[str], tags: Sequence[str]) -> bool:
    """Rule N': whether sentence j, beside the version's sentence i, speaks of the same entry. Inside an entry, only
    its own sentences; outside any, any sentence but another entry's tag line ("Added in 7.52.0." closes
    `--retry-connrefused`'s text; the `--retry-delay <seconds>` line below it heads the next entry)."""
    if j == i:
        return True
    tag, other = (tags[k] if k < len(tags) else "" for k in (i, j))
    if tag:
        return other == tag
    return not (other and sents[j].strip() == other.strip())
