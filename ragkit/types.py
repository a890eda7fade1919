"""Frozen records that flow through ragkit: source -> Document -> Chunk -> Hit -> Answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

# generator.dtype: the torch dtype a local generator runs in (here, not in config, so the CLI can name the
# choices without importing pydantic)
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)

Message = dict[str, str]  # a chat message: {"role": "system" | "user" | "assistant", "content": ...}


# the names a project or a distribution gives its plain-text files ("README", "NEWS.gz", "/usr/share/doc/*/copyright"):
# connectors read such a file as text, and the same name says nothing of which document it is, so a location
# shows it with its folder
GENERIC_TEXT_NAMES = (
    "readme|news|changes|changelog|history|todo|authors|install|thanks|hacking|faq|bugs|notice|contributing"
    "|copyright|copying|licen[cs]e"
)
_GENERIC_NAME = re.compile(rf"(?:{GENERIC_TEXT_NAMES}|index)(?:\.[\w.-]+)?", re.I)


@dataclass(frozen=True, slots=True)
class Generation:
    """One completion with its token counts and wall time in seconds."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish: str = "stop"  # "stop": end of turn; "length": token limit; "rule": the caller's stop rule fired
    # (piece of text, natural log of its probability) per generated token, in order; their pieces joined are
    # the completion before stripping. Empty when the backend does not report them (llama.cpp, HTTP).
    tokens: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Element:
    """One structural piece of a parsed document (a title, a paragraph, a table, a list item).

    start/end are character offsets of `text` inside `Document.text`.
    """

    text: str
    kind: str
    start: int
    end: int
    page: int | None = None  # 1-based page number, where the format has pages
    section: str | None = None  # the nearest title above this element


# the document meta key recording the version of the parser that read it (ragkit.connectors.parsing)
PARSER_META = "parser"


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed source: its full extracted text and the elements that make it up."""

    uri: str
    text: str
    elements: tuple[Element, ...]
    content_hash: str  # sha256 of the raw source bytes
    meta: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what parsing guessed or left out (an encoding, records without text)
    grants: tuple[str, ...] | None = None  # who may read it (ragkit.access); None = keep what is stored


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """A chunk before it is stored: a slice `Document.text[start:end]` within the embedder's limit."""

    text: str
    start: int
    end: int
    token_count: int  # embedder word pieces, special tokens included
    page: int | None = None
    section: str | None = None
    kinds: tuple[str, ...] = ()  # element kinds inside the chunk: "NarrativeText", "Table", "ListItem", ...


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stored chunk. `id` is the SQL primary key and also its FAISS id."""

    id: int
    doc_id: int
    uri: str
    ord: int
    text: str
    start: int
    end: int
    token_count: int
    page: int | None = None
    section: str | None = None
    kinds: tuple[str, ...] = ()  # element kinds inside the chunk

    @property
    def source_name(self) -> str:
        """The source as its location names it: a file's name without its folders ("its folder/name" for a name
        that names no document: "zlib1g/copyright", "api/index.html"), a URL or table as given."""
        if not self.uri.startswith("/"):
            return self.uri
        folders, _, name = self.uri.rpartition("/")
        folder = folders.rsplit("/", 1)[-1]
        return f"{folder}/{name}" if folder and _GENERIC_NAME.fullmatch(name) else name

    @property
    def location(self) -> str:
        """Short place of the chunk in its source: 'file.pdf, page 2, section "Intro"' (file name, not path)."""
        parts = [self.source_name]
        if self.page is not None:
            parts.append(f"page {self.page}")
        if self.section:
            parts.append(f'section "{self.section}"')
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its score (higher is better) and 1-based rank.

    score is what the ranking used: cosine similarity (dense), BM25 (keyword), the reciprocal-rank fusion score
    (hybrid) or the reranker's score. dense and keyword keep each retriever's own score when it found the chunk.
    """

    chunk: Chunk
    score: float
    rank: int
    dense: float | None = None
    keyword: float | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """A source an answer sentence relies on.

    n is the source's number in the prompt ([n]). kind says how ragkit knows:
    "cited"     - the model wrote [n] and the source supports the sentence;
    "corrected" - the model cited a source that does not support the sentence, another one does;
    "inferred"  - the model wrote no marker; the best-supporting source is attributed;
    "entry"     - the model wrote no marker and no source supports the sentence word by word, but the model read
                  the manual entry of the option it names, in this source, as the answer (rule RU).
    """

    n: int
    chunk_id: int
    uri: str
    page: int | None
    section: str | None
    start: int
    end: int
    kind: str
    sentence: str
    support: float  # share of the sentence's content words found in the source, 0..1


@dataclass(frozen=True, slots=True)
class PackingNote:
    """A retrieved hit that did not go whole into the prompt: `action` is "dropped" or "cut".

    A cut hit keeps its first `kept_chars` of `total_chars` characters, ending at a sentence boundary.
    """

    chunk_id: int
    uri: str
    rank: int
    action: str
    kept_chars: int
    total_chars: int


