"""Scale-out on Ray: ingest, the FAISS build and (through the evals workflow) batch evaluation on a Ray cluster.

The engine's invariants do not change: PostgreSQL is the truth and the only thing workers write (one
transaction per document, idempotent under Ray's at-least-once retries: ragkit/indexes/idempotent.py); the
coordinator (the process that runs `ragkit ingest --ray`) plans exactly as a local run, holds the KB lock and
builds FAISS from SQL in id-range shards (ragkit/indexes/index_build.py). Ray is imported only here and only
when a run asks for it (extra `ragkit[ray]`).

- cluster.py  connect to (or start) a cluster; the guards (PostgreSQL only); actor sizing
- stages.py   the Ray Data stages: ParseChunk (reads files by path), Embed (model once per actor), Write
- ingest.py   run_ingest_ray: plan -> parse -> embed -> write -> FAISS build -> the same IngestReport
- index.py    ray_fill: the FAISS shards as Ray tasks, merged by the coordinator
"""
