"""run_ingest_ray: `ragkit ingest --ray`, the same run as ragkit.ingest.run_ingest with its work on a Ray cluster.

coordinator (this process; the caller holds the KB's writer lock)
  plan_ingest (as a local run: stat-based skips)  ->  rows {uri, path | parsed item}
  Ray Data: ParseChunk actors (read files by path) -> Embed actors (model once per actor; a GPU each when the
            cluster has GPUs) -> Write actors (PostgreSQL, one idempotent transaction per document)
  status rows stream back (never the chunks or vectors): progress and the IngestReport
  finish_ingest (metadata, grants, --prune)  ->  FAISS from SQL: a full sharded build (ray_fill) when the index
  is new or empty, else the ids SQL gained or lost (Store.sync)
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkit.distributed.cluster import check_visible, connected, require_shared_database, sizing
from ragkit.distributed.index import ray_fill
from ragkit.distributed.stages import Embed, ParseChunk, Write
from ragkit.errors import Cancelled, KnowledgeBaseError
from ragkit.indexes.coordination import exclusive
from ragkit.ingest_plan import finish_ingest, parse_item, plan_ingest
from ragkit.ingest_report import Tally, stop_if_cancelled
from ragkit.ingest_settings import IngestSettings
from ragkit.types import IngestReport

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from ragkit.connectors import SourceItem
    from ragkit.store import Store

FAULT_ENV = "RAGKIT_FAULT_WRITER_EXIT"  # "N:MARKER": a writer exits after N commits, once (crash tests)
PARSE_BATCH = 4  # files per parse call: small, so a slow file holds little back
EMBED_BATCH = 8  # documents per embed call (encode batches their chunks inside)
WRITE_BATCH = 8  # documents per write call (one transaction each)


def run_ingest_ray(
    sources: Sequence[str | Path],
    *,
    store: Store,
    settings: IngestSettings,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: threading.Event | None = None,
) -> IngestReport:
    """Bring the KB in line with `sources` on a Ray cluster; same contract and report as run_ingest (cancel is
    checked as each document's status comes back)."""
    t0 = time.perf_counter()
    db_url = require_shared_database(store)
    with exclusive(store.engine, "ingest") as mine:
        if not mine:
            raise KnowledgeBaseError(
                f"another ragkit ingest --ray is writing to {store.url} (a coordinator on another machine?); "
                "wait for it to finish, or stop it, then run this again"
            )
        return _run(sources, store, settings, include, exclude, prune, progress, cancel, db_url, t0)


def _run(
    sources: Sequence[str | Path],
    store: Store,
    settings: IngestSettings,
    include: Sequence[str],
    exclude: Sequence[str],
    prune: bool,
    progress: Callable[[int, int, str], None] | None,
    cancel: threading.Event | None,
    db_url: str,
    t0: float,
) -> IngestReport:
    plan = plan_ingest(sources, store, settings, include, exclude)
    tally = Tally.start(plan, progress, t0)
    stopped: KeyboardInterrupt | Cancelled | None = None
    restamped = deleted = 0
    had_index = store.paths.index.exists() and store.counts()["chunks"] > 0
    with connected(settings.runtime) as ray:
        check_visible(ray, [str(it.local[0]) for it in plan.todo if it.local is not None])
        try:
            if plan.todo:
                for uri, status in _pipeline(ray, plan.todo, plan.states, settings, db_url):
                    if status["kind"] == "failed":  # the writer stored the failure
                        tally.failure(uri, status["name"], status["failure"])
                    elif status["kind"] == "unchanged":
                        tally.kept(uri, status["name"])
                    else:
                        reread = status.get("reread", False)
                        tally.written(uri, status["name"], status["chunks"], status["notes"], reread)
                    stop_if_cancelled(cancel)  # what is committed stays (FAISS synced below); the next run skips it
            stop_if_cancelled(cancel)  # a cancelled run neither restamps nor prunes
            restamped, deleted = finish_ingest(store, plan, settings, prune, tally.recorded)
        except (KeyboardInterrupt, Cancelled) as exc:
            stopped = exc  # committed documents stay; the FAISS index is brought up to date below
        if had_index:
            store.sync()
            store.save()
        else:
            store.rebuild(store.index_spec, fill=ray_fill(settings.runtime))
    return tally.end(stopped, restamped, deleted)


def _pipeline(
    ray: Any, todo: Sequence[SourceItem], states: dict[str, Any], settings: IngestSettings, db_url: str
) -> Any:
    """Run parse -> embed -> write over the items; yield (uri, status) as documents are committed."""
    rt = settings.runtime
    size = sizing(ray, rt)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    items = []
    for it in todo:
        row: dict[str, Any] = {
            "name": it.name,
            "size": it.size,
            "mtime": it.mtime,
            "parser": it.parser,
            "state": states.get(it.uri),
        }
        if it.local is not None:
            path, options = it.local
            row |= {"path": str(path), "options": options, "parsed": None}
        else:  # a web page or SQL row has no path a worker could read: parse it here (tokenizer loaded once)
            row["parsed"] = _parse_here(it, states.get(it.uri), settings)
        items.append({"uri": it.uri, "payload": pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)})
    pool = ray.data.ActorPoolStrategy
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * size.parse_actors)))
    ds = ds.map_batches(
        ParseChunk,
        batch_size=PARSE_BATCH,
        batch_format="numpy",
        compute=pool(size=size.parse_actors),
        num_cpus=size.parse_cpus,
        fn_constructor_kwargs={"model": rt.embedder_model, "settings": settings},
    )
    ds = ds.map_batches(
        Embed,
        batch_size=EMBED_BATCH,
        batch_format="numpy",
        compute=pool(size=size.embed_actors),
        num_cpus=size.embed_cpus,
        num_gpus=size.embed_gpus,
        fn_constructor_kwargs={
            "model": rt.embedder_model,
            "device": rt.embedder_device,
            "batch_size": rt.embedder_batch_size,
            "cpus": size.embed_cpus,
            "db_url": db_url,
        },
    )
    ds = ds.map_batches(
        Write,
        batch_size=WRITE_BATCH,
        batch_format="numpy",
        compute=pool(size=size.write_actors),
        num_cpus=size.write_cpus,
        fn_constructor_kwargs={"db_url": db_url, "settings": settings, "fault": os.environ.get(FAULT_ENV)},
    )
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for uri, payload in zip(batch["uri"], batch["payload"], strict=True):
            yield str(uri), pickle.loads(payload)


_counter_cache: dict[str, Any] = {}


def _parse_here(item: SourceItem, state: Any, settings: IngestSettings) -> Any:
    """Parse a web or SQL item in the coordinator, with the embedder's tokenizer (loaded once)."""
    model = settings.runtime.embedder_model
    if model not in _counter_cache:
        from transformers import AutoTokenizer

        from ragkit.assets import resolve_embedder
        from ragkit.embedding import TokenCounter

        _counter_cache[model] = TokenCounter(AutoTokenizer.from_pretrained(str(resolve_embedder(model))))
    return parse_item(
        item.name, item.size, item.read, item.parse, state, _counter_cache[model], settings, item.parser_read
    )
