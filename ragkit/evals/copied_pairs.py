"""Copied-number pairs: labelled claims built from the dev set's answerable questions (docs/devset.md), where
the wrong claim copies a number or name that stands near the right one in the same passage.

For each answerable question, the source sentence that states its gold answer is found, and the passage
around it (a few sentences either side) is the context. The answer's key token (its number, number word,
name or identifier) is swapped for another token of the same type from the same passage, nearest first:
"Production API keys must be rotated every 180 days." against a passage that says 90 for production keys
and 180 for staging keys. Both forms a judge meets are made: the source sentence itself (supported) and its
swaps (unsupported), and the "Q? A." claim with the gold answer (supported) and with the swapped answer
(unsupported).

Corpora: the sample corpus and the Python reference (pydoc_data) parts of examples/devset, and the HaluEval-QA
part that bench/devset.py builds (seed 7; even positions dev, odd held out). The "dev" split may calibrate a
judge; the "heldout" split only measures it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragkit.errors import ConfigError
from ragkit.evals.judge_data import LabelledPair, as_claim
from ragkit.roles import occurs, span_pattern
from ragkit.textutil import STOPWORDS, content_words, context_sentences

DEVSET = Path(__file__).resolve().parents[2] / "examples" / "devset"
SAMPLE_CORPUS = Path(__file__).resolve().parents[2] / "examples" / "sample_corpus"
HALUEVAL = {"limit": 120, "unanswerable": 0.25, "seed": 7, "removed": 0.25}  # as bench/devset.py builds it
WINDOW = 3  # sentences either side of the answer sentence in the context
MAX_SWAPS = 3  # wrong claims per question (nearest same-type tokens first)

_NUMBER = re.compile(r"(?<![\w.-])\d+(?:[.,:]\d+)*(?![\w-])")  # not inside a name such as AES-256
_NUMBER_WORDS = "one two three four five six seven eight nine ten eleven twelve".split()
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'-]*)*")
_IDENTS = (re.compile(r"\b__\w+__\b"), re.compile(r"\b\w+\(\)"), re.compile(r"\b\w*_\w*\b"))  # dunder, call, snake
_WRAP = re.compile(r"(?<=[^\n])\n(?=[^\n])")


@dataclass(frozen=True, slots=True)
class _Item:
    question: str
    answer: str
    document: str  # the text that states the answer


def copied_number_pairs(split: str = "heldout") -> list[LabelledPair]:
    """Labelled copied-number pairs of the dev set's "dev" or "heldout" split (see the module docstring)."""
    if split not in ("dev", "heldout"):
        raise ConfigError("split must be 'dev' or 'heldout'")
    pairs: list[LabelledPair] = []
    for item in _items(split):
        pairs.extend(pairs_for(item.question, item.answer, item.document))
    return pairs


def pairs_for(question: str, answer: str, document: str) -> list[LabelledPair]:
    """The supported and swapped claims of one answered question, in both forms; [] when the document does
    not state the answer verbatim or the passage has no other token of the answer's type."""
    sentences = context_sentences(_WRAP.sub(" ", document))
    holding = [i for i, s in enumerate(sentences) if occurs(answer, s)]
    if not holding:
        return []
    asked = content_words(question)
    at = max(holding, key=lambda i: len(content_words(sentences[i]) & asked))
    sentence = sentences[at]
    context = " ".join(sentences[max(0, at - WINDOW) : at + WINDOW + 1])
    found = _swap_token(answer)
    if found is None:
        return []
    token, kind = found
    swaps = _alternatives(token, kind, sentence, context, question)
    pairs = [LabelledPair(sentence, context, False, question), LabelledPair(as_claim(question, answer), context, False)]
    for alt in swaps:
        # a name listed beside the answer in its own sentence ("stars A, B and C") would leave the sentence true
        if not (kind == "name" and occurs(alt, sentence)):
            pairs.append(LabelledPair(_replace(sentence, token, alt), context, True, question))
        pairs.append(LabelledPair(as_claim(question, _replace(answer, token, alt)), context, True))
    return pairs if swaps else []


def _swap_token(answer: str) -> tuple[str, str] | None:
    """The part of the gold answer a copying model gets wrong, and its type: a number ("90" of "90 days"), a
    number word, an identifier, or a name; None for a plain word ("economy", "buddy")."""
    for kind, pattern in (("number", _NUMBER), ("number-word", _NUMBER_WORD), *(("identifier", p) for p in _IDENTS)):
        m = pattern.search(answer)
        if m:
            return m.group(), kind
    m = _NAME.match(answer.strip())
    return (m.group(), "name") if m else None