@dataclass(frozen=True, slots=True)
class Flag:
    """Something the checks noticed. kind is one of:
    "unsupported"      - an answer sentence no source supports (text = the sentence);
    "uncited"          - the model wrote no [n] for a sentence ragkit could attribute (text = the sentence);
    "invalid_citation" - the model cited [n] with no source n (text = the sentence, source = n);
    "injection"        - source n held instruction-like text, neutralised before the model saw it
                         (text = the removed sentence, detail = which rule matched);
    "echoed_instruction" - an answer sentence repeated an instruction planted in source n and was removed
                         (text = the sentence, detail = "copied" or "marker", quote = the source sentence);
    "truncated"        - decoding stopped mid-sentence at the token limit (text = the unfinished sentence;
                         dropped from the answer unless it is the only one). Raise max_new_tokens.
    "low_relevance"    - no source was similar enough to the question (min_relevance), so ragkit abstained
                         without asking the model (detail = the best similarity and the floor).
    "unsourced"        - no sentence of the answer was supported by any source (the citation check kept no
                         citation), so ragkit abstained after generation (text = the withheld answer, detail =
                         the best support found and support_threshold). Off with min_grounding 0.
    "ungrounded"       - the answer's key fact was in no source, or only in a sentence about something else
                         (min_grounding), so ragkit abstained after generation (text = the withheld answer,
                         quote = the source sentence, if any; detail = the key spans and the similarity).
    "unsure"           - the model put little probability on the answer's key fact (min_confidence): it was
                         guessing, so ragkit abstained after generation (text = the withheld answer,
                         detail = the key spans and their probability).
    "restated"         - the answer only repeated the question (min_coverage), so ragkit abstained after
                         generation (text = the withheld answer).
    "unquantified"     - the question asks for a figure (how many, which year or version, an amount in a unit)
                         and the answer gives none (min_coverage), so ragkit abstained after generation
                         (text = the withheld answer, detail = the question's phrase).
    "no_default"       - the question asks for a default and the source sentence holding the answer (with the
                         ones beside it and its section title) never says "default" (min_coverage), so ragkit
                         abstained after generation (text = the withheld answer, quote = that sentence).
    "no_limit"         - the question asks for a bound (largest, maximum, at most) and the source sentence
                         holding the answer (with the ones beside it, its entry tag and section title) states none
                         (min_coverage; rule X), so ragkit abstained after generation (text = the withheld answer,
                         quote = that sentence, detail = the question's bound words).
    "off_question"     - the source sentence holding the answer's key fact does not mention what the question
                         asks (min_coverage), so ragkit abstained after generation (text = the withheld answer,
                         quote = that sentence, detail = the question's words it lacks and the coverage).
    "unverified"       - a model reading an answer did not find it in the sources: the fallback reading the
                         first model's (min_verified; then it answered itself) or its own (fallback_min_verified),
                         or a model without a fallback its own (own_min_verified), so ragkit withheld it
                         (text = the withheld answer, detail = P(yes) and the floor's name).
    "released"         - the coverage check (off_question) withheld the draft, and the generator, reading it,
                         gave at least generator.release_min_verified that the sources state it, or read the
                         draft's own manual entry as the answer (generator.entry_release_min, rule R), so it was
                         delivered (text = the answer, detail = the check's reason and the reading, quote = the
                         check's sentence); or any check withheld the draft and the generator read another entry
                         as the answer, given in the draft's place (generator.entry_answer_min, rule RA; text =
                         the draft).
    "hedged"           - the model said the sources lack the answer and then stated more (a guess behind a
                         hedge): ragkit delivers the abstention phrase (text = the model's reply).
    "fallback"         - the checks withheld the first model's draft and generator.fallback answered too
                         (ragkit.fallback): text = the draft not delivered (the first model's when the second
                         one's answer stands, else the second one's), detail = which model answered.
    """

    kind: str
    text: str
    source: int | None = None
    detail: str = ""
    quote: str = ""  # the source sentence a flag points at, verbatim (echoed_instruction)


