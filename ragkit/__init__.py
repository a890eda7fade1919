"""ragkit: a local-first retrieval-augmented generation toolkit.

    import ragkit
    kb = ragkit.open("./kb")
    kb.ingest(["./docs"])
    ans = kb.ask("How do I rotate the keys?")
    print(ans.text, [c.uri for c in ans.citations])

Importing ragkit is cheap: torch, FAISS and the models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragkit._version import __version__ as __version__
from ragkit.access import Principal
from ragkit.errors import (
    AccessError,
    ConfigError,
    DependencyError,
    KnowledgeBaseError,
    ModelError,
    ParseError,
    RagkitError,
    SourceError,
    UsageError,
)
from ragkit.types import Answer, CheckReport, Chunk, Citation, Hit, IngestReport, ReindexReport

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase


def open(path: Any, *, create: bool = True, principal: Principal | None = None, **overrides: Any) -> KnowledgeBase:  # noqa: A001
    """Open (or create) the knowledge base at `path`. Overrides use dotted keys passed as
    a dict, e.g. ragkit.open("kb", **{"generator.max_new_tokens": 64}). principal: who reads
    (ragkit.Principal("alice", groups=["hr"])); required when the KB is access-controlled."""
    from ragkit.opening import open_kb

    return open_kb(path, create=create, overrides=overrides, principal=principal)


def __getattr__(name: str) -> Any:
    if name == "KnowledgeBase":
        from ragkit.api import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(name)


__all__ = [
    "AccessError",
    "Answer",
    "CheckReport",
    "Chunk",
    "Citation",
    "ConfigError",
    "DependencyError",
    "Hit",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "ModelError",
    "ParseError",
    "Principal",
    "RagkitError",
    "ReindexReport",
    "SourceError",
    "UsageError",
    "open",
]
