"""KnowledgeBase: the facade the CLI, evals and users go through.

Heavy parts (embedder, FAISS, generator) load on first use, so `ragkit search` never loads the GPT and
opening a KB is cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

from ragkit import __version__
from ragkit.config import RagkitConfig, dump_config, load_config
from ragkit.embedding import Embedder, SentenceTransformerEmbedder
from ragkit.errors import ConfigError, KnowledgeBaseError
from ragkit.generation import Generator
from ragkit.indexes.faiss_index import FaissIndex
from ragkit.indexes.sql_store import SqlStore, check_same_database, make_engine
from ragkit.ingest import IngestSettings, ProgressFn, run_ingest
from ragkit.kbdir import KbPaths, WriterLock, read_manifest, write_manifest
from ragkit.types import Answer, Hit, IngestReport


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

    # -- components -------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
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
            )
        return self._generator

    @property
    def index(self) -> FaissIndex:
        if self._index is None:
            dim = int(self.manifest["embedder"]["dim"])
            cfg = self.config.index
            if self.paths.index.exists():
                index = FaissIndex.load(self.paths.index, device=cfg.device)
            else:
                index = FaissIndex.create(dim, cfg.spec, device=cfg.device)
            self._repair(index)
            self._index = index
        return self._index

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
    ) -> IngestReport:
        """Parse, chunk, embed and index files and folders. Unchanged files are skipped.

        include/exclude: glob patterns on paths relative to each folder. prune: delete stored documents that
        the given folders no longer hold. A file that cannot be read or parsed is reported in the result and
        the rest go on. Ctrl-C stops after the current batch; what was committed stays, and the next run
        finishes the job.
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
            )
            try:
                return run_ingest(
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
            finally:
                self._write_manifest()

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

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k chunks nearest to the query, best first (cosine similarity)."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int | None = None) -> list[list[Hit]]:
        """Hits for each query: (nq,) queries -> nq ranked lists of at most k hits."""
        k = k or self.config.retrieval.top_k
        if not any(q.strip() for q in queries):
            raise KnowledgeBaseError("the query is empty; ask something")
        if len(self.index) == 0:
            raise KnowledgeBaseError(f"{self.root} holds no chunks yet; run: ragkit ingest PATH --kb {self.root}")
        q = self.embedder.embed(list(queries))  # (nq, dim)
        scores, ids = self.index.search(q, k)  # (nq, k), (nq, k); id -1 = empty slot
        by_id = self.store.chunks(np.unique(ids[ids >= 0]).tolist())
        results: list[list[Hit]] = []
        for srow, irow in zip(scores, ids, strict=True):
            hits = [by_id[int(i)] for i in irow if i >= 0 and int(i) in by_id]
            score_of = {int(i): float(s) for s, i in zip(srow, irow, strict=True)}
            results.append([Hit(c, score_of[c.id], rank) for rank, c in enumerate(hits, start=1)])
        return results

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
    ) -> Answer:
        """Retrieve, pack under the token budget, generate, and verify the answer's citations.

        strict: drop sentences no source supports. samples: draw N answers and return the majority one with
        its agreement. schema: a JSON Schema the answer must satisfy (constrained decoding). on_text: called
        with each piece of text as the model writes it (streaming). None = the generator config's value.
        """
        from ragkit.generation.answer import answer_question, options_from_config

        options = options_from_config(
            self.config.generator, max_new_tokens=max_new_tokens, strict=strict, samples=samples, schema=schema
        )
        if schema is not None:
            from ragkit.generation.constrained import check_schema

            check_schema(schema)
        t0 = time.perf_counter()
        hits = self.search(question, k)
        t_retrieve = time.perf_counter() - t0
        return answer_question(question, hits, self.generator, options, on_text=on_text, retrieve_s=t_retrieve)

    def stats(self) -> dict[str, Any]:
        """Counts, models and failures recorded in the KB."""
        return {
            "kb": str(self.root),
            **self.store.counts(),
            "embedder": self.manifest.get("embedder"),
            "generator": self.config.generator.model,
            "index": self.config.index.spec,
            "database": self.store.url,  # password hidden
            "failures": [{"uri": u, "reason": r} for u, r in self.store.failures()],
        }

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
        **options: Any,
    ) -> Any:
        """Run an evaluation dataset through this KB; writes runs/<timestamp>-<name>/ and returns the EvalRun.

        dataset: a ragkit .jsonl, a SQuAD .json, a BEIR folder, "halueval-qa[:N]" or a loaded Dataset. An
        interrupted run of the same name and settings is continued. options go to EvalOptions (k,
        retrieval_k, max_new_tokens, generate). See ragkit.evals.runner.run_eval.
        """
        from ragkit.evals.runner import EvalOptions, run_eval

        opts = EvalOptions(judge=judge, **options)
        return run_eval(self, dataset, name=name, limit=limit, workers=workers, options=opts, progress=progress)


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
