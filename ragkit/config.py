"""One validated configuration: defaults < kb/ragkit.toml < explicit overrides. Unknown keys are errors."""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragkit.errors import ConfigError
from ragkit.types import Dtype

Device = Literal["auto", "cpu", "cuda"]


class _Section(BaseModel):
    # strict: "yes" is no bool and "2" no float (TOML has real booleans and numbers); an int still fits a float
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class EmbedderConfig(_Section):
    model: str = "all-MiniLM-L6-v2"  # a bundled name or a local sentence-transformers directory
    batch_size: int = Field(default=32, ge=1)
    device: Device = "auto"


class ChunkingConfig(_Section):
    max_tokens: int = Field(default=200, ge=16)  # embedder word pieces per chunk, special tokens included
    overlap: int = Field(default=32, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap >= self.max_tokens // 2:
            raise ValueError(f"chunking.overlap ({self.overlap}) must be below half of max_tokens ({self.max_tokens})")
        return self


class IngestConfig(_Section):
    # "auto": light parsers for Markdown/HTML/text, unstructured for DOCX; "unstructured": it parses all but PDF
    parser: Literal["auto", "unstructured"] = "auto"
    max_file_mb: float = Field(default=100.0, gt=0)  # larger files are reported and skipped
    json_text_field: str = "text"  # the field of each JSON/JSONL record that holds its text
    url_timeout_s: float = Field(default=20.0, gt=0)  # per http(s) source
    # chunks per embedding call (whole files, gathered across files); None = about a second of embedding at the
    # speed measured during the run: ~32 on a CPU, thousands on a GPU (ragkit/ingest_embed.py)
    batch_chunks: int | None = Field(default=None, ge=1)
    # parser processes for local files; None = one per core beyond two, at most 8, for runs of 64+ files
    parse_workers: int | None = Field(default=None, ge=0, le=64)


class IndexConfig(_Section):
    # FAISS factory grammar after the IDMap2 wrapper ("Flat", "HNSW32", "IVF1024,Flat", "IVF4096,PQ32"), or
    # "auto": exact (Flat) below 50,000 chunks, IVF above; the resolved spec is recorded in manifest.json
    spec: str = "auto"
    device: Device = "auto"


class RetrievalConfig(_Section):
    # 3: the bundled 135M GPT answers better from fewer, better sources (docs/benchmarks.md)
    top_k: int = Field(default=3, ge=1, le=100)
    # hybrid = dense (FAISS) + keyword (BM25 in SQL) fused by reciprocal rank; keyword = BM25 alone. A new KB made for
    # Qwen 1.5B records "keyword" (opening.py): it answered manuals better so, the 0.5B model worse (design notes V''')
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    candidates: int = Field(default=20, ge=1, le=1000)  # per retriever, before fusion / rerank / MMR
    rrf_k: int = Field(default=60, ge=1)  # the reciprocal-rank constant: 1 / (rrf_k + rank)
    # how hybrid fuses its lists: "rank" (reciprocal rank, rrf_k) or "score" (each list's scores min-max normalised
    # over its candidates, then summed with the weights below). "score" with keyword_weight 1 helps the 1.5B generator
    # a little and costs the 0.5B one more wrong answers (docs/design-notes.md, rule W), so "rank" stays
    fusion: Literal["rank", "score"] = "rank"
    # keyword counts double: on HaluEval-QA (entity-heavy questions) BM25 beats dense retrieval, and 1:2 beat both
    # single retrievers on the held-out half (docs/benchmarks.md, "Retrieval quality")
    dense_weight: float = Field(default=1.0, ge=0.0)
    keyword_weight: float = Field(default=2.0, ge=0.0)
    nprobe: int | None = Field(default=None, ge=1)  # IVF lists visited per query; None = max(16, nlist / 64)
    ef_search: int | None = Field(default=None, ge=1)  # HNSW search breadth; None = max(64, 2 k)
    reranker: str | None = None  # a local sentence-transformers CrossEncoder directory; None = no rerank
    rerank_depth: int = Field(default=20, ge=1, le=1000)  # fused candidates the reranker (and `rescore`) reorders
    # "sentences": the fused head is reordered by fusing its order with each chunk's best sentence's cosine to the
    # question (a chunk of a manual holds several entries; its one vector averages them). Rule R, design notes
    # "entries": for a "which option/variable/..." question, the head is reordered by each chunk's best-matching
    # entry (an option over its text; rule O, design notes)
    # "meaning": for such a question or a "how do I" one, the head alternates the chunks by their entry nearest the
    # question in meaning (the KB's embedder) with the retriever's order (rule M, design notes: opt-in, +1 on its
    # held-out trials against the +3 asked)
    rescore: Literal["none", "sentences", "entries", "meaning"] = "none"
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0)  # MMR diversity: 1 = relevance only
    # a question that names some of the KB's documents by their file name ("sort" for sort.1.gz) gets their best
    # chunks first, then the rest (rule DN, design notes: recall@3 0.434 -> 0.575 in a KB of thirty manuals)
    named_documents: bool = True
    # the final head (rerank_depth hits, named documents first) reordered by fusing its order with each chunk's cosine
    # to the question (reciprocal ranks, equal weights; rule DR, design notes); keyword mode only (hybrid and dense
    # modes rank by the vectors already), and not with a cross-encoder reranker
    dense_rerank: bool = True


