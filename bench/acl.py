"""Access control, measured (issue 19): the full-size leak run, and what enforcement costs.

    python bench/acl.py leaks [--combos 10000] [--pg-url URL | --pg-server] [--json out.json]
    python bench/acl.py cost  [--chunks 100000] [--groups 50] [--repeats 5] [--queries 100] [--json out.json]

`leaks` runs tests/test_acl_leaks.py's harness at full size: a KB of four tenants with overlapping grants (the
sample corpus plus generated files), random (principal, query, filters, mode, k, rerank, MMR) searches and asks
over every index type (Flat, HNSW32, IVF4,Flat), then after random grant / revoke / delete / re-ingest / reindex
steps, each compared with an oracle computed in Python from the grants. It prints the out-of-scope chunks found
(the goal: 0) per backend: SQLite; PostgreSQL with row-level security; PostgreSQL with ragkit's own SQL condition
off (RLS alone). --pg-server starts a throwaway PostgreSQL as the tests do (tests/pgserver.py).

`cost` builds a KB of --chunks chunks (generated text, HashEmbedder vectors of the bundled embedder's 384
dimensions, so FAISS does the work it does for real) across --groups groups, each document granted to one group
and every tenth to a second, and reads it as principals in 3 groups each (about 6-7% of the chunks) with access
control on, and as the operator with it off (the same KB folder opened with security.access_control = false):
the same queries, p50 and p95 per configuration (index type x mode x metadata filter), median over --repeats
repetitions that alternate which side goes first; the on/off ratio is taken per repetition, in one run. --profile
adds where the time goes (the SQL of allowed ids, FAISS, the chunk fetch, the keyword query).

Embedding is a HashEmbedder in both parts: no model loads, and query embedding (identical on and off) is not
what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the leak harness and the PostgreSQL recipe live with the tests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def use_hash_embedder(dim: int) -> None:
    from ragkit import build
    from ragkit.testing import HashEmbedder

    build.embedder_from = lambda cfg, manifest, root: HashEmbedder(dim, name=f"hash{dim}")


def machine() -> dict[str, Any]:
    import faiss
    import sqlalchemy

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


# -- leaks ---------------------------------------------------------------------------------------------------------


@contextmanager
def pg_database(url: str | None, start: bool) -> Iterator[str | None]:
    """A fresh database owned by a role RLS binds: on the server at `url` (an admin URL), or on one started here."""
    if not url and not start:
        yield None
        return
    import pgserver

    server = None
    if not url:
        bindir = pgserver.find_pg_bin()
        if bindir is None:
            raise SystemExit("no initdb/pg_ctl found: install postgresql or give --pg-url")
        server = pgserver.PgServer(bindir)
        server.start()
        url = server.admin_url
    admin = pgserver._AdminUrl(url)
    db = admin.create_app_database()
    try:
        yield db
    finally:
        admin.drop_database(db)
        admin.engine.dispose()
        if server is not None:
            server.stop()


def leak_run(label: str, combos: int, seed: int, url: str | None, enforce: bool) -> dict[str, Any]:
    import test_acl_leaks as harness

    from ragkit.indexes import acl as sql_acl

    per_spec = combos * 6 // 10 // len(harness.SPECS)  # 60 % before any change, 40 % after random changes
    steps = max(len(harness.MUTATIONS), combos // 250)
    per_step = (combos - per_spec * len(harness.SPECS)) // steps
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ragkit-acl-") as tmp:
        kb, docs, model = harness.fresh_kb(Path(tmp), url)
        with kb:
            sql_acl.ENFORCE_IN_SQL = enforce
            try:
                static, moving = harness.leak_suite(
                    kb, docs, model, seed=seed, per_spec=per_spec, steps=steps, per_step=per_step, complete=enforce
                )
            finally:
                sql_acl.ENFORCE_IN_SQL = True
            n_chunks = len(harness.Oracle.read(kb, model).chunks)
    out = {
        "backend": label,
        "combinations": static.combos + moving.combos,
        "asks": static.asks + moving.asks,
        "hits_checked": static.hits + moving.hits,
        "out_of_scope": static.out_of_scope + moving.out_of_scope,
        "out_of_scope_after_changes": moving.out_of_scope,
        "short_results": static.short + moving.short,
        "changes": steps,
        "chunks": n_chunks,
        "seconds": round(time.perf_counter() - t0, 1),
        "examples": (static.examples + moving.examples)[:5],
    }
    print(json.dumps(out), flush=True)
    return out


def cmd_leaks(args: argparse.Namespace) -> dict[str, Any]:
    use_hash_embedder(64)
    runs = [leak_run("sqlite", args.combos, args.seed, None, True)]
    if args.control:  # a negative control: nothing guards SQLite's reads without ragkit's condition
        runs.append(leak_run("sqlite, ragkit's condition off (control)", args.combos, args.seed, None, False))
    if args.pg_url or args.pg_server:
        with pg_database(args.pg_url, args.pg_server) as db:
            runs.append(leak_run("postgresql, RLS + ragkit's condition", args.combos, args.seed + 1, db, True))
        with pg_database(args.pg_url, args.pg_server) as db:
            runs.append(leak_run("postgresql, RLS alone", args.combos, args.seed + 2, db, False))
    print("\n| backend | combinations | asks | hits checked | out-of-scope | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(
            f"| {r['backend']} | {r['combinations']:,} | {r['asks']:,} | {r['hits_checked']:,} | "
            f"**{r['out_of_scope']}** | {r['seconds']} |"
        )
    return {"machine": machine(), "runs": runs}


# -- cost ----------------------------------------------------------------------------------------------------------

VOCAB = [f"w{i:04d}" for i in range(5000)]
DEPTS = 5  # documents are ingested in DEPTS folders, each stamped meta dept=bN (the metadata filter's field)


def build_cost_kb(work: Path, chunks: int, groups: int, per_doc: int, seed: int) -> Path:
    """Generated documents of per_doc chunks of 50 words, granted by an ACL rules file; returns the KB folder."""
    import ragkit
    from ragkit.access import admin

    kb_dir = work / "kb"
    stamp = work / "built.json"
    want = {"chunks": chunks, "groups": groups, "per_doc": per_doc, "seed": seed, "layout": 2}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return kb_dir
    shutil.rmtree(work, ignore_errors=True)
    rng = random.Random(seed)
    docs = work / "docs"
    n_docs = chunks // per_doc
    for d in range(n_docs):
        folder = docs / f"b{(d // groups) % DEPTS}"  # independent of the group (d % groups)
        folder.mkdir(parents=True, exist_ok=True)
        text = "\n\n".join(" ".join(rng.choices(VOCAB, k=50)) + "." for _ in range(per_doc))
        (folder / f"g{d % groups:02d}-{d:06d}.txt").write_text(text, encoding="utf-8")
    rules = ["[rules]"]
    for g in range(groups):
        rules.append(f'"g{g:02d}-*.txt" = ["group:g{g:02d}"]')
        rules.append(f'"g{g:02d}-*0.txt" = ["group:g{(g + 1) % groups:02d}"]')  # every tenth: a second group
    (work / "acl.toml").write_text("\n".join(rules) + "\n", encoding="utf-8")
    settings = {"security.access_control": True, "chunking.max_tokens": 64, "chunking.overlap": 0}
    t0 = time.perf_counter()
    with ragkit.open(kb_dir, **settings) as kb:
        for b in range(min(DEPTS, -(-n_docs // groups))):
            kb.ingest([docs / f"b{b}"], meta={"dept": f"b{b}"}, acl_rules=work / "acl.toml")
        stats = kb.as_principal(admin("bench")).stats()
    print(f"built {stats['chunks']:,} chunks in {stats['documents']:,} documents: {time.perf_counter() - t0:.0f} s")
    stamp.write_text(json.dumps(want))
    return kb_dir


class Timers:
    """Wall time spent inside chosen functions (patched in place), per label."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def reset(self) -> None:
        self.spent = {}

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()


