"""KnowledgeBase: the facade the CLI, evals and users go through.

Heavy parts (embedder, FAISS, generator) load on first use, so `ragkit search` never loads the GPT and
opening a KB is cheap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragkit._version import __version__
from ragkit.config import RagkitConfig, dump_config, load_config
from ragkit.embedding import Embedder, SentenceTransformerEmbedder
from ragkit.errors import ConfigError, KnowledgeBaseError, RagkitError
from ragkit.generation import Generator
from ragkit.indexes.faiss_index import FaissIndex, resolve_spec
from ragkit.indexes.filters import FilterSpec
from ragkit.indexes.keyword import KeywordIndex, keyword_index
from ragkit.indexes.rerank import CrossEncoderReranker, Reranker
from ragkit.indexes.retriever import Retriever, SearchOptions
from ragkit.indexes.sql_store import SqlStore, check_same_database, make_engine
from ragkit.ingest import IngestSettings, ProgressFn, run_ingest
from ragkit.kbdir import AdapterInfo, KbPaths, WriterLock, list_adapters, read_manifest, resolve_adapter, write_manifest
from ragkit.types import Answer, Hit, IngestReport

if TYPE_CHECKING:
    from ragkit.evals.runner import EvalRun
    from ragkit.finetune import FinetuneOptions, FinetuneResult
    from ragkit.generation.answer import AnswerOptions


class KnowledgeBase:
    """A directory holding documents, chunks, vectors and config; see DESIGN.md §4."""

    def __init__(self, root: Path, config: RagkitConfig, manifest: dict[str, Any]) -> None:
        self.root = root
        self.paths = KbPaths(root)
        self.config = config
        self.manifest = manifest
        url = config.database_url or f"sqlite:///{self.paths.database}"
        self.store = SqlStore(make_engine(url))
        self._embedder: Embedder | None = None
        self._generator: Generator | None = None
        self._index: FaissIndex | None = None
        self._keyword: KeywordIndex | None = None
        self._keyword_error: Exception | None = None
        self._reranker: Reranker | None = None
        # Components load on first use; threads sharing one KB (eval --workers, a server) must not load a
        # model twice at once: transformers' lazy init then hands one thread a half-built (meta) model.
        self._load_lock = threading.RLock()
        try:  # created eagerly: its triggers must exist before any chunk is written
            self._keyword = keyword_index(self.store.engine)
        except RagkitError as exc:  # no FTS5 in this SQLite, or another database: only keyword search fails
            self._keyword_error = exc

    # -- components -------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._load_lock:
                return self._load_embedder()
        return self._embedder

    def _load_embedder(self) -> Embedder:
        if self._embedder is None:
            cfg = self.config.embedder
            emb = SentenceTransformerEmbedder(cfg.model, device=cfg.device, batch_size=cfg.batch_size)
            want = self.manifest.get("embedder", {})
            if want and (want.get("dim") != emb.dim or want.get("name") != emb.name):
                raise KnowledgeBaseError(
                    f"{self.root} was built with embedder {want.get('name')!r} ({want.get('dim')}-d) but "
                    f"{emb.name!r} ({emb.dim}-d) was requested; use the KB's embedder or ingest into a new --kb"
                )
            if self.config.chunking.max_tokens > emb.max_tokens:
                raise ConfigError(
                    f"chunking.max_tokens ({self.config.chunking.max_tokens}) exceeds the embedder's window "
                    f"({emb.max_tokens} tokens); text past it would never be embedded. Lower it."
                )
            self._embedder = emb
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            with self._load_lock:
                return self._load_generator()
        return self._generator

    def _load_generator(self) -> Generator:
        if self._generator is None:
            from ragkit.generation import build_generator

            cfg = self.config.generator
            self._generator = build_generator(
                cfg.backend,
                cfg.model,
                url=cfg.url,
                device=cfg.device,
                context_window=cfg.context_window,
                threads=cfg.threads,
                api_key_env=cfg.api_key_env,
                timeout_s=cfg.timeout_s,
                adapter=self._adapter_dir(),
            )
        return self._generator

    def _check_generator(self) -> None:
        """Raise what loading the generator would raise for a missing local model or adapter, without loading it."""
        cfg = self.config.generator
        if cfg.backend in ("transformers", "llamacpp"):
            from ragkit.assets import resolve_generator

            resolve_generator(cfg.model)
        self._adapter_dir()

    def _adapter_dir(self) -> str | None:
        """generator.adapter as a folder: a name made by `ragkit finetune` (kb/models/NAME) or a path."""
        if not self.config.generator.adapter:
            return None
        return str(resolve_adapter(self.root, self.config.generator.adapter, self.config.generator.model))

    @property
    def index(self) -> FaissIndex:
        if self._index is None:
            with self._load_lock:
                return self._load_index()
        return self._index

    def _load_index(self) -> FaissIndex:
        if self._index is None:
            dim = int(self.manifest["embedder"]["dim"])
            cfg = self.config.index
            if self.paths.index.exists():
                index = FaissIndex.load(self.paths.index, device=cfg.device)
            else:
                spec = resolve_spec(cfg.spec, len(self.store.chunk_ids()))
                index = FaissIndex.create(dim, spec, device=cfg.device)
                self.manifest = {**self.manifest, "index": {"spec": cfg.spec, "resolved": spec}}
            self._repair(index)
            self._index = index
        return self._index

    @property
    def keyword(self) -> KeywordIndex:
        if self._keyword is None:
            assert self._keyword_error is not None
            raise self._keyword_error
        return self._keyword

    @property
    def reranker(self) -> Reranker | None:
        """The configured cross-encoder (retrieval.reranker), loaded on first use; None when not configured."""
        path = self.config.retrieval.reranker
        if path and self._reranker is None:
            with self._load_lock:
                if self._reranker is None:
                    self._reranker = CrossEncoderReranker(path, device=self.config.embedder.device)
        return self._reranker

    def _repair(self, index: FaissIndex) -> int:
        """Make FAISS agree with SQL (the truth) without re-embedding. Returns the number of fixes."""
        sql_ids = self.store.chunk_ids()
        faiss_ids = index.ids()
        extra = np.setdiff1d(faiss_ids, sql_ids)
        missing = np.setdiff1d(sql_ids, faiss_ids)
        index.remove(extra)
        for ids, vectors in self.store.vectors(missing, index.dim):
            index.add(ids, vectors)
        return int(len(extra) + len(missing))

    # -- ingest -----------------------------------------------------------------------------------

    def ingest(
        self,
        sources: Sequence[str | Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        progress: ProgressFn | None = None,
        meta: dict[str, str] | None = None,
    ) -> IngestReport:
        """Parse, chunk, embed and index files and folders. Unchanged files are skipped.

        include/exclude: glob patterns on paths relative to each folder. prune: delete stored documents that
        the given folders no longer hold. meta: {key: value} stamped on each document written in this run,
        for filters such as tenant=acme (unchanged documents keep theirs). A file that cannot be read or parsed
        is reported in the result and the rest go on. Ctrl-C stops after the current batch; what was committed
        stays, and the next run finishes the job.
        """
        with WriterLock(self.paths):
            cfg = self.config
            settings = IngestSettings(
                max_tokens=cfg.chunking.max_tokens,
                overlap=cfg.chunking.overlap,
                max_file_bytes=int(cfg.ingest.max_file_mb * 1e6),
                parser=cfg.ingest.parser,
                json_field=cfg.ingest.json_text_field,
                url_timeout_s=cfg.ingest.url_timeout_s,
                batch_chunks=cfg.ingest.batch_chunks,
                meta=tuple(sorted((meta or {}).items())),
                parse_workers=cfg.ingest.parse_workers,
            )
            try:
                report = run_ingest(
                    sources,
                    store=self.store,
                    index=self.index,
                    embedder=lambda: self.embedder,
                    settings=settings,
                    save_index=lambda: self.index.save(self.paths.index),
                    include=include,
                    exclude=exclude,
                    prune=prune,
                    progress=progress,
                )
                self._maybe_upgrade_index()
                return report
            finally:
                self._write_manifest()

    def _maybe_upgrade_index(self) -> None:
        """With index.spec = auto, rebuild once the corpus crosses into the next size class (Flat -> IVF)."""
        if self.config.index.spec.strip().lower() != "auto":
            return
        want = resolve_spec("auto", len(self.index))
        if want != self.manifest.get("index", {}).get("resolved", "Flat"):
            self._rebuild_index("auto")

    def _rebuild_index(self, spec: str) -> dict[str, Any]:
        """Build a new FAISS index from the vectors in SQL (no re-embedding); the caller holds the writer lock."""
        t0 = time.perf_counter()
        dim = int(self.manifest["embedder"]["dim"])
        ids = self.store.chunk_ids()
        resolved = resolve_spec(spec, len(ids))
        index = FaissIndex.create(dim, resolved, device=self.config.index.device)
        trained_on = 0
        if not index.is_trained and len(ids) >= index.train_size():
            # train on a uniform sample of the whole corpus, not on whichever files came first
            n_train = min(len(ids), max(index.train_size(), 100_000))
            sample = np.random.default_rng(0).choice(ids, n_train, replace=False)
            index.train(np.concatenate([v for _, v in self.store.vectors(sample, dim)]))
            trained_on = n_train
        for batch_ids, vectors in self.store.vectors(ids, dim):
            index.add(batch_ids, vectors)
        index.save(self.paths.index)
        self._index = index
        self.manifest = {**self.manifest, "index": {"spec": spec, "resolved": resolved}}
        self._write_manifest()
        return {
            "spec": spec,
            "resolved": resolved,
            "index": index.description,
            "vectors": len(index),
            "trained_on": trained_on,
            "seconds": round(time.perf_counter() - t0, 3),
        }

    def reindex(self, spec: str | None = None) -> dict[str, Any]:
        """Rebuild the FAISS index from the vectors stored in SQL, e.g. to switch index type. No re-embedding.

        spec: a FAISS factory spec or "auto" (default: the configured one); a new spec is saved in ragkit.toml.
        Returns what was built: spec, resolved spec, vectors, training sample size and seconds.
        """
        with WriterLock(self.paths):
            if spec and spec != self.config.index.spec:
                FaissIndex.create(int(self.manifest["embedder"]["dim"]), resolve_spec(spec, 0), device="cpu")
                self.config = self.config.model_copy(
                    update={"index": self.config.index.model_copy(update={"spec": spec})}
                )
                self.paths.config.write_text(dump_config(self.config), encoding="utf-8")
            return self._rebuild_index(spec or self.config.index.spec)

    def check(self, repair: bool = True) -> dict[str, Any]:
        """Verify that FAISS and the keyword index agree with SQL (the truth); repair them when asked.

        Returns counts of SQL chunks and FAISS vectors, the ids missing from / extra in FAISS, duplicate ids,
        whether the keyword index is intact, and whether everything is consistent now.
        """
        dim = int(self.manifest["embedder"]["dim"])
        sql_ids = self.store.chunk_ids()
        if self.paths.index.exists():
            on_disk = FaissIndex.load(self.paths.index, device="cpu")
        else:
            on_disk = FaissIndex.create(dim, resolve_spec(self.config.index.spec, len(sql_ids)), device="cpu")
        faiss_ids = on_disk.ids()
        waiting = 0
        if not on_disk.is_trained:  # an untrained IVF/PQ index keeps vectors in SQL until there are enough to train
            waiting = int(len(np.setdiff1d(sql_ids, faiss_ids)))
            faiss_ids = np.concatenate([faiss_ids, np.setdiff1d(sql_ids, faiss_ids)])
        unique_ids = np.unique(faiss_ids)
        report: dict[str, Any] = {
            "waiting_for_training": waiting,
            "sql_chunks": int(len(sql_ids)),
            "faiss_vectors": int(len(faiss_ids) - waiting),
            "missing_from_faiss": int(len(np.setdiff1d(sql_ids, unique_ids))),
            "extra_in_faiss": int(len(np.setdiff1d(unique_ids, sql_ids))),
            "duplicate_ids": int(len(faiss_ids) - len(unique_ids)),
            "keyword_index_ok": self._keyword is None or self._keyword.check(),
            "index": on_disk.description,
        }
        consistent = (
            report["missing_from_faiss"] == report["extra_in_faiss"] == report["duplicate_ids"] == 0
            and report["keyword_index_ok"]
        )
        report["repaired"] = False
        if not consistent and repair:
            with WriterLock(self.paths):
                if report["duplicate_ids"]:
                    self._rebuild_index(self.config.index.spec)
                else:
                    self._repair(on_disk)
                    on_disk.save(self.paths.index)
                    self._index = on_disk
                if self._keyword is not None and not report["keyword_index_ok"]:
                    self._keyword.rebuild()
            report["repaired"] = True
        report["ok"] = consistent or report["repaired"]
        return report

    def delete(self, targets: Sequence[str | Path]) -> int:
        """Delete documents by path (a file, or every document under a folder) or uri glob. Returns how many."""
        uris = list(self.store.document_states())
        chosen: list[str] = []
        for target in targets:
            resolved = str(Path(target).expanduser().resolve())
            chosen += [
                u for u in uris if u == resolved or u.startswith(resolved.rstrip("/") + "/") or fnmatch(u, str(target))
            ]
        chosen = list(dict.fromkeys(chosen))
        if not chosen:
            return 0
        with WriterLock(self.paths):
            self.index.remove(np.asarray(self.store.delete_documents(chosen), dtype=np.int64))
            self.index.save(self.paths.index)
            self._write_manifest()
        return len(chosen)

    def _write_manifest(self) -> None:
        self.manifest = {**self.manifest, "counts": self.store.counts(), "ragkit_version": __version__}
        write_manifest(self.paths, self.manifest)

    # -- query ------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        filters: FilterSpec = None,
        mode: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: bool = True,
        mmr: float | None = None,
    ) -> list[Hit]:
        """The k best chunks for the query, best first. See search_batch for the options."""
        return self.search_batch(
            [query], k, filters=filters, mode=mode, nprobe=nprobe, ef_search=ef_search, rerank=rerank, mmr=mmr
        )[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int | None = None,
        *,
        filters: FilterSpec = None,
        mode: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: bool = True,
        mmr: float | None = None,
    ) -> list[list[Hit]]:
        """Hits for each query: (nq,) queries -> nq ranked lists of at most k hits.

        filters: 'FIELD OP VALUE' strings or a {field: value} mapping (ragkit/indexes/filters.py), applied
        inside the search, so k hits come back whenever k chunks match. mode: hybrid (default), dense or
        keyword. nprobe / ef_search: IVF / HNSW speed-recall knobs for this call. rerank: use the configured
        cross-encoder. mmr: MMR lambda in [0, 1] for diverse hits (None = config).
        """
        cfg = self.config.retrieval
        k = k or cfg.top_k
        if not any(q.strip() for q in queries):
            raise KnowledgeBaseError("the query is empty; ask something")
        if len(self.index) == 0:
            raise KnowledgeBaseError(f"{self.root} holds no chunks yet; run: ragkit ingest PATH --kb {self.root}")
        options = SearchOptions(
            k=k,
            mode=mode or cfg.mode,
            filters=filters,
            candidates=cfg.candidates,
            rrf_k=cfg.rrf_k,
            dense_weight=cfg.dense_weight,
            keyword_weight=cfg.keyword_weight,
            nprobe=nprobe or cfg.nprobe,
            ef_search=ef_search or cfg.ef_search,
            rerank=rerank,
            rerank_depth=cfg.rerank_depth,
            mmr_lambda=cfg.mmr_lambda if mmr is None else mmr,
        )
        retriever = Retriever(
            self.store, self.index, lambda: self.embedder, lambda: self.keyword, lambda: self.reranker
        )
        return retriever.search_batch(list(queries), options)

    def ask(
        self,
        question: str,
        k: int | None = None,
        max_new_tokens: int | None = None,
        *,
        strict: bool | None = None,
        samples: int | None = None,
        schema: dict[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
        filters: FilterSpec = None,
        mode: str | None = None,
        min_relevance: float | None = None,
    ) -> Answer:
        """Retrieve, pack under the token budget, generate, and verify the answer's citations.

        filters / mode: as for search (only chunks passing the filters can be sources).
        strict: drop sentences no source supports. samples: draw N answers and return the majority one with
        its agreement. schema: a JSON Schema the answer must satisfy (constrained decoding). on_text: called
        with each piece of text as the model writes it (streaming). min_relevance: abstain without generating
        when no hit's cosine similarity to the question reaches it (0 = off). None = the config's value.
        """
        options = self.answer_options(
            max_new_tokens=max_new_tokens, strict=strict, samples=samples, schema=schema, min_relevance=min_relevance
        )
        if schema is not None:
            from ragkit.generation.constrained import check_schema

            check_schema(schema)
        t0 = time.perf_counter()
        hits = self.search(question, k, filters=filters, mode=mode)
        return self.answer(question, hits, options, on_text=on_text, retrieve_s=time.perf_counter() - t0)

    def answer_options(self, **overrides: Any) -> AnswerOptions:
        """The generator config as AnswerOptions, min_relevance resolved for this KB's embedder.

        None-valued overrides keep the config's value.
        """
        from ragkit.embedding import default_min_relevance
        from ragkit.generation.answer import options_from_config

        cfg = self.config.generator
        if overrides.get("min_relevance") is None and cfg.min_relevance is None:
            overrides["min_relevance"] = default_min_relevance(self.config.embedder.model)
        return options_from_config(cfg, **overrides)

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        options: AnswerOptions,
        *,
        on_text: Callable[[str], None] | None = None,
        retrieve_s: float = 0.0,
    ) -> Answer:
        """Answer from hits already retrieved (best first) with this KB's generator; see `ask`."""
        from ragkit.generation.answer import answer_question, relevance_gate, relevance_of

        relevance = relevance_of(hits)
        if relevance is None and hits:
            # keyword-only hits carry no cosine; measure it (one small embedding call) so that the floor can
            # apply and every answer reports its relevance
            vecs = self.embedder.embed([question, *(h.chunk.text for h in hits)])
            relevance = float((vecs[1:] @ vecs[0]).max())
        gated = relevance_gate(question, hits, relevance, options, retrieve_s=retrieve_s)
        if gated is not None:
            self._check_generator()  # the GPT is not even loaded, but a mistyped --model must still be an error
            return gated
        return answer_question(
            question, hits, self.generator, options, on_text=on_text, retrieve_s=retrieve_s, relevance=relevance
        )

    def stats(self) -> dict[str, Any]:
        """Counts, models and failures recorded in the KB."""
        return {
            "kb": str(self.root),
            **self.store.counts(),
            "flagged_chunks": self._count_flagged(),
            "embedder": self.manifest.get("embedder"),
            "generator": self.config.generator.model,
            "index": self.config.index.spec,
            "index_resolved": self.manifest.get("index", {}).get("resolved"),
            "database": self.store.url,  # password hidden
            "failures": [{"uri": u, "reason": r} for u, r in self.store.failures()],
        }

    def _count_flagged(self) -> int:
        """Chunks ingest flagged as holding instruction-like text (kind SuspectedInjection)."""
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session

        from ragkit.indexes.filters import compile_filters
        from ragkit.prompts import SUSPECTED_INJECTION

        ids = compile_filters(f"kind={SUSPECTED_INJECTION}")
        with Session(self.store.engine) as s:
            return int(s.scalar(select(func.count()).select_from(ids.subquery())) or 0)  # type: ignore[union-attr]

    def close(self) -> None:
        self.store.engine.dispose()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(
        self,
        dataset: str | Path | Any,
        *,
        name: str | None = None,
        limit: int | None = None,
        workers: int = 1,
        judge: str = "minilm-lexical",
        progress: Any = None,
        resume: bool = True,
        **options: Any,
    ) -> EvalRun:
        """Run an evaluation dataset through this KB; writes runs/<timestamp>-<name>/ and returns the EvalRun.

        dataset: a ragkit .jsonl, a SQuAD .json, a BEIR folder, "halueval-qa[:N]" or a loaded Dataset.
        resume: continue an interrupted run of the same name and settings (False starts afresh). options go to
        EvalOptions (k, retrieval_k, max_new_tokens, generate). See ragkit.evals.runner.run_eval.
        """
        from ragkit.evals.runner import EvalOptions, run_eval

        opts = EvalOptions(judge=judge, **options)
        return run_eval(
            self, dataset, name=name, limit=limit, workers=workers, options=opts, progress=progress, resume=resume
        )

    def finetune(
        self,
        options: FinetuneOptions | None = None,
        *,
        train_file: str | Path | None = None,
        progress: Any = None,
        overwrite: bool = False,
    ) -> FinetuneResult:
        """LoRA-tune this KB's local GPT and save the adapter as kb/models/NAME/; see ragkit.finetune."""
        from ragkit.finetune import FinetuneOptions, finetune

        return finetune(self, options or FinetuneOptions(), train_file=train_file, progress=progress, overwrite=overwrite)

    def adapters(self) -> list[AdapterInfo]:
        """The fine-tuned adapters in kb/models/, oldest first."""
        return list_adapters(self.root)

    def with_adapter(self, name: str | None) -> KnowledgeBase:
        """The same KB answering with a fine-tuned adapter (a name under kb/models/ or a folder; None = the base
        model). Shares nothing mutable with this one; close it when done."""
        gen_cfg = self.config.generator.model_copy(update={"adapter": name})
        return KnowledgeBase(self.root, self.config.model_copy(update={"generator": gen_cfg}), self.manifest)


