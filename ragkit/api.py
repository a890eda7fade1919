"""KnowledgeBase: the facade the CLI, evals and users go through.

Heavy parts (embedder, FAISS, generator) load on first use, so `ragkit search` never loads the GPT and
opening a KB is cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragkit import __version__
from ragkit.chunking import chunk_document
from ragkit.citations import check_answer, should_stop
from ragkit.config import RagkitConfig, dump_config, load_config
from ragkit.connectors.files import content_hash, discover_files, parse_file
from ragkit.embedding import Embedder, SentenceTransformerEmbedder
from ragkit.errors import ConfigError, KnowledgeBaseError, ParseError
from ragkit.generation import Generator
from ragkit.indexes.faiss_index import FaissIndex
from ragkit.indexes.sql_store import SqlStore, make_engine
from ragkit.kbdir import KbPaths, WriterLock, read_manifest, write_manifest
from ragkit.prompts import pack
from ragkit.types import Answer, FileFailure, Hit, IngestReport

ProgressFn = Callable[[int, int, str], None]  # (files done, files total, current file)

_SAVE_EVERY_S = 30.0  # bound the FAISS work a crash can lose (it is rebuilt from SQL on open anyway)


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
            from ragkit.generation.hf import TransformersGenerator

            cfg = self.config.generator
            self._generator = TransformersGenerator(
                cfg.model, device=cfg.device, context_window=cfg.context_window, threads=cfg.threads
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

    def ingest(self, sources: Sequence[str | Path], progress: ProgressFn | None = None) -> IngestReport:
        """Parse, chunk, embed and index files and folders. Unchanged files are skipped.

        A file that cannot be read or parsed is reported in the result and the rest go on. Ctrl-C stops after
        the current file; what was committed stays, and the next run finishes the job.
        """
        t0 = time.perf_counter()
        files, unsupported = discover_files(sources)
        failed = [FileFailure(str(p), f"unsupported file type {p.suffix or '(none)'}") for p in unsupported]
        ingested = unchanged = chunks_added = 0
        interrupted = False
        with WriterLock(self.paths):
            index = self.index  # the embedder loads only once a file actually changed
            last_save = time.monotonic()
            try:
                for done, path in enumerate(files):
                    if progress:
                        progress(done, len(files), str(path))
                    uri = str(path)
                    try:
                        data = path.read_bytes()
                    except OSError as exc:
                        failed.append(FileFailure(uri, f"cannot read ({exc.strerror or exc})"))
                        continue
                    digest = content_hash(data)
                    if self.store.document_status(uri) == (digest, "ok"):
                        unchanged += 1
                        continue
                    try:
                        doc = parse_file(path, data)
                        spans = chunk_document(
                            doc,
                            self.embedder.count_tokens,
                            self.embedder.token_offsets,
                            self.config.chunking.max_tokens,
                            self.config.chunking.overlap,
                        )
                        if not spans:
                            raise ParseError(f"{path.name}: no text to index")
                    except ParseError as exc:
                        index.remove(np.asarray(self.store.record_failure(uri, digest, str(exc)), dtype=np.int64))
                        failed.append(FileFailure(uri, str(exc)))
                        continue
                    vectors = self.embedder.embed([s.text for s in spans])  # (n_chunks, dim)
                    removed, new_ids = self.store.replace_document(doc, spans, vectors)
                    index.remove(np.asarray(removed, dtype=np.int64))
                    index.add(np.asarray(new_ids, dtype=np.int64), vectors)
                    ingested += 1
                    chunks_added += len(new_ids)
                    if time.monotonic() - last_save > _SAVE_EVERY_S:
                        index.save(self.paths.index)
                        last_save = time.monotonic()
                if progress:
                    progress(len(files), len(files), "")
            except KeyboardInterrupt:
                interrupted = True
            finally:
                index.save(self.paths.index)
                self._write_manifest()
        return IngestReport(
            files_seen=len(files) + len(unsupported),
            ingested=ingested,
            unchanged=unchanged,
            failed=tuple(failed),
            chunks_added=chunks_added,
            seconds=time.perf_counter() - t0,
            interrupted=interrupted,
        )

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

    def ask(self, question: str, k: int | None = None, max_new_tokens: int | None = None) -> Answer:
        """Retrieve, pack under the token budget, generate, and verify the answer's citations."""
        t0 = time.perf_counter()
        hits = self.search(question, k)
        t_retrieve = time.perf_counter() - t0
        gen = self.generator
        budget = max_new_tokens or self.config.generator.max_new_tokens
        packed = pack(question, hits, gen.count_prompt_tokens, gen.context_window, budget)
        out = gen.generate(packed.messages, budget, self.config.generator.temperature, stop=should_stop)
        checked = check_answer(out.text, packed.hits, complete=out.finish == "stop")
        return Answer(
            question=question,
            text=checked.text,
            raw_text=out.text,
            citations=checked.citations,
            hits=packed.hits,
            abstained=checked.abstained,
            unsupported=checked.unsupported,
            dropped_hits=len(packed.dropped),
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
            timings={
                "retrieve": round(t_retrieve, 4),
                "generate": round(out.seconds, 4),
                "total": round(time.perf_counter() - t0, 4),
            },
        )

    def stats(self) -> dict[str, Any]:
        """Counts, models and failures recorded in the KB."""
        return {
            "kb": str(self.root),
            **self.store.counts(),
            "embedder": self.manifest.get("embedder"),
            "generator": self.config.generator.model,
            "index": self.config.index.spec,
            "failures": [{"uri": u, "reason": r} for u, r in self.store.failures()],
        }

    def close(self) -> None:
        self.store.engine.dispose()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
