"""The Ray Data stages of a distributed ingest: callable classes, so Ray runs each as an actor pool and the
tokenizer, the embedder and the database connection are set up once per actor, not per batch.

Rows are tiny: a uri and a pickled payload. Parse rows carry a path, never file bytes (the actor reads the file
itself; every node must see the same path). Failures of a document are data (a failure row, as in a local
run), never exceptions: Ray retries only what a dead process left unfinished, and a retried write is a no-op.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.indexes.sql_store import text_hash
from ragkit.ingest_plan import Parsed, parse_item
from ragkit.ingest_settings import IngestSettings

Batch = dict[str, Any]  # Ray Data's "numpy" batch format: column -> array


def _rows(batch: Batch) -> list[tuple[str, dict[str, Any]]]:
    return [(str(u), pickle.loads(p)) for u, p in zip(batch["uri"], batch["payload"], strict=True)]


def _batch(rows: list[tuple[str, dict[str, Any]]]) -> Batch:
    payload = np.empty(len(rows), dtype=object)
    payload[:] = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for _, r in rows]
    return {"uri": np.array([u for u, _ in rows], dtype=object), "payload": payload}


def _threads(cpus: float) -> None:
    """torch in an actor uses the CPUs the actor asked for (Ray sets no thread count of its own)."""
    import torch

    torch.set_num_threads(max(1, round(cpus)))


class ParseChunk:
    """Read, hash, parse and chunk files by path with the embedder's tokenizer (loaded once per actor)."""

    def __init__(self, model: str, settings: IngestSettings) -> None:
        from transformers import AutoTokenizer

        from ragkit.assets import quiet_transformers, resolve_embedder, set_offline_env
        from ragkit.embedding import TokenCounter

        set_offline_env()
        quiet_transformers()
        self.counter = TokenCounter(AutoTokenizer.from_pretrained(str(resolve_embedder(model))))
        self.settings = settings

    def __call__(self, batch: Batch) -> Batch:
        from ragkit.connectors.files import parse_file, read_file

        out = []
        for uri, row in _rows(batch):
            if row.get("parsed") is None:  # a file: parse it here (web and SQL items were parsed by the driver)
                path, options = Path(row["path"]), row["options"]
                row["parsed"] = parse_item(
                    path.name,
                    row["size"],
                    lambda p=path: read_file(p),  # type: ignore[misc]
                    lambda d, p=path, o=options: parse_file(p, d, o),  # type: ignore[misc]
                    row["state"],
                    self.counter,
                    self.settings,
                )
            out.append((uri, row))
        return _batch(out)


class Embed:
    """Vectors for the chunks of parsed documents: the embedding cache in SQL first, the model for the rest."""

    def __init__(self, model: str, device: str, batch_size: int, cpus: float, db_url: str) -> None:
        from ragkit.embedding import SentenceTransformerEmbedder
        from ragkit.indexes.engine import make_engine
        from ragkit.indexes.sql_store import SqlStore

        _threads(cpus)
        self.embedder = SentenceTransformerEmbedder(model, device=device, batch_size=batch_size)
        self.sql = SqlStore(make_engine(db_url))

    def __call__(self, batch: Batch) -> Batch:
        rows = _rows(batch)
        ready = [r for _, r in rows if r["parsed"].failure is None and not r["parsed"].unchanged]
        texts = [sp.text for r in ready for sp in r["parsed"].spans]
        hashes = [text_hash(t) for t in texts]
        cached = self.sql.cached_vectors(hashes, self.embedder.dim)
        fresh = [i for i, h in enumerate(hashes) if h not in cached]
        vectors = np.empty((len(texts), self.embedder.dim), dtype=np.float32)
        if fresh:
            vectors[fresh] = self.embedder.embed([texts[i] for i in fresh])
        for i, h in enumerate(hashes):
            if h in cached:
                vectors[i] = cached[h]
        lo = 0
        for r in ready:
            n = len(r["parsed"].spans)
            r["vectors"] = vectors[lo : lo + n].copy()
            lo += n
        return _batch(rows)


class Write:
    """One PostgreSQL transaction per document (idempotent: a retried write of a committed document is a no-op).

    fault: "N:MARKER" makes this writer's process exit after N commits, once (the marker file records that it
    fired): the fault hook of the crash tests (RAGKIT_FAULT_WRITER_EXIT in the coordinator's environment).
    """

    def __init__(self, db_url: str, settings: IngestSettings, fault: str | None = None) -> None:
        from ragkit.indexes.engine import make_engine
        from ragkit.indexes.sql_store import SqlStore

        self.sql = SqlStore(make_engine(db_url))
        self.settings = settings
        self.fault = fault
        self.commits = 0

    def _maybe_fail(self) -> None:
        if not self.fault:
            return
        after, _, marker = self.fault.partition(":")
        if self.commits >= int(after) and marker and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()), encoding="utf-8")
            os._exit(1)  # a killed worker: no cleanup, no exception for Ray to see

    def __call__(self, batch: Batch) -> Batch:
        out = []
        for uri, row in _rows(batch):
            p: Parsed = row["parsed"]
            status: dict[str, Any] = {"name": row["name"], "chunks": 0, "notes": (), "failure": None}
            if p.failure is not None:
                self.sql.record_failure(uri, p.digest, p.failure, row["size"], row["mtime"], row["parser"])
                status |= {"kind": "failed", "failure": p.failure}
            elif p.unchanged:
                self.sql.touch(uri, row["size"], row["mtime"])
                status["kind"] = "unchanged"
            else:
                assert p.doc is not None
                self.sql.replace_document(self.settings.stamp(p.doc), p.spans, row["vectors"])
                status |= {"kind": "ok", "chunks": len(p.spans), "notes": p.doc.notes, "reread": p.reread}
            self.commits += 1
            out.append((uri, status))
            self._maybe_fail()
        return _batch(out)
