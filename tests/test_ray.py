"""Scale-out on Ray (issue 22): a simulated two-node cluster gives the KB a single process gives.

One `ray.cluster_utils.Cluster` per session (two raylets of one CPU each, 200 MB object store each, loopback
only), one PostgreSQL server (tests/pgserver.py), the real bundled MiniLM (actors run in other processes: the
`hashed` fixture cannot reach them). Skipped cleanly where Ray is not installed (extra ragkit[ray]).

T1 ingest equals a single-process ingest (`compare_stores`: documents, chunks, vectors within 1e-5, top-10);
T2 a writer killed after 3 commits (one-shot fault hook), T3 the worker node removed once a third of the
documents are committed, T4 the coordinator killed (SIGKILL) and the command re-run: each still gives that KB,
and T4's re-run embeds only what was not committed; T5 the sharded FAISS build is
the sequential one (Flat, IVF-Flat; with and without filters); T6 `eval --ray --retrieval-only` writes the
local run's samples and metrics, and finishes a run interrupted locally; SQLite with --ray is refused.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SAMPLE_CORPUS

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(not importlib.util.find_spec("ray"), reason="Ray is not installed: pip install 'ragkit[ray]'"),
]

QUESTIONS = ROOT / "examples" / "sample_questions.jsonl"
NODE = {"num_cpus": 1, "object_store_memory": 200 * 2**20, "node_ip_address": "127.0.0.1"}  # one simulated node
WORDS = """invoice audit backup cluster deploy quota ledger vendor rotate badge laptop parking refund travel hotel
meal budget policy review incident pager escalate archive retention encrypt certificate firewall network printer
kitchen training mentor payroll holiday contract license storage replica failover latency""".split()


def _generated(folder: Path, n: int = 200) -> None:
    """n small Markdown files of deterministic text (one or two chunks each), plus one broken PDF."""
    folder.mkdir(parents=True)
    for i in range(n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(40 + i % 50)]
        body = " ".join(words)
        text = f"# Note {i}\n\nNote {i} is about {WORDS[i % len(WORDS)]}. {body}.\n\nSee also note {(i * 13) % n}.\n"
        (folder / f"note-{i:03}.md").write_text(text, encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    # loopback only: the tests never reach the network (conftest), and ray picks the host's address otherwise
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    worker = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
    cluster.worker = worker  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="session")
def ray_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray_corpus")
    shutil.copytree(SAMPLE_CORPUS, root / "sample")
    _generated(root / "generated")
    return root


@pytest.fixture(scope="session")
def baseline(pg_server: Any, ray_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The single-process KB (one parse thread) of the corpus, on PostgreSQL."""
    import ragkit

    url = pg_server.create_database()
    root = tmp_path_factory.mktemp("baseline") / "kb"
    with ragkit.open(root, database_url=url, **{"ingest.parse_workers": 0}) as kb:
        report = kb.ingest([ray_corpus])
    assert report.ingested > 200 and len(report.failed) == 1
    yield root, report
    pg_server.drop_database(url)


def _ray_kb(pg_server: Any, tmp_path: Path, **overrides: Any) -> Any:
    import ragkit

    url = pg_server.create_database()
    return ragkit.open(tmp_path / "kb", database_url=url, **{"runtime.backend": "ray", **overrides})


def _same_as_baseline(kb: Any, baseline: Any) -> None:
    import ragkit
    from ragkit.compare import compare_stores

    with ragkit.open(baseline[0]) as base:
        report = compare_stores(kb.store, base.store)
    assert report.same, report.differences
    assert report.chunks_a == report.chunks_b > 200 and report.queries == 20 and report.max_vector_delta <= 1e-5
    assert kb.check(repair=False).ok


