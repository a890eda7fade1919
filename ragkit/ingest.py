"""The ingest pipeline: plan -> parse and chunk (a background thread) -> embed in batches -> commit.

Parsing and chunking of the next files overlap with the embedding of the current batch; batches span files
so the embedder always gets full, length-sorted batches. Each document commits in its own SQL transaction
(SQL is the truth), then its vectors go into FAISS, which is saved atomically now and then and at the end;
a crash at any point leaves a KB that `open` repairs, and the next run skips what was committed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragkit.chunking import chunk_document
from ragkit.connectors import Connector, SourceItem, SourceOptions, open_source
from ragkit.connectors.parsing import content_hash
from ragkit.embedding import Embedder
from ragkit.errors import ParseError
from ragkit.indexes.faiss_index import FaissIndex
from ragkit.indexes.sql_store import DocState, SqlStore, text_hash
from ragkit.types import ChunkSpan, Document, FileFailure, IngestReport

ProgressFn = Callable[[int, int, str], None]  # (files done, files total, current file)


@dataclass(frozen=True)
class IngestSettings:
    max_tokens: int
    overlap: int
    max_file_bytes: int
    parser: str = "auto"
    json_field: str = "text"
    url_timeout_s: float = 20.0
    batch_chunks: int = 256  # chunks per embedding call, gathered across files
    save_every_s: float = 30.0  # bounds the FAISS work a crash can lose (it is repaired from SQL anyway)


@dataclass
class _Item:
    source: SourceItem
    digest: str = ""
    doc: Document | None = None
    spans: list[ChunkSpan] = field(default_factory=list)
    failure: str | None = None
    unchanged: bool = False


_END = object()


def _prepare(source: SourceItem, state: DocState | None, embedder: Embedder, s: IngestSettings) -> _Item:
    """Read, hash, parse and chunk one item (runs in the parser thread). Never raises for bad input."""
    item = _Item(source)
    if source.size > s.max_file_bytes:
        item.failure = (
            f"{source.name}: {source.size / 1e6:.0f} MB is over the {s.max_file_bytes / 1e6:.0f} MB limit "
            "(raise ingest.max_file_mb to include it)"
        )
        return item
    try:
        data = source.read()
        item.digest = content_hash(data)
        if state is not None and state.status == "ok" and state.content_hash == item.digest:
            item.unchanged = True  # touched (new mtime) or re-fetched, same bytes
            return item
        item.doc = source.parse(data)
        item.spans = chunk_document(item.doc, embedder.count_tokens, embedder.token_offsets, s.max_tokens, s.overlap)
        if not item.spans:
            raise ParseError(f"{source.name}: no text to index")
    except ParseError as exc:
        item.failure = str(exc)
    except Exception as exc:  # a parser bug on one item must not end the run
        item.failure = f"{source.name}: unexpected {type(exc).__name__}: {exc}"
    return item


def run_ingest(
    sources: Sequence[str | Path],
    *,
    store: SqlStore,
    index: FaissIndex,
    embedder: Callable[[], Embedder],
    settings: IngestSettings,
    save_index: Callable[[], None],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Bring the KB in line with `sources`; see the module docstring. The caller holds the writer lock."""
    t0 = time.perf_counter()
    options = SourceOptions(
        engine=settings.parser,
        json_field=settings.json_field,
        max_bytes=settings.max_file_bytes,
        timeout_s=settings.url_timeout_s,
        include=tuple(include),
        exclude=tuple(exclude),
    )
    connectors = [open_source(src, options) for src in sources]
    listed: dict[str, SourceItem] = {}
    for connector in connectors:  # lists every source before writing anything: a bad source fails the run early
        for source_item in connector.items():
            listed.setdefault(source_item.uri, source_item)  # the same file via two folders counts once
    unsupported = [u for c in connectors for u in c.unsupported]
    failed = [FileFailure(u, f"unsupported file type {Path(u).suffix or '(none)'}") for u in unsupported]
    states = store.document_states()
    total, done, ingested, unchanged, chunks_added = len(listed), 0, 0, 0, 0
    interrupted = False
    deleted = 0

    def tick(name: str = "") -> None:
        if progress:
            progress(done, total, name)

    # plan: an item whose known size and mtime match the stored document is skipped without being read
    # (a file that failed before and is untouched is reported again without re-parsing it)
    todo: list[SourceItem] = []
    for source_item in listed.values():
        state = states.get(source_item.uri)
        same_stat = state and source_item.mtime and (state.size, state.mtime) == (source_item.size, source_item.mtime)
        if state and same_stat and state.status == "ok":
            unchanged += 1
            done += 1
        elif state and same_stat:  # failed last time and untouched since: same failure, no second parse
            failed.append(FileFailure(source_item.uri, state.error or "failed in an earlier ingest"))
            done += 1
        else:
            todo.append(source_item)
    tick()

    emb = embedder() if todo else None
    items: queue.Queue[object] = queue.Queue(maxsize=16)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for source_item in todo:
                if not put(_prepare(source_item, states.get(source_item.uri), emb, settings)):  # type: ignore[arg-type]
                    return
        finally:
            put(_END)  # even if a bug escaped _prepare, the consumer must not wait forever

    def flush(batch: list[_Item]) -> None:
        nonlocal done, ingested, chunks_added
        if not batch:
            return
        texts = [sp.text for it in batch for sp in it.spans]
        hashes = [text_hash(t) for t in texts]
        cached = store.cached_vectors(hashes, index.dim)
        fresh = [i for i, h in enumerate(hashes) if h not in cached]
        vectors = np.empty((len(texts), index.dim), dtype=np.float32)  # (n_chunks, dim)
        if fresh:
            vectors[fresh] = emb.embed([texts[i] for i in fresh])  # type: ignore[union-attr]
        for i, h in enumerate(hashes):
            if h in cached:
                vectors[i] = cached[h]
        lo = 0
        for it in batch:
            vecs = vectors[lo : lo + len(it.spans)]
            lo += len(it.spans)
            assert it.doc is not None
            removed, new_ids = store.replace_document(it.doc, it.spans, vecs)
            index.remove(np.asarray(removed, dtype=np.int64))
            index.add(np.asarray(new_ids, dtype=np.int64), vecs)
            done += 1
            ingested += 1
            chunks_added += len(new_ids)
            tick(it.source.name)
        batch.clear()

    parser = threading.Thread(target=produce, name="ragkit-parse", daemon=True)
    last_save = time.monotonic()
    batch: list[_Item] = []
    try:
        if todo:
            parser.start()
        while todo:
            item = items.get()
            if item is _END:
                flush(batch)
                break
            assert isinstance(item, _Item)
            src = item.source
            if item.failure is not None:
                removed = store.record_failure(src.uri, item.digest, item.failure, src.size, src.mtime)
                index.remove(np.asarray(removed, dtype=np.int64))
                failed.append(FileFailure(src.uri, item.failure))
                done += 1
                tick(src.name)
            elif item.unchanged:
                store.touch(src.uri, src.size, src.mtime)
                unchanged += 1
                done += 1
                tick(src.name)
            else:
                batch.append(item)
                if sum(len(it.spans) for it in batch) >= settings.batch_chunks:
                    flush(batch)
            if time.monotonic() - last_save > settings.save_every_s:
                save_index()
                last_save = time.monotonic()
        if prune:
            gone = _vanished(connectors, set(listed), states)
            index.remove(np.asarray(store.delete_documents(gone), dtype=np.int64))
            deleted = len(gone)
    except KeyboardInterrupt:
        interrupted = True  # the batch being embedded is dropped whole; committed documents stay
    finally:
        stop.set()
        save_index()
    return IngestReport(
        files_seen=len(listed) + len(unsupported),
        ingested=ingested,
        unchanged=unchanged,
        failed=tuple(failed),
        chunks_added=chunks_added,
        seconds=time.perf_counter() - t0,
        interrupted=interrupted,
        deleted=deleted,
    )


def _vanished(connectors: Sequence[Connector], present: set[str], states: dict[str, DocState]) -> list[str]:
    """Stored documents inside a source's scope (a folder, a table) that the source no longer holds."""
    scopes = [c.scope for c in connectors if c.scope]
    return [uri for uri in states if uri not in present and any(uri.startswith(scope) for scope in scopes)]