def profiled() -> Timers:
    from ragkit.indexes import keyword, retriever, sql_store
    from ragkit.indexes.faiss_index import FaissIndex

    t = Timers()
    t.wrap(retriever.Retriever, "allowed_ids", "sql allowed ids")
    t.wrap(FaissIndex, "search", "faiss search")
    t.wrap(retriever.Retriever, "_dense", "dense (faiss + exact pass)")
    t.wrap(sql_store.SqlStore, "chunks", "sql chunk fetch")
    t.wrap(keyword.SqliteFts5, "search", "keyword query")
    return t


def latencies(kbs: list[Any], queries: list[str], mode: str, filters: str | None) -> list[float]:
    """Seconds per search, query i read by kbs[i % len(kbs)]."""
    out = []
    for i, q in enumerate(queries):
        kb = kbs[i % len(kbs)]
        t0 = time.perf_counter()
        kb.search(q, k=10, mode=mode, filters=filters)
        out.append(time.perf_counter() - t0)
    return out


def cache_allowed_ids() -> None:
    """--cached-ids: a PROTOTYPE of the fix proposed in docs/benchmarks.md, to measure its ceiling: each distinct
    allowed-ids statement (a reader's tokens plus the filters) runs once and its ids are reused. No invalidation:
    only for this read-only benchmark (a real cache must key on a generation that every write bumps)."""
    from sqlalchemy import Select

    from ragkit.indexes import retriever

    original = retriever.Retriever.allowed_ids
    cache: dict[str, Any] = {}

    def cached(self: Any, filters: Any) -> Any:
        if not isinstance(filters, Select):
            return original(self, filters)
        key = str(filters.compile(compile_kwargs={"literal_binds": True}))
        if key not in cache:
            cache[key] = original(self, filters)
        return cache[key]

    retriever.Retriever.allowed_ids = cached  # type: ignore[method-assign]


