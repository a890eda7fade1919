"""The one reader of `RagkitConfig`: it builds the components and the per-call options a KB runs with.

Every other module takes what it needs as arguments (an embedder, a SearchOptions, an IngestSettings), so a
config key is read in exactly one place and options cannot drift from the config they come from
(tests/test_build.py checks that each options type's defaults equal the config's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragkit.access import AclDeclaration, AclRules, grant_tokens, load_acl_rules
from ragkit.answering import (
    AnswerOptions,
    default_min_coverage,
    default_min_grounding,
    default_min_relevance,
    options_from_config,
)
from ragkit.config import RagkitConfig, RetrievalConfig
from ragkit.errors import ConfigError, KnowledgeBaseError, UsageError
from ragkit.indexes.filters import FilterSpec
from ragkit.indexes.index_build import Fill
from ragkit.indexes.retriever import SearchOptions
from ragkit.ingest_settings import IngestSettings
from ragkit.kbdir import KbPaths, adapter_base_model, is_adapter_name, resolve_adapter
from ragkit.protocols import Embedder, Generator, Reranker
from ragkit.runtime import RuntimeSettings

# -- options ------------------------------------------------------------------------------------------


def search_options(
    cfg: RetrievalConfig,
    *,
    k: int | None = None,
    filters: FilterSpec = None,
    mode: str | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
    rerank: bool = True,
    mmr: float | None = None,
) -> SearchOptions:
    """One query's SearchOptions: the retrieval config, with this call's overrides (None keeps the config's)."""
    if k is not None and k < 1:  # `k or top_k` would read 0 as "the default"
        raise UsageError(f"k must be at least 1, got {k}")
    return SearchOptions(
        k=k or cfg.top_k,
        mode=mode or cfg.mode,
        filters=filters,
        candidates=cfg.candidates,
        rrf_k=cfg.rrf_k,
        fusion=cfg.fusion,
        dense_weight=cfg.dense_weight,
        keyword_weight=cfg.keyword_weight,
        nprobe=nprobe or cfg.nprobe,
        ef_search=ef_search or cfg.ef_search,
        rerank=rerank,
        rerank_depth=cfg.rerank_depth,
        rescore=cfg.rescore,
        mmr_lambda=cfg.mmr_lambda if mmr is None else mmr,
        named_first=cfg.named_documents,
        dense_rerank=cfg.dense_rerank,
    )


def answer_options(cfg: RagkitConfig, **overrides: Any) -> AnswerOptions:
    """The generator config as AnswerOptions, min_relevance resolved for the KB's embedder and generator.

    None-valued overrides keep the config's value.
    """
    if overrides.get("min_relevance") is None and cfg.generator.min_relevance is None:
        overrides["min_relevance"] = default_min_relevance(cfg.embedder.model, cfg.generator.model)
    if overrides.get("min_grounding") is None and cfg.generator.min_grounding is None:
        overrides["min_grounding"] = default_min_grounding(cfg.embedder.model)
    return options_from_config(cfg.generator, **overrides)


def fallback_options(cfg: RagkitConfig, options: AnswerOptions) -> AnswerOptions:
    """`options` for generator.fallback: its own measured coverage floor where the config leaves the floor to
    the generator and the call kept the first model's (an explicit min_coverage holds for both)."""
    g = cfg.generator
    if g.fallback and g.min_coverage is None and options.min_coverage == default_min_coverage(g.model):
        return replace(options, min_coverage=default_min_coverage(g.fallback))
    return options


def with_schema(options: AnswerOptions, schema: dict[str, Any] | None) -> AnswerOptions:
    """The options answering in JSON valid under `schema` (checked first: a bad schema is a ConfigError)."""
    if schema is None:
        return options
    from ragkit.generation.constrained import check_schema

    check_schema(schema)
    return replace(options, schema=schema)


def ingest_settings(
    cfg: RagkitConfig,
    meta: dict[str, str] | None = None,
    allow: Sequence[str] = (),
    acl_rules: str | Path | None = None,
) -> IngestSettings:
    """What one ingest run needs from the config, plus the run's own metadata and grants (ragkit.access)."""
    rules = load_acl_rules(acl_rules) if acl_rules else AclRules()
    return IngestSettings(
        acl=AclDeclaration(grant_tokens(allow), rules),
        max_tokens=cfg.chunking.max_tokens,
        overlap=cfg.chunking.overlap,
        max_file_bytes=int(cfg.ingest.max_file_mb * 1e6),
        parser=cfg.ingest.parser,
        json_field=cfg.ingest.json_text_field,
        url_timeout_s=cfg.ingest.url_timeout_s,
        batch_chunks=cfg.ingest.batch_chunks,
        meta=tuple(sorted((meta or {}).items())),
        parse_workers=cfg.ingest.parse_workers,
        runtime=runtime_settings(cfg),
    )


def runtime_settings(cfg: RagkitConfig) -> RuntimeSettings:
    """Where runs execute ([runtime]) and the embedder a Ray embed actor loads."""
    r, e = cfg.runtime, cfg.embedder
    return RuntimeSettings(
        backend=r.backend,
        address=r.address,
        parse_actors=r.parse_actors,
        embed_actors=r.embed_actors,
        write_actors=r.write_actors,
        index_shards=r.index_shards,
        eval_actors=r.eval_actors,
        embedder_model=e.model,
        embedder_device=e.device,
        embedder_batch_size=e.batch_size,
    )


def with_runtime(cfg: RagkitConfig, backend: str, address: str | None = None) -> RagkitConfig:
    """The config running on `backend` ("local" or "ray", at `address`), e.g. for `--ray [ADDRESS]`."""
    runtime = cfg.runtime.model_copy(update={"backend": backend, "address": address or cfg.runtime.address})
    return cfg.model_copy(update={"runtime": runtime})


def index_fill(cfg: RagkitConfig) -> Fill | None:
    """How a FAISS rebuild fills its trained index: None (in this process) or in shards on a Ray cluster."""
    if cfg.runtime.backend != "ray":
        return None
    from ragkit.distributed.index import ray_fill

    return ray_fill(runtime_settings(cfg))


def database_url(cfg: RagkitConfig, paths: KbPaths) -> str:
    """The KB's database: config.database_url, or ragkit.db inside the KB folder."""
    return cfg.database_url or f"sqlite:///{paths.database}"


def generator_overrides(
    kb_root: Path, generator: str | None, model: str | None, fallback: str | None = None
) -> dict[str, Any]:
    """Config overrides for `ask --generator SPEC --model NAME --fallback SPEC`.

    generator: "openai:URL" (an HTTP server), "llamacpp:PATH" (a .gguf run by llama.cpp), or a bundled name or
    transformers folder. model: an adapter made by `ragkit finetune` (kb/models/NAME), run on the base it was
    trained on unless --generator says otherwise; otherwise a model name (the HTTP server's, say). fallback:
    generator.fallback ("none": no second model).
    """
    overrides: dict[str, Any] = {}
    if fallback:
        overrides["generator.fallback"] = None if fallback.lower() in ("none", "off") else fallback
    if generator and generator.startswith("openai:"):
        overrides |= {"generator.backend": "openai", "generator.url": generator.removeprefix("openai:")}
    elif generator and generator.startswith("llamacpp:"):
        overrides |= {"generator.backend": "llamacpp", "generator.model": generator.removeprefix("llamacpp:")}
    elif generator:
        overrides |= {"generator.backend": "transformers", "generator.model": generator}
    if model and overrides.get("generator.backend") != "openai" and is_adapter_name(kb_root, model):
        overrides["generator.adapter"] = model
        trained_on = None if generator else adapter_base_model(kb_root, model)
        if trained_on:
            overrides |= {"generator.backend": "transformers", "generator.model": trained_on}
    elif model:
        overrides["generator.model"] = model
    return overrides


# -- components ---------------------------------------------------------------------------------------


def embedder_from(cfg: RagkitConfig, manifest: dict[str, Any], root: Path) -> Embedder:
    """Load the configured embedder and check it against the one the KB was built with."""
    from ragkit.embedding import SentenceTransformerEmbedder

    ecfg = cfg.embedder
    emb = SentenceTransformerEmbedder(ecfg.model, device=ecfg.device, batch_size=ecfg.batch_size)
    want = manifest.get("embedder", {})
    if want and (want.get("dim") != emb.dim or want.get("name") != emb.name):
        raise KnowledgeBaseError(
            f"{root} was built with embedder {want.get('name')!r} ({want.get('dim')}-d) but "
            f"{emb.name!r} ({emb.dim}-d) was requested; use the KB's embedder or ingest into a new --kb"
        )
    if cfg.chunking.max_tokens > emb.max_tokens:
        raise ConfigError(
            f"chunking.max_tokens ({cfg.chunking.max_tokens}) exceeds the embedder's window "
            f"({emb.max_tokens} tokens); text past it would never be embedded. Lower it."
        )
    return emb


def adapter_dir(cfg: RagkitConfig, root: Path) -> str | None:
    """generator.adapter as a folder: a name made by `ragkit finetune` (kb/models/NAME) or a path."""
    if not cfg.generator.adapter:
        return None
    return str(resolve_adapter(root, cfg.generator.adapter, cfg.generator.model))


def generator_from(cfg: RagkitConfig, root: Path) -> Generator:
    """Load the configured generator (with its adapter, if any)."""
    return _generator(cfg, cfg.generator.model, adapter_dir(cfg, root))


def fallback_from(cfg: RagkitConfig) -> Generator | None:
    """Load generator.fallback (same backend and settings as the first model, no adapter); None when unset or
    when it names the first model itself."""
    g = cfg.generator
    if not g.fallback or (g.fallback == g.model and not g.adapter):
        return None
    return _generator(cfg, g.fallback, None)


def _generator(cfg: RagkitConfig, model: str, adapter: str | None) -> Generator:
    """`model` (with `adapter`) under the generator section's backend and settings."""
    from ragkit.generation import build_generator

    g = cfg.generator
    return build_generator(
        g.backend,
        model,
        url=g.url,
        device=g.device,
        dtype=g.dtype,
        context_window=g.context_window,
        threads=g.threads,
        api_key_env=g.api_key_env,
        timeout_s=g.timeout_s,
        adapter=adapter,
    )


def check_generator(cfg: RagkitConfig, root: Path) -> None:
    """Raise what loading the generator would raise for a missing local model, fallback or adapter, without
    loading it."""
    if cfg.generator.backend in ("transformers", "llamacpp"):
        from ragkit.assets import resolve_generator

        resolve_generator(cfg.generator.model)
        if cfg.generator.fallback:
            resolve_generator(cfg.generator.fallback)
    adapter_dir(cfg, root)


def reranker_from(cfg: RagkitConfig) -> Reranker | None:
    """The configured cross-encoder (retrieval.reranker); None when none is configured."""
    if not cfg.retrieval.reranker:
        return None
    from ragkit.indexes.rerank import CrossEncoderReranker

    return CrossEncoderReranker(cfg.retrieval.reranker, device=cfg.embedder.device)
