"""Where a run executes: in this process ("local") or on a Ray cluster ("ray", ragkit.distributed).

`RuntimeSettings` is what ingest, reindex and eval need to run on Ray; `ragkit.build.runtime_settings` fills it
from the config's [runtime] section (the one config reader). Nothing here imports Ray.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeSettings:
    backend: str = "local"  # "local" | "ray"
    address: str | None = None  # "auto", "HOST:6379", "ray://HOST:10001"; None: $RAY_ADDRESS or a new cluster
    parse_actors: int | None = None  # None: one per node
    embed_actors: int | None = None  # None: one per GPU, else one per node
    write_actors: int = 1
    index_shards: int | None = None  # None: one per node
    eval_actors: int | None = None  # None: one per node
    # the embedder each embed actor loads (once): a bundled name or a folder every node can read
    embedder_model: str = "all-MiniLM-L6-v2"
    embedder_device: str = "auto"
    embedder_batch_size: int = 32

    @property
    def ray(self) -> bool:
        return self.backend == "ray"