def test_t1_two_node_ingest_equals_a_single_process_ingest(
    ray_cluster: Any, pg_server: Any, ray_corpus: Path, baseline: Any, tmp_path: Path
) -> None:
    ticks: list[tuple[int, int]] = []
    with _ray_kb(pg_server, tmp_path) as kb:
        report = kb.ingest([ray_corpus], progress=lambda done, total, name: ticks.append((done, total)))
        base = baseline[1]
        assert (report.ingested, report.unchanged, report.chunks_added) == (base.ingested, 0, base.chunks_added)
        assert [f.uri for f in report.failed] == [f.uri for f in base.failed] and report.files_seen == base.files_seen
        assert ticks[0] == (0, base.files_seen) and ticks[-1] == (base.files_seen, base.files_seen)
        _same_as_baseline(kb, baseline)
    from conftest import run

    again = run("ingest", ray_corpus, "--kb", tmp_path / "kb", "--ray", "--json")  # planned as locally: no work
    assert again.exit_code == 3, again.output  # partial: the broken PDF is reported again
    data = json.loads(again.stdout)
    assert (data["ingested"], data["unchanged"], len(data["failed"])) == (0, base.ingested, 1)


def test_t2_a_writer_killed_mid_ingest_leaves_the_same_kb(
    ray_cluster: Any, pg_server: Any, ray_corpus: Path, baseline: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragkit.distributed.ingest import FAULT_ENV

    marker = tmp_path / "writer-died"
    monkeypatch.setenv(FAULT_ENV, f"3:{marker}")
    with _ray_kb(pg_server, tmp_path) as kb:
        report = kb.ingest([ray_corpus])
        assert marker.exists()  # the writer did exit after 3 commits; Ray restarted it and retried its batch
        assert (report.ingested, report.chunks_added) == (baseline[1].ingested, baseline[1].chunks_added)
        _same_as_baseline(kb, baseline)  # no duplicate uri (unique), no orphan chunk, nothing missing


def _documents(url: str, status: str = "%") -> int:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            query = text("SELECT count(*) FROM documents WHERE status LIKE :s")
            return int(c.execute(query, {"s": status}).scalar() or 0)
    except Exception:  # the tables are not there yet
        return 0
    finally:
        engine.dispose()


def test_t3_a_node_removed_mid_ingest_leaves_the_same_kb(
    ray_cluster: Any, pg_server: Any, ray_corpus: Path, baseline: Any, tmp_path: Path
) -> None:
    import threading
    import time

    removed: list[int] = []
    with _ray_kb(pg_server, tmp_path) as kb:
        url, stop = kb.config.database_url, threading.Event()

        def remove_the_worker_node() -> None:  # once a third of the documents are committed
            while not stop.is_set():
                if (n := _documents(url)) >= (baseline[1].ingested + 1) // 3:
                    ray_cluster.remove_node(ray_cluster.worker)
                    removed.append(n)
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=remove_the_worker_node)
        killer.start()
        try:
            report = kb.ingest([ray_corpus])
        finally:
            stop.set()
            killer.join()
            ray_cluster.worker = ray_cluster.add_node(**NODE)  # the next tests get their two nodes back
            ray_cluster.wait_for_nodes()
        assert removed and removed[0] < baseline[1].ingested  # the node went while the run was under way
        assert (report.ingested, report.chunks_added) == (baseline[1].ingested, baseline[1].chunks_added)
        _same_as_baseline(kb, baseline)


def test_t4_a_killed_coordinator_is_finished_by_a_rerun_that_redoes_only_the_rest(
    ray_cluster: Any, pg_server: Any, ray_corpus: Path, baseline: Any, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    import ragkit

    url = pg_server.create_database()
    root = tmp_path / "kb"
    code = (
        "import ragkit\n"
        f"with ragkit.open({str(root)!r}, database_url={url!r}, **{{'runtime.backend': 'ray', "
        f"'runtime.address': {ray_cluster.address!r}}}) as kb:\n"
        f"    kb.ingest([{str(ray_corpus)!r}])\n"
    )
    log = (tmp_path / "driver.log").open("wb")
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while _documents(url) < 40 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)  # the coordinator dies: its Ray job, actors and open transactions with it
    driver.wait()
    log.close()
    assert driver.returncode == -signal.SIGKILL, (tmp_path / "driver.log").read_text(errors="replace")[-2000:]
    committed = _documents(url, "ok")
    assert 30 <= committed < baseline[1].ingested
    with ragkit.open(root) as kb:  # runtime.backend = "ray" was recorded in the new KB's ragkit.toml
        report = kb.ingest([ray_corpus])
        # what the killed run committed is skipped unread (same size and mtime); only the rest is embedded
        assert report.unchanged == committed and report.ingested == baseline[1].ingested - committed
        _same_as_baseline(kb, baseline)


