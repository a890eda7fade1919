"""Questions a chunk answers: sentence templates, the generator's own (kept when the judge finds them supported),
or a user's QA JSONL. Each is a QAPair: the question, the answer sentence a target cites, and where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragkit.errors import SourceError
from ragkit.types import Chunk

if TYPE_CHECKING:
    from ragkit.protocols import Generator, Judge
    from ragkit.types import Message

# the generator writes a question and a one-sentence answer: 64 tokens hold both with room to spare
QA_MAX_NEW_TOKENS = 64
SENTENCE_ENDS = (".", "!", "?")


@dataclass(frozen=True, slots=True)
class QAPair:
    """A question with the answer a source gives; answer is what the target cites, short a crisp gold span."""

    question: str
    answer: str
    origin: str  # "model", "template" or "user"
    chunk_id: int | None = None  # the supporting chunk (KB questions)
    short: str = ""
    context: str | None = None  # a user record's own passage


_LEAD = re.compile(r"^(?:when|if|until|after|before|once|while)\b[^,]{0,80},\s*", re.IGNORECASE)
_CLAUSE = re.compile(
    r"^(?P<subj>[^,;:()\[\]]{2,70}?)\s+(?P<aux>must be|must|should be|should|can be|can|will be|will|may be|may|"
    r"is|are|was|were)\s+(?P<rest>.{3,})$",
    re.IGNORECASE,
)
_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|hundred"
_AMOUNT = re.compile(
    rf"\b(?P<prep>within|every|for|after|up to|at least|at most|in|at)\s+(?:the\s+(?:first|last|next)\s+)?"
    rf"(?P<num>\d[\d,.:]*|{_NUMBER_WORDS})\s+(?P<unit>[a-z][a-z-]*)",
    re.IGNORECASE,
)
_TIME_UNITS = {"second", "minute", "hour", "day", "week", "month", "year", "night", "working"}
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(text: str) -> list[str]:
    """Whole sentences of a chunk (5 to 40 words, ending in . ! ?): wrapped lines are joined, titles dropped."""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines: list[str] = []
        for line in (ln.strip() for ln in para.splitlines()):
            if not line:
                continue
            # a long line without an end mark was wrapped (PDF text); a short one is a title
            if lines and not lines[-1].endswith((*SENTENCE_ENDS, ":")) and len(lines[-1].split()) >= 6:
                lines[-1] += " " + line
            else:
                lines.append(line)
        pieces += lines
    out: list[str] = []
    for piece in pieces:
        for s in _SENTENCE.split(" ".join(piece.split())):
            if s.endswith(SENTENCE_ENDS) and 5 <= len(s.split()) <= 40:
                out.append(s)
    return out


def _lower_subject(subj: str) -> str:
    """Lower-case the sentence's first letter unless it starts a name ('Northwind Robotics', 'API keys')."""
    words = subj.split()
    first = words[0]
    second = words[1] if len(words) > 1 else ""
    proper = (first.isupper() and len(first) > 1) or first == "I" or (second[:1].isupper() and not second.isupper())
    return subj if proper else first[0].lower() + first[1:] + subj[len(first) :]


def _doc_name(chunk: Chunk) -> str:
    tail = chunk.uri.rstrip("/").rsplit("/", 1)[-1]
    stem = tail.rsplit(".", 1)[0] if "." in tail else tail
    return " ".join(re.split(r"[-_\s]+", stem)).strip() or tail


