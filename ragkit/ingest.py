"""The ingest pipeline: plan -> parse and chunk (a background thread) -> embed in groups -> commit.

Parsing and chunking of the next files overlap with embedding, and embedding (a thread of its own,
`ragkit.ingest_embed`) overlaps with the writes: groups span files so the embedder gets full, length-sorted
batches. Each group of documents is written through the store (`ragkit.store`: SQL first, in one transaction,
then FAISS), which is saved now and then and at the end; a crash at any point leaves a KB that `open` repairs,
and the next run skips what was committed."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ragkit.connectors import SourceItem, SourceOptions, open_source
from ragkit.errors import Cancelled
from ragkit.indexes.sql_store import DocState, text_hash
from ragkit.ingest_embed import Abandoned, EmbedAhead, Group
from ragkit.ingest_plan import Parsed as _Parsed
from ragkit.ingest_plan import finish_ingest, plan_ingest
from ragkit.ingest_plan import parse_item as _parse
from ragkit.ingest_report import ProgressFn, Tally, stop_if_cancelled
from ragkit.ingest_settings import IngestSettings, check_meta  # noqa: F401 - imported from here too
from ragkit.protocols import CountsTokens, Embedder
from ragkit.types import IngestReport

if TYPE_CHECKING:
    from ragkit.store import Store


# Parsed items waiting for the embedder: enough to keep it fed while a slow file parses, few enough that
# parsed documents do not pile up in memory.
_QUEUE_ITEMS = 16
_PUT_POLL_S = 0.2  # how often a blocked producer checks whether the run was stopped
# how often the main thread's waits wake up: a Ctrl-C that lands just before a blocking wait starts is handled only
# when the wait ends (CPython runs signal handlers between bytecodes), which could be after a whole large file
_WAIT_POLL_S = 0.1
T = TypeVar("T")
# files in flight per parser process: keeps each busy without holding many parsed documents
_INFLIGHT_PER_WORKER = 4
_END = object()


@dataclass(frozen=True)
class _Item:
    source: SourceItem
    parsed: _Parsed


def _prepare(source: SourceItem, state: DocState | None, counter: CountsTokens, s: IngestSettings) -> _Item:
    """Parse one item in this process (the parser thread)."""
    return _Item(
        source, _parse(source.name, source.size, source.read, source.parse, state, counter, s, source.parser_read)
    )


# -- parser processes: parsing is pure Python (GIL-bound), so more cores need more processes ----------------

_worker_counter: CountsTokens | None = None


def _polled(wait_once: Callable[[], T], timed_out: type[Exception]) -> T:
    """wait_once() again until it returns instead of raising `timed_out`, so that signals are handled meanwhile."""
    while True:
        with contextlib.suppress(timed_out):
            return wait_once()


def _worker_init(counter: CountsTokens) -> None:
    global _worker_counter
    from ragkit.assets import quiet_transformers, set_offline_env

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the ingest process's to handle
    set_offline_env()
    quiet_transformers()  # the library never prints, in its parser processes either
    _worker_counter = counter


def _worker_parse(path: Path, options: SourceOptions, size: int, state: DocState | None, s: IngestSettings) -> _Parsed:
    from ragkit.connectors.files import parse_file, read_file

    assert _worker_counter is not None
    return _parse(
        path.name, size, lambda: read_file(path), lambda d: parse_file(path, d, options), state, _worker_counter, s
    )


def parse_workers(setting: int | None, files: int) -> int:
    """Parser processes to use: the setting, or (None) one per core beyond the two that embedding keeps busy,
    at most 8, and none for small runs where starting processes costs more than it saves."""
    if setting is not None:
        return max(0, setting if setting > 1 else 0)
    cores = os.cpu_count() or 1
    return min(8, cores - 2) if cores > 3 and files >= 64 else 0


def check_sources(sources: Sequence[str | Path], *, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
    """Raise SourceError for a source that cannot be read, before anything is created or written: a missing
    path, a folder without a supported file, a missing SQLite file, a URL scheme ragkit cannot fetch. URLs are
    only fetched by the ingest itself."""
    from ragkit.connectors.files import FileConnector, discover

    options = SourceOptions(include=tuple(include), exclude=tuple(exclude))
    for src in sources:
        connector = open_source(src, options)
        if isinstance(connector, FileConnector):
            discover([connector.path], include, exclude)
        elif callable(getattr(connector, "check", None)):
            connector.check()  # type: ignore[attr-defined]


def run_ingest(
    sources: Sequence[str | Path],
    *,
    store: Store,
    embedder: Callable[[], Embedder],
    settings: IngestSettings,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> IngestReport:
    """Bring the KB in line with `sources`; see the module docstring. The caller holds the writer lock.

    cancel: once set, the run stops between files or embedding batches, as Ctrl-C does (what is committed
    stays, the rest is dropped, no metadata restamp or prune), and raises IngestCancelled."""
    if settings.runtime.ray:  # the same run, its parsing, embedding and writes on a Ray cluster
        from ragkit.distributed.ingest import run_ingest_ray

        return run_ingest_ray(
            sources,
            store=store,
            settings=settings,
            include=include,
            exclude=exclude,
            prune=prune,
            progress=progress,
            cancel=cancel,
        )
    t0 = time.perf_counter()
    plan = plan_ingest(sources, store, settings, include, exclude)
    states, todo = plan.states, plan.todo
    tally = Tally.start(plan, progress, t0)
    stopped: KeyboardInterrupt | Cancelled | None = None
    restamped = deleted = 0

    emb = embedder() if todo else None
    items: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_ITEMS)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    workers = parse_workers(settings.parse_workers, sum(1 for t in todo if t.local is not None)) if todo else 0
    pool = None
    if workers:
        counter = emb.counter()  # type: ignore[union-attr]
        context = multiprocessing.get_context("spawn")  # fork would copy torch's threads mid-flight
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(counter,))

    def produce() -> None:
        try:
            inflight: dict[Future[_Parsed], SourceItem] = {}

            def drain(until: int) -> bool:
                while len(inflight) > until:
                    finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        src = inflight.pop(fut)
                        try:
                            p = fut.result()
                        except Exception as exc:  # a parser process died (out of memory, a crash in C code)
                            p = _Parsed(failure=f"{src.name}: parser process failed: {type(exc).__name__}: {exc}")
                        if not put(_Item(src, p)):
                            return False
                return True

            for source_item in todo:
                state = states.get(source_item.uri)
                if pool is not None and source_item.local is not None:
                    if not drain(_INFLIGHT_PER_WORKER * workers - 1):
                        return
                    path, opts = source_item.local
                    inflight[pool.submit(_worker_parse, path, opts, source_item.size, state, settings)] = source_item
                elif not put(_prepare(source_item, state, emb, settings)):  # type: ignore[arg-type]
                    return
            drain(0)
        finally:
            put(_END)  # even if a bug escaped _prepare, the consumer must not wait forever

    # the embedder works one group ahead, in its own thread (ragkit/ingest_embed.py); the store stays on this one
    ahead = EmbedAhead(emb.embed, store.dim, settings.batch_chunks) if emb is not None else None
    in_flight: list[Group] = []  # embedded or embedding; Ctrl-C finishes them

    def submit(files: list[_Item]) -> None:
        assert ahead is not None
        texts = [sp.text for it in files for sp in it.parsed.spans]
        hashes = [text_hash(t) for t in texts]
        group = Group(files, texts, hashes, store.cached_vectors(hashes))
        in_flight.append(group)  # before it is queued: a Ctrl-C from here on finds the group and finishes it
        ahead.send(group)

    def write_oldest() -> None:
        """Write the oldest group in flight, in one transaction, once its vectors are ready."""
        assert ahead is not None
        group = in_flight[0]
        ahead.send(group)  # a no-op, unless a Ctrl-C fell between in_flight.append and the queueing
        vectors = _polled(lambda: group.vectors.result(timeout=_WAIT_POLL_S), TimeoutError)
        docs, lo = [], 0
        for it in group.items:
            assert it.parsed.doc is not None
            n = len(it.parsed.spans)
            docs.append((settings.stamp(it.parsed.doc), it.parsed.spans, vectors[lo : lo + n]))
            lo += n
        written = store.write_documents(docs)
        in_flight.pop(0)
        for it, new_ids in zip(group.items, written, strict=True):
            tally.written(it.source.uri, it.source.name, len(new_ids), it.parsed.doc.notes, it.parsed.reread)

    def flush(batch: list[_Item], *, drain: bool = False) -> None:
        """Send the batch to the embedder in groups of whole files; write all but the newest (drain: all)."""
        while batch:
            n, chunks = 0, 0
            while n < len(batch) and (chunks < ahead.chunks or n == 0):  # type: ignore[union-attr]
                chunks += len(batch[n].parsed.spans)
                n += 1
            stop_if_cancelled(cancel)
            submit(batch[:n])
            del batch[:n]
            while len(in_flight) > 1:
                write_oldest()
        while drain and in_flight:
            write_oldest()

    parser = threading.Thread(target=produce, name="ragkit-parse", daemon=True)
    last_save = time.monotonic()
    batch: list[_Item] = []
    batched = 0  # chunks in `batch`: a running count, since a group can be thousands of one-chunk files
    try:
        if todo:
            parser.start()
        while todo:
            item = _polled(lambda: items.get(timeout=_WAIT_POLL_S), queue.Empty)
            stop_if_cancelled(cancel)
            if item is _END:
                flush(batch, drain=True)
                break
            assert isinstance(item, _Item)
            src, p = item.source, item.parsed
            if p.failure is not None:
                store.record_failure(src.uri, p.digest, p.failure, src.size, src.mtime, src.parser)
                tally.failure(src.uri, src.name, p.failure)
            elif p.unchanged:
                store.touch(src.uri, src.size, src.mtime)
                tally.kept(src.uri, src.name)
            else:
                batch.append(item)
                batched += len(p.spans)
                if batched >= ahead.chunks:  # type: ignore[union-attr]
                    flush(batch)  # empties it
                    batched = 0
            if len(in_flight) == 1 and in_flight[0].vectors.done():
                write_oldest()  # embedded while this thread waited for parsed files: write it now
            if time.monotonic() - last_save > settings.save_every_s:
                store.save()
                last_save = time.monotonic()
        stop_if_cancelled(cancel)  # a cancelled run neither restamps nor prunes
        restamped, deleted = finish_ingest(store, plan, settings, prune, tally.recorded)
    except (KeyboardInterrupt, Cancelled) as exc:
        stopped = exc
        # committed documents stay; the groups in flight (one being written, one being embedded) are finished,
        # the rest dropped
        stop.set()
        if ahead is not None:
            ahead.stop()  # a large file mid-embedding is dropped after the call in progress, not finished
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C stops at once (what is committed stays)
            while in_flight:
                try:
                    write_oldest()
                except Abandoned:
                    break  # it and the groups after it are dropped (`close` cancels those not started)
    finally:
        stop.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if ahead is not None:
            ahead.close(in_flight)  # a group mid-embedding finishes first
        store.save()
    return tally.end(stopped, restamped, deleted)