def _alternatives(token: str, kind: str, sentence: str, context: str, question: str) -> list[str]:
    """Other tokens of the same type in the passage, nearest to the answer sentence first; names and
    identifiers that the question itself uses (the claim's subject) are not swapped in."""
    pattern = {"number": _NUMBER, "number-word": _NUMBER_WORD, "name": _NAME}.get(kind) or _shape(token)
    centre = context.find(sentence)
    seen = {token.lower()}
    found: list[tuple[int, str]] = []
    for m in pattern.finditer(context):
        alt = m.group()
        if alt.lower() in seen or (kind in ("name", "identifier") and _asked(alt, question)):
            continue
        if kind == "name" and (_starts_sentence(context, m.start()) or alt.split()[0].lower() in STOPWORDS):
            continue
        if kind == "number" and (":" in alt) != (":" in token):
            continue  # a time for a time, a count for a count
        seen.add(alt.lower())
        found.append((abs(m.start() - centre), alt))
    return [alt for _, alt in sorted(found)[:MAX_SWAPS]]


def _shape(identifier: str) -> re.Pattern[str]:
    """The identifier pattern the answer matches first: a dunder for a dunder, a call for a call."""
    return next(p for p in _IDENTS if p.search(identifier))


def _asked(span: str, question: str) -> bool:
    return bool(content_words(span) & content_words(question))


def _starts_sentence(text: str, pos: int) -> bool:
    """True for a capitalised word that only starts a sentence ("The", "Backups")."""
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?\n\"'"


def _replace(text: str, token: str, alt: str) -> str:
    """The first whole-token occurrence of `token` in `text` replaced by `alt`."""
    return span_pattern(token).sub(lambda _: alt, text, count=1)


# --- the dev set's answerable questions and their documents --------------------------------------------


def _items(split: str) -> Iterator[_Item]:
    yield from _sample_items(split)
    yield from _pydocs_items(split)
    yield from _halueval_items(split)


def _answerable(path: Path) -> Iterator[dict]:
    if not path.exists():
        raise ConfigError(f"{path}: the dev set is missing; run from a checkout of the ragkit repository")
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("answerable") and rec.get("answers"):
            yield rec


def _sample_items(split: str) -> Iterator[_Item]:
    from ragkit.connectors.files import parse_file

    texts: dict[str, str] = {}
    for rec in _answerable(DEVSET / f"sample_{split}.jsonl"):
        for uri in rec.get("gold_uris", []):
            if uri not in texts:
                path = next(SAMPLE_CORPUS.rglob(uri))
                texts[uri] = parse_file(path).text
            yield _Item(rec["question"], rec["answers"][0], texts[uri])


def _pydocs_items(split: str) -> Iterator[_Item]:
    from pydoc_data.topics import topics

    for rec in _answerable(DEVSET / f"pydocs_{split}.jsonl"):
        answer = rec["answers"][0]
        named = [u.removeprefix("topic-").removesuffix(".md") for u in rec.get("gold_uris", [])]
        docs = [topics[n] for n in named if n in topics] or [t for t in topics.values() if occurs(answer, t)]
        asked = content_words(rec["question"])
        # the topic whose answer-bearing sentence is closest to the question holds the answer
        best = max(docs, key=lambda t: _best_overlap(t, answer, asked), default=None)
        if best is not None:
            yield _Item(rec["question"], answer, best)


def _best_overlap(text: str, answer: str, asked: set[str]) -> int:
    sentences = context_sentences(_WRAP.sub(" ", text))
    return max((len(content_words(s) & asked) for s in sentences if occurs(answer, s)), default=-1)


def _halueval_items(split: str) -> Iterator[_Item]:
    from ragkit.evals.datasets import load_halueval_qa

    ds = load_halueval_qa(HALUEVAL["limit"], HALUEVAL["unanswerable"], HALUEVAL["seed"], removed=HALUEVAL["removed"])
    parity = 0 if split == "dev" else 1
    for pos, item in enumerate(ds.items):
        if pos % 2 == parity and item.answerable and item.answers and item.context:
            yield _Item(item.question, item.answers[0], item.context)