def _amount_question(subj: str, aux: str, rest: str) -> tuple[str, str] | None:
    """'must be' + 'rotated every 90 days' -> ('How often must S be rotated?', 'every 90 days')."""
    m = _AMOUNT.search(rest)
    if not m:
        return None
    verb = rest[: m.start()].strip()
    if not verb or "," in verb or len(verb.split()) > 8:
        return None
    prep, num, unit = m.group("prep").lower(), m.group("num"), m.group("unit").lower()
    short = m.group(0)
    if prep == "every":
        wh = "How often"
    elif prep == "at" and ":" in num:
        wh, short = "At what time", f"{m.group('prep')} {num}"
    elif prep == "for" and unit.rstrip("s") in _TIME_UNITS:
        wh = "How long"
    else:
        wh = f"{prep.capitalize()} how many {unit}"
    head, _, tail = aux.partition(" ")
    middle = f"{tail} {verb}" if tail else verb
    return f"{wh} {head.lower()} {_lower_subject(subj)} {middle}?", short


_NOT_SUBJECT_START = {"for", "in", "on", "at", "with", "by", "to", "from", "until", "after", "before", "then", "so"}
_NOT_SUBJECT_END = {"new", "old", "all", "other", "some", "many", "most", "few", "first", "last", "next", "then"}


def _subject_without_aux(sentence: str) -> str | None:
    """The words before the first verb-looking word ('Every incident gets ...' -> 'Every incident')."""
    words = sentence.split()
    for i in range(1, min(len(words), 6)):
        raw, prev = words[i].strip(",;"), words[i - 1].lower()
        w = raw.lower()
        # verbs are lower case mid-sentence, and do not follow an article or a number
        if not raw.isalpha() or not raw.islower() or prev in {"the", "a", "an", "of", "to", "and", "or", "every"}:
            continue
        if prev[:1].isdigit() or prev in _NUMBER_WORDS.split("|"):
            continue
        if (w.endswith("s") and not w.endswith("ss")) or w.endswith("ed"):
            subj = words[:i]
            while subj and subj[-1].lower() in _NOT_SUBJECT_END:
                subj = subj[:-1]
            if subj and subj[0].lower() not in _NOT_SUBJECT_START and all(x.isalpha() or "-" in x for x in subj):
                return " ".join(subj)
            return None
    return None


# Subjects that point elsewhere ("This is ...", "These methods are ...") or carry no topic ("Not all ...",
# "Certain ..."): on the Python docs they made questions like "What does the identifiers document say about not?".
_ANAPHORIC = {"it", "its", "this", "that", "these", "those", "they", "them", "their", "he", "she", "we", "you"}
_ANAPHORIC |= {"following", "above", "below", "former", "latter", "same", "such"}
_NO_TOPIC = _ANAPHORIC | {"not", "certain", "some", "all", "each", "any", "both", "no", "none", "one", "of", "the", "a"}


def _topic_subject(subj: str | None) -> str | None:
    """The subject when a question about it would make sense on its own, else None."""
    words = subj.lower().split() if subj else []
    if any(c in (subj or "") for c in "|=<>{}"):  # table borders and code (pydoc's "|" margins), not a topic
        return None
    if not 1 <= len(words) <= 6 or words[0] in {"not", "such", "there"} or set(words) & _ANAPHORIC:
        return None
    return None if all(w in _NO_TOPIC for w in words) else subj


def template_pairs(chunk: Chunk, limit: int = 2) -> list[QAPair]:
    """Up to `limit` questions a chunk answers, made from its sentences by templates; amounts first.

    The answer is the sentence; short is the amount phrase ("every 90 days") where there is one.
    """
    amounts: list[QAPair] = []
    topics: list[QAPair] = []
    for s in sentences(chunk.text):
        body = _LEAD.sub("", s.rstrip(".!?"))
        m = _CLAUSE.match(body)
        made = _amount_question(m.group("subj"), m.group("aux"), m.group("rest")) if m else None
        if made:
            amounts.append(QAPair(made[0], s, "template", chunk.id, made[1]))
            continue
        subj = _topic_subject(m.group("subj") if m else _subject_without_aux(body))
        if subj:
            q = f"What does the {_doc_name(chunk)} document say about {_lower_subject(subj)}?"
            topics.append(QAPair(q, s, "template", chunk.id))
    seen: set[str] = set()
    out: list[QAPair] = []
    for p in amounts + topics:
        if p.question.lower() not in seen:
            seen.add(p.question.lower())
            out.append(p)
    return out[:limit]


