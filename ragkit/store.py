"""The store: SQL (the truth), the FAISS index (derived) and the keyword index, kept in step in one place.

Every write goes to SQL first, in one transaction per document, and then to FAISS; FAISS is saved now and
then and repaired from SQL whenever they disagree (on open, by `check`), so a crash at any point leaves a
store that reopens consistent. Nothing outside this module adds to or removes from FAISS. The keyword index
follows SQL by itself (database triggers), so only `check` needs to look at it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ragkit.access import Principal
from ragkit.errors import ConfigError, KnowledgeBaseError, RagkitError
from ragkit.indexes.acl import change_grants, readable, reading_as
from ragkit.indexes.documents import document_spans, list_documents
from ragkit.indexes.faiss_index import FaissIndex, faiss_reason, resolve_spec
from ragkit.indexes.filters import FilterSpec, compile_filters
from ragkit.indexes.index_build import IVF_TRAIN_SAMPLE, Fill, build_index  # noqa: F401 - the sample size lived here
from ragkit.indexes.keyword import keyword_index
from ragkit.indexes.retriever import Caches, Retriever, SearchOptions
from ragkit.indexes.sql_store import DocState, SqlStore
from ragkit.kbdir import KbPaths
from ragkit.lazy import Lazy, ReadWriteLock
from ragkit.protocols import Embedder, KeywordIndex, Reranker
from ragkit.targets import target_matcher
from ragkit.types import CheckReport, Chunk, ChunkSpan, DeleteReport, Document, DocumentInfo, Hit, ReindexReport

log = logging.getLogger("ragkit")


class Store:
    """SQL + FAISS + keyword search for one knowledge base.

    manifest: the KB's manifest dict; the store keeps its "index" entry (spec asked, spec built) true.
    embedder / reranker: loaders called on first use, so a store opens without loading a model.
    """

    def __init__(
        self,
        sql: SqlStore,
        paths: KbPaths,
        *,
        index_spec: str,
        device: str,
        manifest: dict[str, Any],
        embedder: Callable[[], Embedder],
        reranker: Callable[[], Reranker | None],
    ) -> None:
        self.sql = sql
        self.paths = paths
        self.index_spec = index_spec
        self._device = device
        self.manifest = manifest
        self._embedder = embedder
        self._reranker = reranker
        self._index: Lazy[FaissIndex] = Lazy(self._open_index, threading.RLock())
        self._caches = Caches.of(sql.engine)  # what retrievers keep between searches (until a write, or bounded)
        self._faiss = ReadWriteLock()  # searches share the index; writes to it are exclusive (a server's threads)
        self.warnings: list[str] = []  # what opening found and healed (an unreadable index.faiss); never printed
        self._keyword: KeywordIndex | None = None
        self._keyword_error: RagkitError | None = None
        try:  # created eagerly: its triggers must exist before any chunk is written
            self._keyword = keyword_index(sql.engine)
        except RagkitError as exc:  # no FTS5 in this SQLite, or another database: only keyword search fails
            self._keyword_error = exc

    # -- what SQL holds (the truth) -----------------------------------------------------------------

    @property
    def engine(self) -> Any:
        """The SQLAlchemy engine (for the store's own tests and the indexes; workflows use the methods)."""
        return self.sql.engine

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.sql.url

    @property
    def backend(self) -> str:
        return self.sql.backend

    @property
    def dim(self) -> int:
        return int(self.manifest["embedder"]["dim"])

    def chunk_ids(self, principal: Principal | None = None) -> np.ndarray:
        """(n,) int64: every stored chunk id the principal may read (None: every one), ascending."""
        with reading_as(principal):
            return self.sql.chunk_ids(readable(principal))

    def chunks(self, ids: Sequence[int], principal: Principal | None = None) -> dict[int, Chunk]:
        """The stored chunks with these ids (missing ids, and those the principal may not read, are left out)."""
        with reading_as(principal):
            return self.sql.chunks(ids, readable(principal))

    def vectors(self, ids: Sequence[int], dim: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, (n, dim) float32 vectors) in batches, as stored in SQL."""
        return self.sql.vectors(ids, dim or self.dim)

    def counts(self, principal: Principal | None = None) -> dict[str, int]:
        """documents, chunks and failed_documents (those the principal may read)."""
        with reading_as(principal):
            return self.sql.counts(readable(principal))

    def failures(self, principal: Principal | None = None) -> list[tuple[str, str]]:
        """(uri, reason) of each document whose last ingest failed (that the principal may read)."""
        with reading_as(principal):
            return self.sql.failures(readable(principal))

    def documents(self, principal: Principal | None = None, **query: Any) -> list[DocumentInfo]:
        """Stored documents the principal may read, by id (doc_id=, limit=, offset=: ragkit/indexes/documents.py)."""
        return list_documents(self.sql.engine, principal, **query)

    def document_spans(self, doc_id: int, principal: Principal | None = None) -> list[tuple[int, str]]:
        return document_spans(self.sql.engine, doc_id, principal)

    def document_states(self) -> dict[str, DocState]:
        """What is known of each stored document, by uri: enough to skip unchanged ones."""
        return self.sql.document_states()

    def match_documents(self, targets: Sequence[str | Path]) -> list[str]:
        """Stored document uris that targets name (see match_targets), each once."""
        return list(self.match_targets(targets).deleted)

    def match_targets(self, targets: Sequence[str | Path]) -> DeleteReport:
        """Which stored documents each target names, as a dry-run DeleteReport (nothing is deleted).

        A target is a file (its document), a folder (every document under it) or a glob with the rules of
        `--filter source=`: case-insensitive, matching the whole uri or its tail after a '/'. An empty target
        is a UsageError: as a path it would be the working directory, i.e. everything under it.
        """
        uris = list(self.sql.document_states())
        chosen: list[str] = []
        unmatched: list[str] = []
        for target in targets:
            match = target_matcher(str(target))
            found = [u for u in uris if match(u)]
            chosen += found
            if not found:
                unmatched.append(str(target))
        return DeleteReport(deleted=tuple(dict.fromkeys(chosen)), unmatched=tuple(unmatched), chunks=0, dry_run=True)

    def count(self, filters: FilterSpec, principal: Principal | None = None) -> int:
        """Chunks passing the filters (ragkit/indexes/filters.py grammar) that the principal may read."""
        ids = compile_filters(filters, readable(principal))
        if ids is None:
            return self.counts(principal)["chunks"]
        with reading_as(principal), Session(self.sql.engine) as s:
            return int(s.scalar(select(func.count()).select_from(ids.subquery())) or 0)

    # -- the derived indexes --------------------------------------------------------------------------

    @property
    def index(self) -> FaissIndex:
        """The FAISS index, loaded (or created) and synced with SQL on first use."""
        return self._index.get()

    def _open_index(self) -> FaissIndex:
        index, warning = self._load_saved(self._device)
        if warning:
            warning += "; rebuilt from the vectors in SQL (ragkit check saves the rebuilt file)"
            self.warnings.append(warning)
            log.warning(warning)
        if index is None:
            spec = resolve_spec(self.index_spec, len(self.sql.chunk_ids()))
            index = FaissIndex.create(self.dim, spec, device=self._device)
            self.manifest["index"] = {"spec": self.index_spec, "resolved": spec}
        self.sync(index)
        return index

    def _load_saved(self, device: str) -> tuple[FaissIndex | None, str | None]:
        """(index.faiss, None); (None, why) when it is unreadable (corrupt, truncated, another dimension); (None,
        None) when it is missing. It is derived: either way the caller rebuilds it from SQL."""
        if not self.paths.index.exists():
            return None, None
        try:
            index = FaissIndex.load(self.paths.index, device=device)
            if index.dim != self.dim:
                raise KnowledgeBaseError(f"{self.paths.index.name} holds {index.dim}-d vectors, not {self.dim}-d")
            if not index.numbering_ok():
                raise KnowledgeBaseError(f"{self.paths.index.name}'s IVF lists disagree with its id table")
        except KnowledgeBaseError as exc:
            return None, str(exc)
        return index, None

    @property
    def keyword(self) -> KeywordIndex:
        """The keyword index; raises why there is none (no FTS5 in this SQLite)."""
        if self._keyword is None:
            assert self._keyword_error is not None
            raise self._keyword_error
        return self._keyword

    def sync(self, index: FaissIndex | None = None) -> int:
        """Make FAISS agree with SQL (the truth) without re-embedding. Returns the number of ids fixed."""
        index = index if index is not None else self.index
        sql_ids = self.sql.chunk_ids()
        faiss_ids = index.ids()
        extra = np.setdiff1d(faiss_ids, sql_ids)
        missing = np.setdiff1d(sql_ids, faiss_ids)
        index.remove(extra)
        for ids, vectors in self.sql.vectors(missing, index.dim):
            index.add(ids, vectors)
        return int(len(extra) + len(missing))

    def save(self) -> None:
        """Write the FAISS index atomically (it is repaired from SQL on open, so this bounds rework only)."""
        if self._index.loaded:
            with self._faiss.read():  # saving reads the index; only writes must wait
                self._index.get().save(self.paths.index)

    # -- writes: SQL first, then FAISS ----------------------------------------------------------------

    def cached_vectors(self, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of chunks with these text hashes: unchanged text is never embedded twice."""
        return self.sql.cached_vectors(text_hashes, self.dim)

    def write_documents(self, items: Sequence[tuple[Document, Sequence[ChunkSpan], np.ndarray]]) -> list[list[int]]:
        """Replace documents with these chunks and (len(spans), dim) vectors: one SQL transaction, then FAISS."""
        index = self.index  # loaded (and synced) before the SQL write, or the sync would add the new ids twice
        results = self.sql.replace_documents(items)
        removed = np.asarray([i for r, _ in results for i in r], dtype=np.int64)
        added = np.asarray([i for _, n in results for i in n], dtype=np.int64)
        vectors = [v for (_, n), (_, _, v) in zip(results, items, strict=True) if n]
        keep = ~np.isin(added, removed)  # a uri written twice in one group: its first chunks are gone already
        with self._faiss.write():
            index.remove(removed)
            index.add(added[keep], np.concatenate(vectors)[keep] if vectors else np.zeros((0, self.dim), "f4"))
        return [n for _, n in results]

    def record_failure(
        self, uri: str, content_hash: str, reason: str, size: int = 0, mtime: float = 0.0, parser: int = 1
    ) -> None:
        """Record that a document could not be ingested; its earlier chunks (if any) are removed.

        parser: the version of the parser that failed (SourceItem.parser)."""
        index = self.index
        removed = self.sql.record_failure(uri, content_hash, reason, size, mtime, parser)
        with self._faiss.write():
            index.remove(np.asarray(removed, dtype=np.int64))

    def touch(self, uri: str, size: int, mtime: float) -> None:
        """Record a new size/mtime for a document whose bytes did not change."""
        self.sql.touch(uri, size, mtime)

    def update_meta(self, uris: Sequence[str], meta: dict[str, Any]) -> int:
        """Merge user metadata into stored documents without re-embedding (SQL only: FAISS holds no metadata)."""
        return self.sql.update_meta(uris, meta)

    def declare_grants(self, grants: dict[str, tuple[str, ...]], actor: str) -> int:
        """Set stored documents' grants to exactly these ({uri: tokens}, an ingest's declaration); audited."""
        by_tokens: dict[tuple[str, ...], list[str]] = {}
        for uri, tokens in grants.items():
            by_tokens.setdefault(tokens, []).append(uri)
        return sum(
            change_grants(self.sql.engine, uris, tokens, add=True, actor=actor, replace=True)
            for tokens, uris in by_tokens.items()
        )

    def delete_documents(self, uris: Sequence[str]) -> int:
        """Delete documents and their chunks everywhere. Returns how many chunks went."""
        index = self.index
        removed = self.sql.delete_documents(uris)
        with self._faiss.write():
            index.remove(np.asarray(removed, dtype=np.int64))
        return len(removed)

    # -- rebuild, upgrade, check ----------------------------------------------------------------------

    def rebuild(self, spec: str, fill: Fill | None = None) -> ReindexReport:
        """Build a new FAISS index of type `spec` from the vectors in SQL (no re-embedding), and save it.
        fill: how the trained index gets its vectors (ragkit/indexes/index_build.py; None: here, in id order)."""
        t0 = time.perf_counter()
        ids = self.sql.chunk_ids()
        resolved = resolve_spec(spec, len(ids))
        try:  # built whole before it replaces anything: a spec FAISS cannot build leaves the old index
            index, trained_on = build_index(self.sql, self.dim, resolved, self._device, ids, fill)
        except RuntimeError as exc:  # FAISS's C++ errors
            raise ConfigError(
                f"FAISS cannot build the index {resolved!r} ({faiss_reason(exc)}); nothing was changed. "
                "Choose another spec, e.g. Flat, HNSW32, IVF1024,Flat or auto"
            ) from exc
        index.save(self.paths.index)
        self._index.set(index)
        self.index_spec = spec
        self.manifest["index"] = {"spec": spec, "resolved": resolved}
        return ReindexReport(
            spec=spec,
            resolved=resolved,
            index=index.description,
            vectors=len(index),
            trained_on=trained_on,
            seconds=round(time.perf_counter() - t0, 3),
        )

    def maybe_upgrade(self) -> ReindexReport | None:
        """With index spec "auto", rebuild once the corpus crosses into the next size class (Flat -> IVF)."""
        if self.index_spec.strip().lower() != "auto":
            return None
        want = resolve_spec("auto", len(self.index))
        if want != self.manifest.get("index", {}).get("resolved", "Flat"):
            return self.rebuild("auto")
        return None

    def check(self, repair: bool = True) -> CheckReport:
        """Compare the saved FAISS index and the keyword index with SQL; repair them when asked, then verify again.

        HNSW keeps deleted ids as tombstones (it cannot delete): those are counted apart and are no inconsistency.
        An unreadable index.faiss counts as missing (every vector missing) and is rebuilt by the repair.
        """
        report, on_disk = self._verify()
        if report.ok or not repair:
            return report
        if report.duplicate_ids or on_disk is None:
            self.rebuild(self.index_spec)
        else:
            self.sync(on_disk)
            on_disk.save(self.paths.index)
            self._index.set(on_disk)
        if self._keyword is not None and not report.keyword_index_ok:
            self._keyword.rebuild()
        after, _ = self._verify()
        warnings = report.warnings
        if not after.ok:
            warnings += (
                f"the repair left missing {after.missing_from_faiss}, extra {after.extra_in_faiss}, duplicates "
                f"{after.duplicate_ids}, keyword index {'ok' if after.keyword_index_ok else 'BAD'}; run ragkit reindex",
            )
        return replace(report, repaired=after.ok, ok=after.ok, warnings=warnings)

    def _verify(self) -> tuple[CheckReport, FaissIndex | None]:
        """The check's counts, and the saved index they were taken from (None when missing or unreadable)."""
        sql_ids = self.sql.chunk_ids()
        saved, unreadable = self._load_saved("cpu")
        warnings = (f"{unreadable}; counted as missing (ragkit check rebuilds it from SQL)",) if unreadable else ()
        on_disk = saved or FaissIndex.create(self.dim, resolve_spec(self.index_spec, len(sql_ids)), device="cpu")
        faiss_ids = on_disk.ids()
        waiting = 0
        if not on_disk.is_trained:  # an untrained IVF/PQ index keeps vectors in SQL until there are enough to train
            waiting = int(len(np.setdiff1d(sql_ids, faiss_ids)))
            faiss_ids = np.concatenate([faiss_ids, np.setdiff1d(sql_ids, faiss_ids)])
        unique_ids = np.unique(faiss_ids)
        missing = int(len(np.setdiff1d(sql_ids, unique_ids)))
        extra = int(len(np.setdiff1d(unique_ids, sql_ids)))
        tombstones = 0
        if extra and not on_disk.removes:  # ids deleted from SQL that HNSW cannot drop: hidden, not an error
            tombstones, extra = extra, 0
        duplicates = int(len(faiss_ids) - len(unique_ids))
        keyword_ok = self._keyword is None or self._keyword.check()
        consistent = missing == extra == duplicates == 0 and keyword_ok
        report = CheckReport(
            waiting_for_training=waiting,
            sql_chunks=int(len(sql_ids)),
            faiss_vectors=int(len(faiss_ids) - waiting - tombstones),
            missing_from_faiss=missing,
            extra_in_faiss=extra,
            duplicate_ids=duplicates,
            keyword_index_ok=keyword_ok,
            index=on_disk.description,
            repaired=False,
            ok=consistent,
            tombstones=tombstones,
            warnings=warnings,
        )
        return report, saved

    # -- reads ----------------------------------------------------------------------------------------

    def search_batch(
        self, queries: Sequence[str], options: SearchOptions, principal: Principal | None = None
    ) -> list[list[Hit]]:
        """Hits for each query: (nq,) queries -> nq ranked lists of at most options.k hits, drawn only from
        documents the principal may read (None: every document)."""
        if len(self.index) == 0:
            root = self.paths.root
            raise KnowledgeBaseError(f"{root} holds no chunks yet; run: ragkit ingest PATH --kb {root}")
        scope = readable(principal)
        tokens = principal.tokens if principal is not None and not principal.admin else None  # RLS reads too
        parts = (self.sql, self.index, self._embedder, lambda: self.keyword, self._reranker)
        retriever = Retriever(*parts, scope, caches=self._caches, reader=tokens)
        # FAISS's GPU copy is built lazily inside a search and is not thread-safe: searches on a GPU take turns
        with self._faiss.write() if self.index.device == "cuda" else self._faiss.read(), reading_as(principal):
            return retriever.search_batch(list(queries), options)

    def close(self) -> None:
        self.sql.engine.dispose()