class GeneratorConfig(_Section):
    model: str = "SmolLM2-135M-Instruct"  # a bundled name, a local transformers directory or a .gguf file
    # a LoRA adapter on `model`: a name under kb/models/ (made by `ragkit finetune`) or an adapter folder
    adapter: str | None = None
    # a second generator (a bundled name, a local transformers directory or a .gguf file, same backend), asked
    # only when the checks after generation withhold `model`'s draft; its answer passes the same checks, under
    # its own measured floors. None = no second opinion (docs/benchmarks.md, "Tenth round")
    fallback: str | None = None
    # with a fallback: it also reads each answer the first model delivers and says whether the sources state it;
    # below this P(yes) the answer is withheld and the fallback answers instead (ragkit.verification). 0 = off
    # (the default: it costs a forward pass of the fallback per answer); 0.72 is the floor measured for
    # Qwen2.5-Coder-1.5B reading Qwen 0.5B's answers (docs/benchmarks.md, "Tenth round"). Run live on seven
    # real-document trials it scored level with Qwen 1.5B alone, so it is not the default ("Fifteenth round")
    min_verified: float = Field(default=0.0, ge=0.0, le=1.0)
    # with a fallback: it reads its own answer too, the same way, before it is delivered; below this P(yes) the
    # answer is withheld. None = the floor measured for the fallback model (ragkit.verification: 0.5 for
    # Qwen2.5-Coder-1.5B, "no" more likely than "yes"; off for other models), 0 = off
    fallback_min_verified: float | None = Field(default=None, ge=0.0, le=1.0)
    # without a fallback: the generator reads its own answer the same way before it is delivered; below this
    # P(yes) the answer is withheld. 0 = off (the default: tried as Qwen 1.5B's default with a lower coverage
    # floor, and on top of its own, and not adopted, docs/benchmarks.md "Thirteenth round", "Sixteenth
    # round"); 0.5 is the floor measured for Qwen 1.5B
    own_min_verified: float = Field(default=0.0, ge=0.0, le=1.0)
    # when only the coverage check (off_question) withheld the draft, the generator reads it ("Do the
    # sources state this answer?") and delivers it at P(yes) >= this. None = the floor measured for the generator
    # (ragkit.verification.RELEASE_MIN_VERIFIED; off for other models); 0 = off; always off with a fallback
    release_min_verified: float | None = Field(default=None, ge=0.0, le=1.0)
    # then (rule R, ragkit.entry_reading) the generator reads the draft's own manual entry alone, and the entries
    # beside it: it delivers the draft at P(yes) >= this that the entry is the answer, 0.1 above every other.
    # None = the floor measured for the generator where its entry adapter is built (0.3 for Qwen 1.5B, rules RT
    # and RF; off for other models and without the adapter); 0 = off (rule RA too); always off with a fallback
    entry_release_min: float | None = Field(default=None, ge=0.0, le=1.0)
    # rule RA: in that reading, another entry read as the answer at P(yes) >= this, 0.1 above the draft's own entry
    # and every other entry read, is delivered in place of a draft any check withheld. 0 = off, the default (on
    # held-out trials 143-148 at 0.5 it gave one right answer and one wrong, docs/design-notes.md); always off
    # with a fallback
    entry_answer_min: float = Field(default=0.0, ge=0.0, le=1.0)
    max_new_tokens: int = Field(default=160, ge=1)
    context_window: int = Field(default=2048, ge=256)  # tokens; capped by the model's own limit
    temperature: float = Field(default=0.0, ge=0.0)  # 0 = greedy decoding
    device: Device = "auto"
    # the transformers backend's weights and arithmetic. "auto": bf16 on CUDA (fp16 where the GPU lacks bf16); on
    # the CPU bf16 for Qwen2.5-Coder-1.5B where the CPU has bf16 units (avx512_bf16 or amx_bf16 in /proc/cpuinfo:
    # as good on the trials, 0.54x the seconds, 0.56x the memory, docs/benchmarks.md "Seventeenth round"), fp32
    # for the other models and CPUs (bf16 without the units took 3.9x fp32's seconds). A GGUF model run in bf16 on
    # the CPU gets a bf16 copy of its own, converted once
    dtype: Dtype = "auto"
    threads: int | None = Field(default=None, ge=1)  # CPU threads; None = torch's default, every core for llama.cpp
    # "transformers": a local model run with torch; "openai": an OpenAI-compatible HTTP server at `url`;
    # "llamacpp": a .gguf `model` run by llama.cpp (extra ragkit[llamacpp])
    backend: Literal["transformers", "openai", "llamacpp"] = "transformers"
    url: str | None = None  # e.g. "http://127.0.0.1:8000/v1" (vLLM, llama.cpp server, Ollama)
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the HTTP backend's key, if it needs one
    timeout_s: float = Field(default=120.0, gt=0)  # per HTTP request
    # prompt: a TOML/JSON file with any of system, source, user, abstain, persona, examples (see README)
    template_file: str | None = None
    persona: str | None = None  # "expert" framing: "You are {persona}." opens the system prompt
    few_shot: bool = True  # prepend the template's worked example(s)
    neutralise_injections: bool = True  # drop instruction-like sentences from sources before the model sees them
    cut_hits: bool = True  # a hit that does not fit is cut at a sentence boundary (False: dropped whole)
    # before generation: when no retrieved source reaches this cosine similarity to the question, answer with
    # the abstention phrase without asking the model. None = the value measured for the bundled embedder
    # (0.40 for all-MiniLM-L6-v2, docs/benchmarks.md "Abstention dev set"; 0.20 with Qwen2.5-Coder-1.5B, whose
    # checks after generation handle the questions between, "Twentieth round", "Fortieth session"), off for other
    # embedders; 0 = off. Calibrate your own from the `relevance` field of `ragkit eval` samples.
    min_relevance: float | None = Field(default=None, ge=0.0, le=1.0)
    # after generation: when the answer's key fact (its numbers, names, code words) is in no source, or only in
    # a source sentence whose cosine similarity to the question is below this, answer with the abstention phrase
    # (the draft is kept in Answer.draft). None = the value measured for the bundled embedder (0.2 for
    # all-MiniLM-L6-v2, docs/benchmarks.md "Abstention dev set"), for other embedders only "in no source"; 0 = off.
    min_grounding: float | None = Field(default=None, ge=0.0, le=1.0)
    # after generation: when the model's own probability of the answer's key fact (geometric mean over its
    # tokens) is below this, it was guessing: answer with the abstention phrase (draft kept). None = the value
    # measured for the bundled generator (docs/benchmarks.md "Abstention dev set"), off for other models and
    # adapters; 0 = off. Needs a backend that reports token probabilities (transformers).
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # after generation: when the answer only repeats the question, or the source sentence holding its key fact
    # mentions less than this share of what the question asks (rarity-weighted words, e.g. a taxi price copied
    # from a sentence about hotels), answer with the abstention phrase (draft kept). None = the floor measured for
    # the generator (0.45 for Qwen2.5-Coder-1.5B, on the abstention dev set) or 0.25 for any other model
    # (docs/benchmarks.md); 0 = off.
    min_coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    support_threshold: float = Field(default=0.5, ge=0.0, le=1.0)  # share of a sentence's words its source holds
    strict: bool = False  # remove sentences flagged unsupported from the answer
    samples: int = Field(default=1, ge=1, le=32)  # self-consistency: answers drawn, majority returned
    sample_temperature: float = Field(default=0.7, gt=0.0)