def cache_selectors() -> None:
    """--cached-selector: a PROTOTYPE of the next proposed fix: FAISS's IDSelectorBatch is built once per cached
    allowed-ids array (the engine's cache hands back the same array until the next write) instead of per query
    (~0.9 ms for 7,000 ids on this machine)."""
    from ragkit.indexes.faiss_index import FaissIndex

    original = FaissIndex._params
    memo: dict[int, tuple[np.ndarray, Any]] = {}

    def params(self: Any, allowed: Any, nprobe: Any, ef_search: Any) -> Any:
        if allowed is None or allowed.flags.writeable:  # only the cache's read-only arrays
            return original(self, allowed, nprobe, ef_search)
        got = memo.get(id(allowed))
        if got is None or got[0] is not allowed:
            sel = self._faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            got = memo[id(allowed)] = (allowed, sel)
        p, keep = original(self, None, nprobe, ef_search)
        p.sel = got[1]
        return p, [*keep, got[1]]

    FaissIndex._params = params  # type: ignore[method-assign]


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def cmd_cost(args: argparse.Namespace) -> dict[str, Any]:
    import ragkit
    from ragkit.access import Principal

    use_hash_embedder(args.dim)
    work = Path(args.workdir)
    kb_dir = build_cost_kb(work, args.chunks, args.groups, args.per_doc, args.seed)
    rng = random.Random(args.seed)
    principals = [
        Principal(f"reader{i}", groups=[f"g{g:02d}" for g in rng.sample(range(args.groups), 3)]) for i in range(20)
    ]
    queries = [" ".join(rng.sample(VOCAB, 3)) for _ in range(args.queries)]
    results: list[dict[str, Any]] = []
    if args.cached_ids:
        cache_allowed_ids()
    if args.cached_selector:
        cache_selectors()
    timers = profiled() if args.profile else None
    for spec in args.specs:
        with ragkit.open(kb_dir, **{"security.access_control": False}) as off:
            t0 = time.perf_counter()
            report = off.reindex(spec)
            print(f"index {report.index}: built in {time.perf_counter() - t0:.1f} s", flush=True)
        with (
            ragkit.open(kb_dir, **{"security.access_control": False}) as off,
            ragkit.open(kb_dir, **{"security.access_control": True}) as on,
        ):
            visible = [len(on.as_principal(p).chunk_ids()) for p in principals]
            total = len(off.chunk_ids())
            readers = [on.as_principal(p) for p in principals]
            for mode in args.modes:
                for filters in (None, "meta.dept=b2"):

                    def run(
                        side: str, mode: str = mode, filters: str | None = filters, rs: Any = readers
                    ) -> list[float]:
                        return latencies(rs if side == "on" else [off], queries, mode, filters)

                    run("on")  # warm: FAISS loaded, SQLite pages cached, both sides
                    run("off")
                    reps: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
                    ratios = []
                    spent: dict[str, dict[str, float]] = {"on": {}, "off": {}}
                    for r in range(args.repeats):
                        order = ("on", "off") if r % 2 == 0 else ("off", "on")
                        got = {}
                        for side in order:
                            if timers:
                                timers.reset()
                            lat = run(side)
                            got[side] = (percentile(lat, 50), percentile(lat, 95))
                            if timers:
                                for k, v in timers.spent.items():
                                    spent[side][k] = spent[side].get(k, 0.0) + v / len(queries) / args.repeats
                            reps[side].append(got[side])
                        ratios.append(got["on"][0] / got["off"][0])
                    row = {
                        "index": spec,
                        "mode": mode,
                        "filter": filters or "none",
                        "on_p50_ms": 1000 * statistics.median(p50 for p50, _ in reps["on"]),
                        "on_p95_ms": 1000 * statistics.median(p95 for _, p95 in reps["on"]),
                        "off_p50_ms": 1000 * statistics.median(p50 for p50, _ in reps["off"]),
                        "off_p95_ms": 1000 * statistics.median(p95 for _, p95 in reps["off"]),
                        "ratio_p50": statistics.median(ratios),
                        "ratios": [round(x, 3) for x in ratios],
                    }
                    if timers:
                        row["profile_ms"] = {
                            side: {k: round(1000 * v, 3) for k, v in sorted(d.items())} for side, d in spent.items()
                        }
                    results.append(row)
                    print(json.dumps(row), flush=True)
    if timers:
        timers.close()
    print(
        f"\nchunks {total:,}; a reader sees {min(visible):,}-{max(visible):,} "
        f"({100 * statistics.median(visible) / total:.1f} % median)"
    )
    print("\n| index | mode | filter | off p50 / p95 ms | on p50 / p95 ms | on/off p50 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['index']} | {r['mode']} | {r['filter']} | {r['off_p50_ms']:.2f} / {r['off_p95_ms']:.2f} | "
            f"{r['on_p50_ms']:.2f} / {r['on_p95_ms']:.2f} | **{r['ratio_p50']:.2f}x** |"
        )
    return {"machine": machine(), "chunks": total, "visible": visible, "rows": results, "args": vars(args)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lk = sub.add_parser("leaks", help="the full-size randomised leak run")
    lk.add_argument("--combos", type=int, default=10_000)
    lk.add_argument("--seed", type=int, default=10)
    lk.add_argument("--pg-url", help="an admin URL of a PostgreSQL server (a database and role are created)")
    lk.add_argument("--pg-server", action="store_true", help="start a throwaway PostgreSQL (tests/pgserver.py)")
    lk.add_argument("--control", action="store_true", help="also run SQLite with ragkit's condition off (must leak)")
    co = sub.add_parser("cost", help="search latency with access control on vs off")
    co.add_argument("--chunks", type=int, default=100_000)
    co.add_argument("--groups", type=int, default=50)
    co.add_argument("--per-doc", type=int, default=20)
    co.add_argument("--dim", type=int, default=384)
    co.add_argument("--queries", type=int, default=100)
    co.add_argument("--repeats", type=int, default=5)
    co.add_argument("--specs", nargs="+", default=["Flat", "auto", "HNSW32"])
    co.add_argument("--modes", nargs="+", default=["dense", "hybrid"])
    co.add_argument("--seed", type=int, default=0)
    co.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "ragkit-bench-acl"))
    co.add_argument("--profile", action="store_true", help="also time the parts (SQL ids, FAISS, fetch, keyword)")
    co.add_argument("--cached-ids", action="store_true", help="prototype: reuse each reader's allowed ids")
    co.add_argument("--cached-selector", action="store_true", help="prototype: one FAISS selector per cached array")
    for p in (lk, co):
        p.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    out = cmd_leaks(args) if args.cmd == "leaks" else cmd_cost(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
