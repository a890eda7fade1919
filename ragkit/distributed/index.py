"""The FAISS build as Ray tasks: the coordinator trains once (Store.rebuild), each task fills one id range of
the trained empty index with vectors it reads from PostgreSQL itself, and the coordinator merges the shards
in range order (ragkit/indexes/index_build.py), which gives the sequential build's index byte for byte."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ragkit.distributed.cluster import connected
from ragkit.errors import ConfigError
from ragkit.indexes.index_build import Fill, build_shard, merge_shards, split, to_bytes
from ragkit.runtime import RuntimeSettings

if TYPE_CHECKING:
    from ragkit.indexes.faiss_index import FaissIndex
    from ragkit.indexes.sql_store import SqlStore


def _shard(trained: bytes, ids: np.ndarray, db_url: str) -> bytes:
    from ragkit.indexes.engine import make_engine
    from ragkit.indexes.sql_store import SqlStore

    sql = SqlStore(make_engine(db_url))
    try:
        return build_shard(trained, ids, sql)
    finally:
        sql.engine.dispose()


def ray_fill(settings: RuntimeSettings) -> Fill:
    """A Fill for Store.rebuild that builds the shards as Ray tasks (index_shards, default one per node)."""

    def fill(index: FaissIndex, ids: np.ndarray, sql: SqlStore) -> FaissIndex:
        if sql.backend != "postgresql":
            raise ConfigError(
                "--ray needs a PostgreSQL database (--db postgresql+psycopg://...): the shard builders on other "
                "machines read the vectors from it, and SQLite is a file on one machine"
            )
        db_url = str(sql.engine.url.render_as_string(hide_password=False))
        with connected(settings) as ray:
            nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
            trained = to_bytes(index)
            ref = ray.put(trained)
            task = ray.remote(num_cpus=1, max_retries=3)(_shard)
            shards = ray.get([task.remote(ref, part, db_url) for part in split(ids, settings.index_shards or nodes)])
        return merge_shards(trained, shards, device=index.device)

    return fill
