"""LoRA fine-tuning of the local GPT on RAG-formatted examples from the user's own corpus (DESIGN.md §8).

The recipe follows the factuality work on recent open models: take a snippet, ask a question about it, score
the answer against the source, and teach the model to refuse where the sources do not hold the answer.

- Questions: chunks are sampled from the KB. The generator writes a question and answer about a chunk, kept
  only when the eval judge finds the answer supported by the chunk; sentence templates ("How often must
  production API keys be rotated?") fill in, and with a 135M model they make most of the data. A user's QA
  JSONL can replace or add to them.
- Examples: each question becomes the prompt `ask` would build (same retrieval, template and packing code,
  `packed_prompt`) with the answer sentence cited as the target; a share of the questions also becomes a
  negative, the same question with every chunk holding the answer removed from the retrieved sources, whose
  target is the abstention phrase. The loss covers the answer tokens only.
- Output: kb/models/NAME/ holds the peft adapter, finetune.json (options, base model, training log),
  data.json (what the data was made of), train.jsonl and heldout.jsonl. Questions from held-out chunks are
  asked of the base and the tuned model through the eval runner (unanswerable ones with their supporting
  chunks left out of retrieval) and the two runs are compared.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit import __version__
from ragkit.errors import ConfigError, ModelError, RagkitError, SourceError
from ragkit.types import Chunk, Hit

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase
    from ragkit.evals.datasets import EvalItem
    from ragkit.evals.judges import Judge
    from ragkit.generation import Generator, Message
    from ragkit.generation.answer import AnswerOptions

ADAPTER_FILE = "adapter_config.json"
COMPARED = (
    ("answer/f1", "answer F1"),
    ("abstention/rate_unanswerable", "abstention on unanswerable"),
    ("abstention/false_rate_answerable", "false abstention (answerable)"),
    ("claims/unsupported_rate", "unsupported-claim rate"),
    ("citations/precision", "citation precision"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class FinetuneOptions:
    """What `finetune` does. Sizes are counts; lr is AdamW's peak learning rate; max_length is in tokens."""

    name: str = "finetuned"
    chunks: int = 64  # chunks sampled from the KB
    questions_per_chunk: int = 2
    model_questions: int = 8  # chunks the generator writes a question for (about 10 s each on a CPU); 0 = templates
    negatives: float = 0.5  # share of training questions that also get an abstention example
    heldout: float = 0.2  # share of sampled chunks whose questions are kept for the before/after evaluation
    steps: int | None = None  # None: `epochs` passes over the examples
    epochs: int = 2
    batch_size: int = 4
    micro_batch: int | None = None  # examples per forward pass (None: the batch on a GPU, 1 on the CPU)
    lr: float = 3e-4
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 1024  # longer examples (prompt + answer) are left out, and counted
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads (None: torch's default)
    use_kb: bool = True  # build questions from the KB (False: only the --train file)
    evaluate: bool = True
    eval_max_new_tokens: int | None = None  # None: the KB's generator.max_new_tokens


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A step of the work: stage is "questions", "examples", "train", "eval-base" or "eval-tuned"."""

    stage: str
    done: int
    total: int | None
    loss: float | None = None  # training loss of the last step (stage "train")
    note: str = ""


ProgressFn = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True)
class QAPair:
    """A question with the answer a source gives; answer is what the target cites, short a crisp gold span."""

    question: str
    answer: str
    origin: str  # "model", "template" or "user"
    chunk_id: int | None = None  # the supporting chunk (KB questions)
    short: str = ""
    context: str | None = None  # a user record's own passage


@dataclass(frozen=True, slots=True)
class SftExample:
    """One supervised example: the chat `ask` would send and the target reply ("answer" or "abstain")."""

    messages: tuple[dict[str, str], ...]
    target: str
    kind: str
    question: str
    origin: str
    source_ids: tuple[int, ...]  # chunk ids of the numbered sources, in order (negative ids: user passages)
    support_ids: tuple[int, ...] = ()  # chunks known to hold the answer (left out of a negative's sources)


@dataclass(frozen=True, slots=True)
class TrainLog:
    """How training went: steps, time in seconds, throughput and the loss per step."""

    steps: int
    planned_steps: int
    interrupted: bool
    seconds: float
    examples: int  # examples seen, repeats included
    tokens: int  # tokens seen
    losses: tuple[float, ...]
    device: str
    dtype: str

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else math.nan


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """A finished (or interrupted, then saved) fine-tune and, when evaluated, the before/after comparison."""

    name: str
    path: Path
    log: TrainLog
    data: dict[str, Any]
    comparison: dict[str, dict[str, float | None]] | None = None  # metric -> {base, tuned, delta}
    base_run: Path | None = None
    tuned_run: Path | None = None
    trainable_params: int = 0


# --- where adapters live ------------------------------------------------------------------------------


def models_dir(kb_root: Path) -> Path:
    """kb/models: one folder per fine-tuned adapter."""
    return Path(kb_root) / "models"


def resolve_adapter(kb_root: Path, spec: str, base_model: str | None = None) -> Path:
    """The adapter folder for generator.adapter: a name under kb/models/ or a path to an adapter folder.

    Raises ModelError when there is none, and ConfigError when it was trained on another base model.
    """
    named = models_dir(kb_root) / spec
    path = _adapter_path(kb_root, spec)
    if not (path / ADAPTER_FILE).exists():
        names = [m["name"] for m in list_models(kb_root)]
        hint = f"; fine-tuned models in this KB: {', '.join(names)}" if names else "; make one with: ragkit finetune"
        raise ModelError(f"no fine-tuned model {spec!r} (no {ADAPTER_FILE} in {named} or {path}){hint}")
    info = _read_json(path / "finetune.json")
    trained_on = info.get("base_model")
    if base_model and trained_on and trained_on != base_model:
        raise ConfigError(
            f"adapter {spec!r} was trained on {trained_on!r} but generator.model is {base_model!r}; "
            "use that model or fine-tune again"
        )
    return path.resolve()


def _adapter_path(kb_root: Path, spec: str) -> Path:
    """kb/models/SPEC when that holds an adapter, else SPEC as a path (which may hold none)."""
    named = models_dir(kb_root) / spec
    return named if (named / ADAPTER_FILE).exists() else Path(spec).expanduser()


def adapter_base_model(kb_root: Path, spec: str) -> str | None:
    """The generator.model an adapter (a name under kb/models/ or a folder) was trained on; None if unknown."""
    base = _read_json(_adapter_path(kb_root, spec) / "finetune.json").get("base_model")
    return str(base) if base else None


def list_models(kb_root: Path) -> list[dict[str, Any]]:
    """The fine-tuned adapters in kb/models/, oldest first: name, created, base model, steps, examples,
    interrupted, size in bytes and the before/after headline metrics when they were measured."""
    root = models_dir(kb_root)
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not (d / ADAPTER_FILE).exists():
            continue
        info = _read_json(d / "finetune.json")
        data = _read_json(d / "data.json")
        training = info.get("training", {})
        out.append(
            {
                "name": d.name,
                "path": str(d),
                "created": info.get("created"),
                "base_model": info.get("base_model"),
                "steps": training.get("steps"),
                "interrupted": training.get("interrupted", False),
                "examples": data.get("examples", {}).get("total"),
                "bytes": sum(p.stat().st_size for p in d.rglob("*") if p.is_file()),
                "comparison": _read_json(d / "comparison.json").get("metrics"),
            }
        )
    return sorted(out, key=lambda m: str(m.get("created") or ""))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


# --- questions from chunks ----------------------------------------------------------------------------

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
_ENDS = (".", "!", "?")


def sentences(text: str) -> list[str]:
    """Whole sentences of a chunk (5 to 40 words, ending in . ! ?): wrapped lines are joined, titles dropped."""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines: list[str] = []
        for line in (ln.strip() for ln in para.splitlines()):
            if not line:
                continue
            # a long line without an end mark was wrapped (PDF text); a short one is a title
            if lines and not lines[-1].endswith((*_ENDS, ":")) and len(lines[-1].split()) >= 6:
                lines[-1] += " " + line
            else:
                lines.append(line)
        pieces += lines
    out: list[str] = []
    for piece in pieces:
        for s in _SENTENCE.split(" ".join(piece.split())):
            if s.endswith(_ENDS) and 5 <= len(s.split()) <= 40:
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


def model_pair(generator: Generator, judge: Judge, chunk: Chunk, max_new_tokens: int = 64) -> tuple[QAPair | None, str]:
    """The generator writes a question and answer about the chunk; kept only when the judge finds the answer
    ("Q? A." as one claim) supported by the chunk. Returns (pair, "kept") or (None, why it was rejected)."""
    from ragkit.citations import is_abstention
    from ragkit.evals.judges import as_claim
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
    if is_abstention(a) or a.endswith("?") or _META.search(q + " " + a) or _norm(a) == _norm(q):
        return None, "not an answer"
    if not content_words(q) & content_words(chunk.text):
        return None, "off topic"
    if judge.support([as_claim(q, a)], [chunk.text])[0] < judge.threshold:
        return None, "not supported"
    return QAPair(q, a if a.endswith(_ENDS) else a + ".", "model", chunk.id), "kept"


def read_train_file(path: str | Path) -> list[QAPair]:
    """A user's QA JSONL: one {"question", "answer", "context" (optional)} object per line."""
    from ragkit.evals.datasets import _jsonl_records  # the eval datasets' JSONL reader and its errors

    p = Path(path).expanduser()
    if not p.is_file():
        raise SourceError(f"{p}: no such training file")
    pairs: list[QAPair] = []
    for n, rec in enumerate(_jsonl_records(p), start=1):
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


# --- examples built as `ask` builds prompts -----------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def holds(text: str, answer: str) -> bool:
    """True when a chunk's text contains the answer (case, punctuation and spacing folded)."""
    a = _norm(answer)
    return bool(a) and a in _norm(text)


def cite(answer: str, n: int) -> str:
    """'Keys are rotated every 90 days.' -> 'Keys are rotated every 90 days [1].' (each sentence cited)."""
    from ragkit.textutil import split_sentences

    parts = []
    for s in split_sentences(answer):
        end = s[-1] if s.endswith(_ENDS) else "."
        parts.append(f"{s.rstrip('.!?').rstrip()} [{n}]{end}")
    return " ".join(parts)


def _user_hit(text: str, i: int, where: str) -> Hit:
    chunk = Chunk(id=-1 - i, doc_id=-1, uri=where, ord=0, text=text, start=0, end=len(text), token_count=0)
    return Hit(chunk=chunk, score=1.0, rank=1)


def retrieve_without(kb: KnowledgeBase, question: str, exclude: set[int], k: int | None = None) -> list[Hit]:
    """`ask`'s retrieval for the question with the given chunk ids left out (the corpus without them)."""
    k = k or kb.config.retrieval.top_k
    hits = kb.search(question, k + len(exclude))
    kept = [h for h in hits if h.chunk.id not in exclude][:k]
    return [replace(h, rank=i) for i, h in enumerate(kept, start=1)]


class ExampleBuilder:
    """Turns QA pairs into SFT examples with the KB's own retrieval, template and packing."""

    def __init__(self, kb: KnowledgeBase, options: AnswerOptions | None = None) -> None:
        from ragkit.generation.answer import options_from_config

        self.kb = kb
        self.options = options or options_from_config(kb.config.generator)
        self.k = kb.config.retrieval.top_k
        self.placed = 0  # positives whose supporting chunk retrieval missed (put in the last source slot)

    def _example(
        self,
        pair: QAPair,
        hits: Sequence[Hit],
        kind: str,
        support: tuple[int, ...],
        source_id: int | None = None,
    ) -> SftExample | None:
        """source_id: the hit that is the pair's own passage (its chunk, or a user record's context), if any."""
        from ragkit.generation.answer import packed_prompt

        packed = packed_prompt(pair.question, hits, self.kb.generator, self.options)
        if kind == "answer":
            n = next((i for i, h in enumerate(packed.hits, start=1) if holds(h.chunk.text, pair.answer)), None)
            if n is None and source_id is not None:
                # An answer in other words than its passage (a user's own sentence, a model-written answer the
                # judge accepted) cites that passage, if packing kept it whole; dropping these left a user's QA
                # file with free-form answers with refusal examples only.
                whole = next((h.chunk.text for h in hits if h.chunk.id == source_id), None)
                kept = (
                    i for i, h in enumerate(packed.hits, start=1) if (h.chunk.id, h.chunk.text) == (source_id, whole)
                )
                n = next(kept, None)
                if n is None:
                    return None  # packing cut or dropped the passage
            if n is not None:
                target = cite(pair.answer, n)
            else:
                # a user answer the sources do not quote: cite the source that supports it best, if any does
                from ragkit.citations import support as lexical

                scores = [lexical(pair.answer, h.chunk.text) for h in packed.hits]
                best = max(range(len(scores)), key=scores.__getitem__) if scores else -1
                target = cite(pair.answer, best + 1) if best >= 0 and scores[best] >= 0.5 else pair.answer
        else:
            if any(holds(h.chunk.text, pair.answer) for h in packed.hits):
                return None
            target = self.options.template.abstain
        return SftExample(
            messages=tuple(packed.messages),
            target=target,
            kind=kind,
            question=pair.question,
            origin=pair.origin,
            source_ids=tuple(h.chunk.id for h in packed.hits),
            support_ids=support,
        )

    def positive(self, pair: QAPair, index: int = 0) -> SftExample | None:
        """The question with `ask`'s sources and the cited answer; a user passage joins the KB's top hits."""
        if pair.context is not None:
            hits = self._among_hits(pair.question, pair.context, index)
            return self._example(pair, hits, "answer", (), source_id=-1 - index)
        hits = self.kb.search(pair.question, self.k)
        found = any(holds(h.chunk.text, pair.answer) for h in hits) or any(h.chunk.id == pair.chunk_id for h in hits)
        if pair.chunk_id is not None and not found:
            chunk = self.kb.store.chunks([pair.chunk_id]).get(pair.chunk_id)
            if chunk is None:
                return None
            self.placed += 1
            hits = [*hits[: self.k - 1], Hit(chunk=chunk, score=0.0, rank=min(len(hits) + 1, self.k))]
        support = tuple(h.chunk.id for h in hits if holds(h.chunk.text, pair.answer) or h.chunk.id == pair.chunk_id)
        return self._example(pair, hits, "answer", support, source_id=pair.chunk_id)

    def negative(self, pair: QAPair, other_context: str | None = None, index: int = 0) -> SftExample | None:
        """The same question with every chunk holding the answer left out; the target is the abstention phrase.

        A user record with its own passage gets another record's passage instead (other_context).
        """
        if pair.context is not None:
            if not other_context:
                return None
            return self._example(pair, self._among_hits(pair.question, other_context, index), "abstain", ())
        support = self.supporting_ids(pair)
        if not support:
            return None  # a user answer no chunk quotes: nothing known to remove
        return self._example(pair, retrieve_without(self.kb, pair.question, support, self.k), "abstain", tuple(support))

    def _among_hits(self, question: str, passage: str, index: int) -> list[Hit]:
        """A user passage in a slot of `ask`'s retrieval for the question, as the model will meet real sources.

        With the passage as the only source the model never learns to find the answer among others, and at
        `ask` time (top_k sources) it answered from whichever source it liked (seen on HaluEval: run F vs H in
        docs/benchmarks.md). The slot rotates with the record so no position gives the answer away.
        """
        body = " ".join(passage.split())
        others = [h for h in self.kb.search(question, self.k + 1) if " ".join(h.chunk.text.split()) not in body]
        others = others[: self.k - 1]
        slot = index % (len(others) + 1)
        hits = [*others[:slot], _user_hit(passage, index, f"training/record-{index}.txt"), *others[slot:]]
        return [replace(h, rank=i) for i, h in enumerate(hits, start=1)]

    def supporting_ids(self, pair: QAPair) -> set[int]:
        """The pair's chunk and every chunk among the question's top hits that holds the answer."""
        found = {h.chunk.id for h in self.kb.search(pair.question, max(20, self.k)) if holds(h.chunk.text, pair.answer)}
        return found | ({pair.chunk_id} if pair.chunk_id is not None else set())


# --- tokenising with the loss on the answer only ------------------------------------------------------


def tokenize_example(generator: Any, example: SftExample) -> tuple[list[int], list[int]]:
    """(input_ids, labels): the prompt exactly as `generate` encodes it, then the target and the end of the
    assistant turn. labels are -100 on the prompt, so the loss covers the answer tokens only."""
    messages = list(example.messages)
    prompt = generator.prompt_ids(messages)
    tok = generator.tokenizer
    if tok.chat_template:
        before = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template([*messages, {"role": "assistant", "content": example.target}], tokenize=False)
        # the chat template's own end of turn ("<|im_end|>\n") follows the answer, so the model learns to stop
        suffix = full[len(before) :] if full.startswith(before) else example.target + (tok.eos_token or "")
    else:
        suffix = " " + example.target + (tok.eos_token or "")
    answer = tok(suffix, add_special_tokens=False)["input_ids"]
    return prompt + answer, [-100] * len(prompt) + list(answer)


# --- training -----------------------------------------------------------------------------------------


def _base_model_dir(spec: str) -> Path:
    from ragkit.assets import resolve_generator
    from ragkit.generation.hf import converted_gguf_dir

    path = resolve_generator(spec)
    return converted_gguf_dir(path) if path.suffix == ".gguf" else path


def _batches(n: int, batch_size: int, steps: int, rng: random.Random) -> list[list[int]]:
    """`steps` batches of example indices: shuffled passes over range(n), the last pass cut short."""
    out: list[list[int]] = []
    while len(out) < steps:
        order = list(range(n))
        rng.shuffle(order)
        out += [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return out[:steps]


def _answer_loss(model: Any, rows: Sequence[tuple[list[int], list[int]]], pad_id: int, device: str) -> Any:
    """Summed cross-entropy over the answer tokens of these rows, as one left-padded forward pass.

    Left padding puts every answer at the end, so the LM head runs on the answer span only (logits_to_keep):
    on a 49k vocabulary that is most of the memory.
    """
    import torch

    width = max(len(ids) for ids, _ in rows)
    keep = max(sum(1 for x in labels if x != -100) for _, labels in rows) + 1
    ids_t = torch.full((len(rows), width), pad_id, dtype=torch.long)
    lab_t = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, labels) in enumerate(rows):
        ids_t[r, width - len(ids) :] = torch.tensor(ids)
        lab_t[r, width - len(ids) :] = torch.tensor(labels)
        mask[r, width - len(ids) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    ids_t, lab_t, mask, pos = (t.to(device) for t in (ids_t, lab_t, mask, pos))
    logits = model(input_ids=ids_t, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
    # logits[:, j] predicts the token after position (width - keep + j)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), lab_t[:, width - keep + 1 :].reshape(-1), reduction="sum"
    )


def train_lora(
    model: Any,
    data: Sequence[tuple[list[int], list[int]]],
    options: FinetuneOptions,
    *,
    pad_id: int,
    device: str,
    progress: ProgressFn | None = None,
) -> tuple[Any, TrainLog]:
    """Train a LoRA adapter on (input_ids, labels) pairs; returns (peft model, log).

    The loss is the mean over a batch's answer tokens, whether the batch runs as one pass or as micro-batches
    (options.micro_batch). Ctrl-C stops after the current step and returns what was trained
    (log.interrupted). Deterministic for a seed on CPU.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(options.seed)
    cfg = LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=list(options.target_modules),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user to do
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(model, cfg)
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    planned = options.steps or max(1, options.epochs * math.ceil(len(data) / options.batch_size))
    warmup = max(1, planned // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.1, 1.0 - s / planned))
    amp_dtype = None
    if device == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    batches = _batches(len(data), options.batch_size, planned, random.Random(options.seed))
    # On the CPU one example per pass, with the gradients summed over the batch: the same step, but no
    # padding to the longest example (prompts run 400-1,000 tokens) and a quarter of the activation memory.
    micro = options.micro_batch or (options.batch_size if device == "cuda" else 1)
    losses: list[float] = []
    seen = tokens = 0
    interrupted = False
    t0 = time.perf_counter()
    try:
        for step, idx in enumerate(batches, start=1):
            rows = [data[i] for i in idx]
            n_answer = sum(sum(1 for x in labels if x != -100) for _, labels in rows)
            step_loss = 0.0
            for start in range(0, len(rows), micro):
                part = rows[start : start + micro]
                with torch.autocast(device_type=device, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = _answer_loss(model, part, pad_id, device) / max(1, n_answer)
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
                step_loss += float(loss.detach())
                tokens += sum(len(ids) for ids, _ in part)
            if scaler is not None:
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            losses.append(round(step_loss, 5))
            seen += len(rows)
            if progress:
                progress(ProgressEvent("train", step, planned, losses[-1]))
    except KeyboardInterrupt:
        interrupted = True
    model.eval()
    log = TrainLog(
        steps=len(losses),
        planned_steps=planned,
        interrupted=interrupted,
        seconds=round(time.perf_counter() - t0, 3),
        examples=seen,
        tokens=tokens,
        losses=tuple(losses),
        device=device,
        dtype=str(amp_dtype or torch.float32).replace("torch.", ""),
    )
    return model, log


# --- the held-out evaluation --------------------------------------------------------------------------


class _HeldOutView:
    """A knowledge base that retrieves for held-out questions as they are to be asked: without given chunks
    (unanswerable KB questions) or with a user record's passage among the hits; everything else is the KB's."""

    def __init__(self, kb: KnowledgeBase, held: HeldOut, builder: ExampleBuilder) -> None:
        self._kb = kb
        self._held = held
        self._builder = builder
        self._cosine: dict[str, float] = {}  # the eval runner searches, then asks: embed each question once

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kb, name)

    def search(self, query: str, k: int | None = None, **kwargs: Any) -> list[Hit]:
        if query in self._held.planted:
            passage, index = self._held.planted[query]
            hits = self._builder._among_hits(query, passage, index)
            # the planted passage has no FAISS score; give it its cosine so the relevance floor sees it
            if query not in self._cosine:
                vecs = self._kb.embedder.embed([query, passage])
                self._cosine[query] = float(vecs[1] @ vecs[0])
            cosine = self._cosine[query]
            return [replace(h, dense=cosine) if h.chunk.id < 0 else h for h in hits]
        drop = self._held.excluded.get(query)
        if not drop:
            return self._kb.search(query, k, **kwargs)
        return retrieve_without(self._kb, query, drop, k)

    def ask(self, question: str, k: int | None = None, max_new_tokens: int | None = None, **kwargs: Any) -> Any:
        if question not in self._held.excluded and question not in self._held.planted:
            return self._kb.ask(question, k, max_new_tokens, **kwargs)
        options = self._kb.answer_options(max_new_tokens=max_new_tokens)
        t0 = time.perf_counter()
        hits = self.search(question, k)
        return self._kb.answer(question, hits, options, retrieve_s=time.perf_counter() - t0)


@dataclass(frozen=True, slots=True)
class HeldOut:
    """The held-out questions as eval items, and how each is asked.

    excluded: question -> chunk ids left out of its retrieval (KB questions asked as unanswerable).
    planted: question -> (passage, slot index): a user record's passage placed among `ask`'s hits, as in
    training; an unanswerable one gets another held-out record's passage instead of its own.
    """

    items: tuple[EvalItem, ...]
    excluded: dict[str, set[int]]
    planted: dict[str, tuple[str, int]]


def heldout_items(
    pairs: Sequence[QAPair], builder: ExampleBuilder, rng: random.Random, unanswerable: float = 0.5
) -> HeldOut:
    """Eval items from held-out pairs: a share `unanswerable` are asked without what holds their answer (the
    KB chunks that quote it, or for a user record its own passage; the right reply is to abstain); the rest
    are answerable with the answer sentence (and its short span) as gold."""
    from ragkit.evals.datasets import EvalItem

    order = list(range(len(pairs)))
    rng.shuffle(order)
    n_unans = round(len(pairs) * unanswerable) if len(pairs) > 1 else 0
    contexts = [p.context for p in pairs if p.context]
    items: list[EvalItem] = []
    excluded: dict[str, set[int]] = {}
    planted: dict[str, tuple[str, int]] = {}
    questions: set[str] = set()
    for pos, i in enumerate(order):
        p = pairs[i]
        if p.question in questions:
            continue
        questions.add(p.question)
        if pos < n_unans:
            if p.context is not None:
                others = [c for c in contexts if c != p.context]
                if not others:
                    continue
                planted[p.question] = (others[pos % len(others)], pos)
            else:
                support = builder.supporting_ids(p)
                if not support:
                    continue
                excluded[p.question] = support
            items.append(EvalItem(f"heldout-{pos + 1}", p.question, answerable=False, category="unanswerable"))
        else:
            if p.context is not None:
                planted[p.question] = (p.context, pos)
            golds = tuple(dict.fromkeys(a for a in (p.answer, p.short) if a))
            chunks = (p.chunk_id,) if p.chunk_id is not None else ()
            items.append(EvalItem(f"heldout-{pos + 1}", p.question, golds, True, chunks, category=p.origin))
    return HeldOut(tuple(items), excluded, planted)


def compare_metrics(base: dict[str, Any], tuned: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The before/after table: metric -> {base, tuned, delta}."""
    out: dict[str, dict[str, float | None]] = {}
    for key, _ in COMPARED:
        a, b = base.get(key), tuned.get(key)
        out[key] = {"base": a, "tuned": b, "delta": None if a is None or b is None else round(b - a, 6)}
    return out


# --- the whole job ------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/')")


def build_pairs(
    kb: KnowledgeBase, options: FinetuneOptions, rng: random.Random, progress: ProgressFn | None = None
) -> tuple[list[QAPair], list[QAPair], dict[str, Any]]:
    """Questions from sampled chunks, split by chunk: (train pairs, held-out pairs, summary)."""
    ids = [int(i) for i in kb.store.chunk_ids()]
    if not ids:
        raise RagkitError(f"{kb.root} holds no chunks; ingest documents first: ragkit ingest PATH --kb {kb.root}")
    chosen = sorted(rng.sample(ids, min(options.chunks, len(ids))))
    rng.shuffle(chosen)
    chunks = kb.store.chunks(chosen)
    n_held = 0
    if options.evaluate and len(chosen) > 1 and options.heldout > 0:
        n_held = min(len(chosen) - 1, max(1, round(len(chosen) * options.heldout)))
    held_ids = set(chosen[:n_held])
    judge = None
    rejected: Counter[str] = Counter()
    attempts = 0
    train: list[QAPair] = []
    held: list[QAPair] = []
    for done, cid in enumerate(chosen, start=1):
        chunk = chunks[cid]
        mine: list[QAPair] = []
        if attempts < options.model_questions:
            if judge is None:
                from ragkit.evals.judges import make_judge

                judge = make_judge("minilm-lexical", embedder=kb.embedder)
            attempts += 1
            pair, why = model_pair(kb.generator, judge, chunk)
            if pair is None:
                rejected[why] += 1
            else:
                mine.append(pair)
        for p in template_pairs(chunk, options.questions_per_chunk):
            if len(mine) < options.questions_per_chunk and p.answer not in {m.answer for m in mine}:
                mine.append(p)
        (held if cid in held_ids else train).extend(mine)
        if progress:
            progress(ProgressEvent("questions", done, len(chosen), note=chunk.location))
    made = Counter(p.origin for p in train + held)
    total = sum(made.values())
    summary = {
        "chunks_in_kb": len(ids),
        "chunks_sampled": len(chosen),
        "chunks_heldout": n_held,
        "model_attempts": attempts,
        "model_rejected": dict(rejected),
        "pairs": dict(made),
        "pair_shares": {k: round(v / total, 3) for k, v in made.items()} if total else {},
    }
    return train, held, summary


def finetune(
    kb: KnowledgeBase,
    options: FinetuneOptions = FinetuneOptions(),  # noqa: B008 (frozen)
    *,
    train_file: str | Path | None = None,
    progress: ProgressFn | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune the KB's local GPT with LoRA and save the adapter as kb/models/NAME/.

    Questions come from the KB's chunks (options.use_kb) and/or a QA JSONL (train_file). With
    options.evaluate, held-out questions are asked of the base and the tuned model through the eval runner
    (runs saved under kb/runs/) and result.comparison holds the before/after metrics. Ctrl-C during training
    saves the adapter trained so far (result.log.interrupted) and skips the evaluation. options.threads sets
    torch's CPU threads for the whole job (restored afterwards).
    """
    _check_name(options.name)
    if not options.threads:
        return _finetune(kb, options, train_file, progress, overwrite)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        return _finetune(kb, options, train_file, progress, overwrite)
    finally:
        torch.set_num_threads(before)


def _finetune(
    kb: KnowledgeBase,
    options: FinetuneOptions,
    train_file: str | Path | None,
    progress: ProgressFn | None,
    overwrite: bool,
) -> FinetuneResult:
    if kb.config.generator.backend != "transformers":
        raise ConfigError("fine-tuning needs generator.backend = 'transformers' (a local model)")
    if not options.use_kb and train_file is None:
        raise ConfigError("nothing to train on: give a training file or let ragkit make questions from the KB")
    out_dir = models_dir(kb.root) / options.name
    if out_dir.exists() and not overwrite:
        raise ConfigError(f"{out_dir} exists; choose another --name or pass --force to replace it")
    if kb.config.generator.adapter:  # always start from the base model
        kb = _with_adapter(kb, None)
    t_start = time.perf_counter()
    rng = random.Random(options.seed)
    train_pairs: list[QAPair] = []
    held_pairs: list[QAPair] = []
    summary: dict[str, Any] = {}
    if options.use_kb:
        train_pairs, held_pairs, summary = build_pairs(kb, options, rng, progress)
    if train_file is not None:
        user = read_train_file(train_file)
        n_held = round(len(user) * options.heldout) if options.evaluate and not options.use_kb else 0
        held_pairs += user[:n_held]
        train_pairs += user[n_held:]
        summary["user_records"] = len(user)
        summary.setdefault("pairs", {})["user"] = len(user)
    if not train_pairs:
        raise RagkitError("no training questions could be made; ingest more text or give --train FILE")

    builder = ExampleBuilder(kb)
    examples = _examples(builder, train_pairs, options, rng, progress)
    gen = kb.generator
    tokenized: list[tuple[list[int], list[int]]] = []
    kept: list[SftExample] = []
    for ex in examples:
        ids, labels = tokenize_example(gen, ex)
        if len(ids) <= options.max_length:
            tokenized.append((ids, labels))
            kept.append(ex)
    if not kept:
        raise ConfigError(f"every example is longer than max_length={options.max_length} tokens; raise it")
    kinds = Counter(e.kind for e in kept)
    if not kinds["answer"]:
        # refusals alone teach the model to refuse everything
        raise RagkitError(
            f"none of the {len(train_pairs)} training questions gave an answer example (each needs its passage, or "
            "the answer, to fit in the prompt with ask's sources); check the --train file's contexts, or raise "
            "max_length"
        )
    summary["examples"] = {
        "total": len(kept),
        "answer": kinds["answer"],
        "abstain": kinds["abstain"],
        "too_long_dropped": len(examples) - len(kept),
        "questions_without_answer_example": len(train_pairs) - sum(e.kind == "answer" for e in examples),
        "support_placed_in_last_slot": builder.placed,
        "mean_tokens": round(sum(len(i) for i, _ in tokenized) / len(tokenized), 1),
        "mean_answer_tokens": round(sum(sum(x != -100 for x in lab) for _, lab in tokenized) / len(tokenized), 1),
    }
    summary["train_questions"] = len(train_pairs)
    summary["seconds_building"] = round(time.perf_counter() - t_start, 2)

    # the held-out questions are fixed before training, so an interrupted run can still be evaluated later
    held = heldout_items(held_pairs, builder, random.Random(options.seed + 1))
    items = held.items
    summary["heldout"] = {
        "answerable": sum(i.answerable for i in items),
        "unanswerable": sum(not i.answerable for i in items),
    }

    import torch
    from transformers import AutoModelForCausalLM

    from ragkit.assets import auto_device

    device = auto_device(options.device)
    base_dir = _base_model_dir(kb.config.generator.model)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load the base model from {base_dir}: {exc}") from exc
    tok = gen.tokenizer  # type: ignore[attr-defined]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    peft_model, log = train_lora(model, tokenized, options, pad_id=int(pad or 0), device=device, progress=progress)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    peft_model.save_pretrained(str(tmp))
    del peft_model, model
    info = {
        "name": options.name,
        "created": datetime.now().isoformat(timespec="seconds"),
        "ragkit_version": __version__,
        "base_model": kb.config.generator.model,
        "base_path": str(base_dir),
        "options": {**asdict(options), "target_modules": list(options.target_modules)},
        "train_file": str(train_file) if train_file else None,
        "generator_config": kb.config.generator.model_dump(),
        "retrieval_config": kb.config.retrieval.model_dump(),
        "trainable_params": trainable,
        "training": {**asdict(log), "examples_per_s": round(log.examples_per_s, 3)},
    }
    (tmp / "finetune.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    (tmp / "data.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    with (tmp / "train.jsonl").open("w", encoding="utf-8") as f:
        for ex in kept:
            rec = {k: v for k, v in asdict(ex).items() if k != "messages"}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with (tmp / "heldout.jsonl").open("w", encoding="utf-8") as f:
        for item in items:
            extra: dict[str, Any] = {}
            if item.question in held.excluded:
                extra["exclude_chunk_ids"] = sorted(held.excluded[item.question])
            if item.question in held.planted:
                extra["passage"] = held.planted[item.question][0]
            f.write(json.dumps({**item.to_json(), **extra}, ensure_ascii=False) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)

    result = FinetuneResult(options.name, out_dir, log, summary, trainable_params=trainable)
    if not options.evaluate or log.interrupted or not items:
        return result
    return _evaluate(kb, result, held, builder, options, progress)


def refusal_passage(builder: ExampleBuilder, pair: QAPair, contexts: Sequence[str]) -> str | None:
    """The passage a user record's refusal example gets in place of its own: another record's, far along the
    list, so it is about something else. (bench/finetune_hardneg.py swaps in the nearest one instead.)"""
    return contexts[(contexts.index(pair.context or "") + len(contexts) // 2) % len(contexts)]


def _examples(
    builder: ExampleBuilder,
    pairs: Sequence[QAPair],
    options: FinetuneOptions,
    rng: random.Random,
    progress: ProgressFn | None,
) -> list[SftExample]:
    """A positive for every pair and a negative for a seeded share `options.negatives` of them."""
    n_neg = round(len(pairs) * max(0.0, min(1.0, options.negatives)))
    negative = set(rng.sample(range(len(pairs)), n_neg))
    contexts = [p.context for p in pairs if p.context]
    out: list[SftExample] = []
    for i, pair in enumerate(pairs):
        pos = builder.positive(pair, i)
        if pos is not None:
            out.append(pos)
        if i in negative:
            other = refusal_passage(builder, pair, contexts) if pair.context and len(contexts) > 1 else None
            neg = builder.negative(pair, other, i)
            if neg is not None:
                out.append(neg)
        if progress:
            progress(ProgressEvent("examples", i + 1, len(pairs), note=pair.question[:60]))
    rng.shuffle(out)
    return out


def _with_adapter(kb: KnowledgeBase, adapter: str | None) -> KnowledgeBase:
    from ragkit.api import KnowledgeBase as KB

    gen_cfg = kb.config.generator.model_copy(update={"adapter": adapter})
    return KB(kb.root, kb.config.model_copy(update={"generator": gen_cfg}), kb.manifest)


def _evaluate(
    kb: KnowledgeBase,
    result: FinetuneResult,
    held: HeldOut,
    builder: ExampleBuilder,
    options: FinetuneOptions,
    progress: ProgressFn | None,
) -> FinetuneResult:
    from ragkit.evals.datasets import Dataset
    from ragkit.evals.runner import EvalOptions, run_eval

    items = held.items
    dataset = Dataset(f"finetune-{options.name}-heldout", items, str(result.path / "heldout.jsonl"))
    eval_opts = EvalOptions(max_new_tokens=options.eval_max_new_tokens)
    runs = {}
    tuned_kb = _with_adapter(kb, options.name)
    try:
        for stage, base in (("eval-base", kb), ("eval-tuned", tuned_kb)):

            def on_sample(done: int, total: int, question: str, stage: str = stage) -> None:
                if progress:
                    progress(ProgressEvent(stage, done, total, note=question[:60]))

            view: Any = _HeldOutView(base, held, ExampleBuilder(base, builder.options))
            suffix = "base" if stage == "eval-base" else "tuned"
            runs[suffix] = run_eval(
                view, dataset, name=f"finetune-{options.name}-{suffix}", options=eval_opts, progress=on_sample
            )
    finally:
        tuned_kb.close()
    comparison = compare_metrics(runs["base"].metrics, runs["tuned"].metrics)
    payload = {
        "base_run": str(runs["base"].run_dir),
        "tuned_run": str(runs["tuned"].run_dir),
        "questions": {
            "answerable": sum(i.answerable for i in items),
            "unanswerable": sum(not i.answerable for i in items),
        },
        "metrics": comparison,
        # both runs abstain unasked below this relevance; the comparison is what tuning adds on top of it
        "min_relevance": kb.answer_options().min_relevance,
    }
    (result.path / "comparison.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return replace(result, comparison=comparison, base_run=runs["base"].run_dir, tuned_run=runs["tuned"].run_dir)