class SecurityConfig(_Section):
    # deny by default: every read names a principal and sees only documents granted to it (docs/access-control.md)
    access_control: bool = False


class RuntimeConfig(_Section):
    # where ingest, reindex and eval run: "local" (this process) or "ray" (a Ray cluster: extra ragkit[ray], and a
    # PostgreSQL database every node reaches; README "Scale-out")
    backend: Literal["local", "ray"] = "local"
    address: str | None = None  # "auto", "HOST:6379", "ray://HOST:10001"; None = $RAY_ADDRESS, else a local cluster
    parse_actors: int | None = Field(default=None, ge=1)  # None = one per node
    embed_actors: int | None = Field(default=None, ge=1)  # None = one per GPU (a GPU each), else one per node
    write_actors: int = Field(default=1, ge=1)  # PostgreSQL writers (one transaction per document)
    index_shards: int | None = Field(default=None, ge=1)  # FAISS build shards; None = one per node
    eval_actors: int | None = Field(default=None, ge=1)  # eval question workers; None = one per node


class RagkitConfig(_Section):
    embedder: EmbedderConfig = EmbedderConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    ingest: IngestConfig = IngestConfig()
    index: IndexConfig = IndexConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    generator: GeneratorConfig = GeneratorConfig()
    security: SecurityConfig = SecurityConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    database_url: str | None = None  # None = SQLite file ragkit.db inside the KB directory


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _unflatten(overrides: dict[str, Any]) -> dict[str, Any]:
    """{"generator.max_new_tokens": 64} -> {"generator": {"max_new_tokens": 64}}."""
    out: dict[str, Any] = {}
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RagkitConfig:
    """Build the config from defaults, an optional TOML file and dotted-key overrides."""
    data: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}. Fix or delete the file.") from exc
    data = _deep_merge(data, _unflatten(overrides or {}))
    try:
        return RagkitConfig.model_validate(data)
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        if overrides and _file_is_valid(path):
            # a bad `--set` (or ragkit.open keyword) must not send the user to a file that is fine
            where = " in the settings given with this call (--set on the command line)" + (
                f", not in {path}" if path and path.exists() else ""
            )
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc


def _file_is_valid(path: Path | None) -> bool:
    """True when the TOML file (or no file) alone makes a valid config: a failure then came from the overrides."""
    try:
        load_config(path)
    except ConfigError:
        return False
    return True


def _problem(error: Any) -> str:
    """One pydantic error as 'retrieval.top_k: ...', or 'unknown key retrieval.topk (did you mean top_k?)'."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] != "extra_forbidden":
        return f"{'.'.join(loc)}: {error['msg']}"
    model: Any = RagkitConfig
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = None
            break
    near = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1) if model is not None else []
    return f"unknown key {'.'.join(loc)}" + (f" (did you mean {near[0]}?)" if near else "")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # a TOML basic string accepts JSON's escapes: newlines and control characters (a multi-line persona) too
    return json.dumps(str(value), ensure_ascii=False)


def dump_config(cfg: RagkitConfig) -> str:
    """Render the config as TOML (None values are left out, so they keep their defaults)."""
    lines: list[str] = []
    data = cfg.model_dump()
    for key, value in data.items():
        if not isinstance(value, dict) and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None)
    return "\n".join(lines).lstrip("\n") + "\n"