_WRITE_QA = "Text:\n{text}\n\nWrite one question that the text answers, and the answer copied from the text."
# one worked example: the 135M model copies the Question/Answer form from it far more often than from words alone
_WRITE_QA_SHOT: tuple[dict[str, str], ...] = (
    {
        "role": "user",
        "content": _WRITE_QA.format(text="The library opens at 9 am on weekdays. On Sundays it is closed."),
    },
    {
        "role": "assistant",
        "content": "Question: When does the library open on weekdays?\nAnswer: The library opens at 9 am on weekdays.",
    },
)
_QA = re.compile(r"Question:\s*(?P<q>[^\n]+?)\s*\n+\s*Answer:\s*(?P<a>[^\n]+)", re.IGNORECASE)
_META = re.compile(r"\b(the|this) (text|passage|context|document)\b", re.IGNORECASE)


def model_pair(
    generator: Generator, judge: Judge, chunk: Chunk, max_new_tokens: int = QA_MAX_NEW_TOKENS
) -> tuple[QAPair | None, str]:
    """The generator writes a question and answer about the chunk; kept only when the judge finds the answer
    ("Q? A." as one claim) supported by the chunk. Returns (pair, "kept") or (None, why it was rejected)."""
    from ragkit.citations import is_abstention
    from ragkit.evals.judge_data import as_claim
    from ragkit.textutil import content_words

    def done(text: str) -> bool:
        return bool(re.search(r"Answer:[^\n]*[.!?]\s*(\n|$)", text)) and text.rstrip().endswith((".", "!", "?"))

    prompt: list[Message] = [*_WRITE_QA_SHOT, {"role": "user", "content": _WRITE_QA.format(text=chunk.text.strip())}]
    out = generator.generate(prompt, max_new_tokens, 0.0, stop=done)
    m = _QA.search(out.text)
    if not m:
        return None, "unparsed"
    q, a = m.group("q").strip(), m.group("a").strip()
    if not q.endswith("?") or not 3 <= len(q.split()) <= 30 or len(a.split()) < 2:
        return None, "malformed"
    if is_abstention(a) or a.endswith("?") or _META.search(q + " " + a) or folded(a) == folded(q):
        return None, "not an answer"
    if not content_words(q) & content_words(chunk.text):
        return None, "off topic"
    if judge.support([as_claim(q, a)], [chunk.text])[0] < judge.threshold:
        return None, "not supported"
    return QAPair(q, a if a.endswith(SENTENCE_ENDS) else a + ".", "model", chunk.id), "kept"


def read_train_file(path: str | Path) -> list[QAPair]:
    """A user's QA JSONL: one {"question", "answer", "context" (optional)} object per line."""
    from ragkit.evals.datasets import read_jsonl  # the eval datasets' JSONL reader and its errors

    p = Path(path).expanduser()
    if not p.is_file():
        raise SourceError(f"{p}: no such training file")
    pairs: list[QAPair] = []
    for n, rec in enumerate(read_jsonl(p), start=1):
        q, a = (rec.get("question"), rec.get("answer")) if isinstance(rec, dict) else (None, None)
        if not isinstance(q, str) or not q.strip() or not isinstance(a, str) or not a.strip():
            raise SourceError(f'{p}: record {n} needs "question" and "answer" strings (and optionally "context")')
        ctx = rec.get("context")
        if ctx is not None and (not isinstance(ctx, str) or not ctx.strip()):
            raise SourceError(f'{p}: record {n}: "context" must be non-empty text when given')
        pairs.append(QAPair(q.strip(), a.strip(), "user", context=ctx))
    if not pairs:
        raise SourceError(f"{p}: no question/answer records")
    return pairs


def folded(text: str) -> str:
    """Lower case, punctuation as spaces, runs of spaces as one: how answers and passages are compared."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