def open_kb(path: str | Path, *, create: bool = True, overrides: dict[str, Any] | None = None) -> KnowledgeBase:
    """Open the knowledge base at `path`, creating it with defaults (plus overrides) if missing.

    overrides take dotted keys, e.g. {"generator.max_new_tokens": 64}. A new KB records its resolved config in
    ragkit.toml and its embedder's name and dimension in manifest.json.
    """
    root = Path(path).expanduser().resolve()
    paths = KbPaths(root)
    if paths.exists():
        manifest = read_manifest(paths)
        config = load_config(paths.config, overrides)
        check_same_database(root, load_config(paths.config).database_url, config.database_url)
        kb = KnowledgeBase(root, config, manifest)
        return kb
    if not create:
        raise KnowledgeBaseError(f"no knowledge base at {path}; create one with: ragkit ingest PATH --kb {path}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise KnowledgeBaseError(f"{path} exists and is not a ragkit knowledge base; choose another --kb directory")
    config = load_config(None, overrides)
    root.mkdir(parents=True, exist_ok=True)
    kb = KnowledgeBase(root, config, {})
    emb = kb.embedder  # loads the model once, so the manifest records the real dimension
    paths.config.write_text(dump_config(config), encoding="utf-8")
    kb.manifest = {
        "embedder": {"name": emb.name, "dim": emb.dim, "max_tokens": emb.max_tokens},
        "index": {"spec": config.index.spec},
        "chunking": config.chunking.model_dump(),
        "counts": {"documents": 0, "chunks": 0, "failed_documents": 0},
        "ragkit_version": __version__,
    }
    write_manifest(paths, kb.manifest)
    return kb