@dataclass(frozen=True, slots=True)
class Answer:
    """The result of `KnowledgeBase.ask`.

    text carries verified [n] markers; raw_text is what the model wrote. `unsupported` lists answer
    sentences that no source supports (likely hallucinations).
    """

    question: str
    text: str
    raw_text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]  # the hits that went into the prompt, numbered [1..n] in rank order
    abstained: bool
    unsupported: tuple[str, ...]
    dropped_hits: int  # retrieved hits that did not fit into the token budget
    prompt_tokens: int
    completion_tokens: int
    timings: dict[str, float]  # seconds per stage: retrieve, pack, generate, check, total
    packing: tuple[PackingNote, ...] = ()  # hits dropped or cut to fit the token budget
    flags: tuple[Flag, ...] = ()  # self-check and injection findings; `strict` removed flagged sentences
    samples: tuple[str, ...] = ()  # with samples > 1: every sampled answer (checked text), majority first
    agreement: float | None = None  # with samples > 1: share of samples that agree with the returned answer
    structured: Any = None  # with a JSON Schema: the parsed, validated object (text is its JSON)
    generator: str = ""  # backend and model that wrote the answer ("" when ragkit abstained without one)
    relevance: float | None = None  # best cosine similarity of the question to a hit (None: no hits)
    # the answer ragkit withheld when it abstained after generation ("" otherwise), and how its key fact sat
    # in the sources (ragkit.grounding; None when not measured or the answer stated nothing to check)
    draft: str = ""
    grounding: float | None = None
    # the model's geometric-mean probability of the answer's key-span tokens (ragkit.confidence; None when the
    # backend reports no token probabilities or the answer stated nothing to check)
    confidence: float | None = None
    # the share of the question's words (rarity-weighted) that the source sentence holding the answer's key fact
    # mentions (ragkit.coverage; None when not measured: choice and yes/no questions, nothing to check)
    coverage: float | None = None
    # the fallback model's P(yes) that the sources state this answer, the first model's or its own
    # (ragkit.verification; None when not read: no fallback, the floor off, or an answer already withheld)
    verified: float | None = None


@dataclass(frozen=True, slots=True)
class FileFailure:
    """A source that was reported and skipped during ingest."""

    uri: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestReport:
    """Summary of one ingest run."""

    files_seen: int
    ingested: int  # new or changed documents written
    unchanged: int  # skipped because their content hash is already stored
    failed: tuple[FileFailure, ...]
    chunks_added: int
    seconds: float
    interrupted: bool = False
    deleted: int = 0  # documents removed by --prune
    restamped: int = 0  # unchanged documents whose metadata this run's `meta` updated (no re-embedding)
    reread: int = 0  # of `ingested`: unchanged files (or URLs with the same body) read again, an older parser read them
    notes: tuple[FileFailure, ...] = ()  # ingested, with a remark: an encoding guessed, records skipped

    @property
    def partial(self) -> bool:
        """True when some sources failed or the run was interrupted."""
        return bool(self.failed) or self.interrupted


class _ReadsLikeADict:
    """Reports were dicts before they were typed: report["ok"] still reads a field, and to_json() gives the
    dict that `--json` prints."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise KeyError(key)
        return getattr(self, key)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class ReindexReport(_ReadsLikeADict):
    """What `reindex` built from the vectors in SQL (no re-embedding)."""

    spec: str  # as asked ("auto", "HNSW32", ...)
    resolved: str  # the FAISS factory string built
    index: str  # FAISS's description of the index
    vectors: int
    trained_on: int  # vectors sampled to train an IVF/PQ index; 0 when none was needed
    seconds: float


@dataclass(frozen=True)
class CheckReport(_ReadsLikeADict):
    """Whether FAISS and the keyword index agree with SQL (the truth), and what `check` repaired."""

    waiting_for_training: int  # vectors an untrained IVF/PQ index keeps in SQL until it can train
    sql_chunks: int
    faiss_vectors: int
    missing_from_faiss: int
    extra_in_faiss: int
    duplicate_ids: int
    keyword_index_ok: bool
    index: str
    repaired: bool  # something was inconsistent and the repair fixed it (verified again afterwards)
    ok: bool  # consistent now (before any repair, or after it)
    tombstones: int = 0  # ids deleted from SQL that an index which cannot delete (HNSW) still holds, hidden
    warnings: tuple[str, ...] = ()  # e.g. an unreadable index.faiss, treated as missing


@dataclass(frozen=True)
class DeleteReport(_ReadsLikeADict):
    """What `delete` removed (or, with dry_run, would remove)."""

    deleted: tuple[str, ...]  # document uris, in the order the targets matched them
    unmatched: tuple[str, ...]  # targets that matched no stored document
    chunks: int  # chunks removed with them (0 for a dry run)
    dry_run: bool = False


@dataclass(frozen=True)
class AclReport(_ReadsLikeADict):
    """What `acl grant` / `acl revoke` did."""

    action: str  # grant | revoke
    grants: tuple[str, ...]  # the grant tokens given or taken
    documents: tuple[str, ...]  # document uris the targets named
    changed: int  # of them, how many had their grants changed
    unmatched: tuple[str, ...]  # targets that matched no stored document


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A stored document as a reader lists it (`kb.documents`): no text, no vectors."""

    id: int
    uri: str
    status: str  # "ok" or "error" (the last ingest failed: `error` says why)
    chunks: int
    size: int
    mtime: float
    ingested_at: str  # ISO 8601, UTC
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