def test_t5_the_sharded_faiss_build_is_the_sequential_one(
    ray_cluster: Any, pg_server: Any, ray_corpus: Path, baseline: Any, tmp_path: Path
) -> None:
    import ragkit
    from ragkit import build

    with ragkit.open(baseline[0]) as kb:
        queries = ["hotel costs per night", "rotate production keys", "backup failover replica", "note 17"]
        for spec in ("Flat", "IVF4,Flat"):
            kb.store.rebuild(spec)  # sequential, in this process
            sequential = kb.paths.index.read_bytes()
            filters = (None, ("source=*.md",), ("source=*/generated/*", "section=Note 1*"))
            expect = {
                f: [[h.chunk.id for h in hs] for hs in kb.search_batch(queries, 10, filters=f, mode="dense")]
                for f in filters
            }
            fill = build.index_fill(build.with_runtime(kb.config, "ray"))
            report = kb.store.rebuild(spec, fill)  # the shards as Ray tasks (one per node), merged here
            assert report.vectors == len(kb.chunk_ids()) and kb.paths.index.read_bytes() == sequential
            for f, ids in expect.items():
                assert [[h.chunk.id for h in hs] for hs in kb.search_batch(queries, 10, filters=f, mode="dense")] == ids
    from conftest import run

    done = run("reindex", "--kb", baseline[0], "--spec", "auto", "--ray", "--json")  # the CLI way, back to auto
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["resolved"] == "Flat"


def _strip(path: Path) -> list[dict[str, Any]]:
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for r in recs:
        r.pop("timings", None)
    return recs


def _metrics(run_dir: Path) -> dict[str, Any]:
    m = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return {k: v for k, v in m.items() if "latency" not in k}


def test_t6_eval_on_ray_writes_the_local_run(ray_cluster: Any, baseline: Any) -> None:
    import ragkit
    from ragkit import build

    with ragkit.open(baseline[0]) as kb:
        local = kb.evaluate(QUESTIONS, name="local", generate=False)
        kb.config = build.with_runtime(kb.config, "ray")
        on_ray = kb.evaluate(QUESTIONS, name="ray", generate=False)
        assert _strip(on_ray.run_dir / "samples.jsonl") == _strip(local.run_dir / "samples.jsonl")
        assert _metrics(on_ray.run_dir) == _metrics(local.run_dir) and on_ray.n_samples == local.n_samples > 5
        # a run interrupted locally (2 questions recorded, no metrics.json) is finished on Ray
        kb.config = build.with_runtime(kb.config, "local")
        cut = kb.evaluate(QUESTIONS, name="resumed", generate=False)
        samples = (cut.run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()
        (cut.run_dir / "samples.jsonl").write_text("\n".join(samples[:2]) + "\n", encoding="utf-8")
        (cut.run_dir / "metrics.json").unlink()
        kb.config = build.with_runtime(kb.config, "ray")
        finished = kb.evaluate(QUESTIONS, name="resumed", generate=False)
        assert finished.run_dir == cut.run_dir and finished.resumed == 2
        assert _strip(finished.run_dir / "samples.jsonl") == _strip(local.run_dir / "samples.jsonl")


def test_sources_a_node_cannot_read_are_refused_before_any_work(ray_cluster: Any, tmp_path: Path) -> None:
    import ray

    from ragkit.distributed.cluster import check_visible
    from ragkit.errors import ConfigError

    seen = tmp_path / "here.md"
    seen.write_text("# here\n", encoding="utf-8")
    check_visible(ray, [str(seen)])  # every (simulated) node reads this machine's files
    with pytest.raises(ConfigError, match="cannot read .*gone.md; every node must see the sources at the same path"):
        check_visible(ray, [str(seen), str(tmp_path / "gone.md")])


def test_sqlite_with_ray_is_refused_with_the_reason(tmp_path: Path, hashed: None) -> None:
    import ragkit
    from ragkit.errors import ConfigError

    with ragkit.open(tmp_path / "kb", **{"runtime.backend": "ray"}) as kb:
        with pytest.raises(ConfigError, match="PostgreSQL.*SQLite is a file on one machine"):
            kb.ingest([SAMPLE_CORPUS])
        assert kb.store.counts()["documents"] == 0
