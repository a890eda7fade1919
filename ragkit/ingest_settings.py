"""What one ingest run needs from the config, plus the run's own metadata and grants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ragkit.access import AclDeclaration
from ragkit.errors import UsageError
from ragkit.runtime import RuntimeSettings
from ragkit.types import PARSER_META, Document

# document meta keys ragkit writes itself (the size and mtime columns, which --filter modified< reads, and the
# version of the parser that read the document)
RESERVED_META = frozenset({"size", "mtime", PARSER_META})


def check_meta(meta: dict[str, str] | Sequence[tuple[str, str]] | None) -> None:
    """Refuse user metadata keys that would overwrite ragkit's own bookkeeping (UsageError)."""
    keys = [k for k, _ in (meta.items() if isinstance(meta, dict) else meta or ())]
    taken = sorted(k for k in keys if k.strip().lower() in RESERVED_META)
    if taken:
        raise UsageError(
            f"--meta {taken[0]}: reserved key (ragkit records each document's size, mtime and parser itself); "
            "choose another name, e.g. file_size"
        )


@dataclass(frozen=True)
class IngestSettings:
    max_tokens: int
    overlap: int
    max_file_bytes: int
    parser: str = "auto"
    json_field: str = "text"
    url_timeout_s: float = 20.0
    batch_chunks: int | None = None  # chunks per embedding call; None = sized by time (ragkit/ingest_embed.py)
    save_every_s: float = 30.0  # bounds the FAISS work a crash can lose (it is repaired from SQL anyway)
    meta: tuple[tuple[str, str], ...] = ()  # user metadata stamped on every document (tenant, team, ...)
    parse_workers: int | None = None  # parser processes; None = by core count (parse_workers()), 0/1 = a thread
    acl: AclDeclaration = field(default_factory=AclDeclaration)  # who may read what this run ingests
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)  # this process, or a Ray cluster

    def stamp(self, doc: Document) -> Document:
        """The document with this run's metadata and grants (ragkit.access) applied."""
        meta = {**doc.meta, **dict(self.meta)} if self.meta else doc.meta
        return replace(doc, meta=meta, grants=self.acl.grants_for(doc.uri, doc.grants))
