from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkit.connectors.parsing import build_document
from ragkit.indexes.faiss_index import FaissIndex
from ragkit.indexes.sql_store import SqlStore, make_engine
from ragkit.types import ChunkSpan


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _doc(uri: str, texts: list[str], digest: str = "h1"):  # type: ignore[no-untyped-def]
    doc = build_document(uri, [(t, "NarrativeText", None) for t in texts], digest, {"size": 1})
    spans = [ChunkSpan(e.text, e.start, e.end, len(e.text.split()) + 2) for e in doc.elements]
    return doc, spans


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    """The store contract runs on every backend: SQLite, then PostgreSQL (tests/pgserver.py)."""
    st = SqlStore(make_engine(db_url))
    yield st
    st.engine.dispose()


def test_replace_document_round_trip(store: SqlStore) -> None:
    doc, spans = _doc("a.txt", ["alpha", "beta"])
    vecs = unit_vectors(2, 8, 0)
    removed, ids = store.replace_document(doc, spans, vecs)
    assert removed == [] and len(ids) == 2
    chunks = store.chunks(ids)
    assert [chunks[i].text for i in ids] == ["alpha", "beta"] and chunks[ids[0]].uri == "a.txt"
    state = store.document_states()["a.txt"]
    assert (state.content_hash, state.status, state.size) == ("h1", "ok", 1)
    got_ids, got_vecs = next(store.vectors(ids, 8))
    order = np.argsort(got_ids)
    np.testing.assert_array_equal(got_vecs[order], vecs)
    assert store.counts() == {"documents": 1, "failed_documents": 0, "chunks": 2}


def test_replacing_a_document_never_reuses_chunk_ids(store: SqlStore) -> None:
    doc, spans = _doc("a.txt", ["alpha", "beta"])
    _, first = store.replace_document(doc, spans, unit_vectors(2, 8, 0))
    doc2, spans2 = _doc("a.txt", ["gamma"], digest="h2")
    removed, second = store.replace_document(doc2, spans2, unit_vectors(1, 8, 1))
    assert sorted(removed) == sorted(first)
    assert min(second) > max(first)  # AUTOINCREMENT / identity: a stale FAISS id can never point at new text
    assert store.chunk_ids().tolist() == second
    store.delete_documents(["a.txt"])  # even once the table is empty, the highest ids stay used
    _, third = store.replace_document(*_doc("b.txt", ["delta"]), unit_vectors(1, 8, 2))
    assert min(third) > max(second)


def test_embedding_cache_finds_identical_text(store: SqlStore) -> None:
    from ragkit.indexes.sql_store import text_hash

    doc, spans = _doc("a.txt", ["alpha", "beta"])
    vecs = unit_vectors(2, 8, 0)
    store.replace_document(doc, spans, vecs)
    cached = store.cached_vectors([text_hash("beta"), text_hash("nope")], 8)
    assert list(cached) == [text_hash("beta")]
    np.testing.assert_array_equal(cached[text_hash("beta")], vecs[1])


def test_delete_documents(store: SqlStore) -> None:
    doc, spans = _doc("a.txt", ["alpha", "beta"])
    _, ids = store.replace_document(doc, spans, unit_vectors(2, 8, 0))
    assert sorted(store.delete_documents(["a.txt", "missing.txt"])) == sorted(ids)
    assert store.document_states() == {}


def test_failure_replaces_document_and_is_listed(store: SqlStore) -> None:
    doc, spans = _doc("a.txt", ["alpha"])
    _, ids = store.replace_document(doc, spans, unit_vectors(1, 8, 0))
    assert store.record_failure("a.txt", "h2", "a.txt: empty file") == ids
    assert store.document_states()["a.txt"].status == "error"
    assert store.failures() == [("a.txt", "a.txt: empty file")]
    assert store.counts()["chunks"] == 0


def test_text_and_metadata_round_trip_on_every_backend(store: SqlStore) -> None:
    """NUL (which Postgres text rejects) becomes U+FFFD, keeping offsets; odd metadata is stored as JSON."""
    from dataclasses import replace
    from decimal import Decimal

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ragkit.indexes.sql_store import DocumentRow

    doc, spans = _doc("ü/ß.txt", ["zero?byte", "émoji 🙂 ok"])
    spans[0] = replace(spans[0], text="zero\x00byte")  # parsers drop NUL; the store must not depend on it
    meta = {"size": 1, "price": Decimal("9.50"), "nan": float("nan"), "tags": ["a\x00", 2]}
    _, ids = store.replace_document(replace(doc, meta=meta), spans, unit_vectors(2, 8, 0))
    chunks = store.chunks(ids)
    assert [chunks[i].text for i in ids] == ["zero\ufffdbyte", "émoji 🙂 ok"]
    assert len(chunks[ids[0]].text) == spans[0].end - spans[0].start
    assert chunks[ids[0]].uri == "ü/ß.txt"
    with Session(store.engine) as s:
        assert s.scalar(select(DocumentRow.meta)) == {"size": 1, "price": "9.50", "nan": None, "tags": ["a\ufffd", 2]}
    assert store.record_failure("bad.txt", "h3", "bad\x00reason") == []
    assert store.failures() == [("bad.txt", "bad\ufffdreason")]


def test_vectors_come_back_bit_exact_in_batches(store: SqlStore) -> None:
    vecs = unit_vectors(50, 16, 4)
    _, ids = store.replace_document(*_doc("a.txt", [f"t{i}" for i in range(50)]), vecs)
    got = list(store.vectors(ids, 16, batch=20))
    assert [len(b[0]) for b in got] == [20, 20, 10]
    all_ids = np.concatenate([b[0] for b in got])
    all_vecs = np.concatenate([b[1] for b in got])
    assert all_vecs.dtype == np.float32
    np.testing.assert_array_equal(all_vecs[np.argsort(all_ids)], vecs[np.argsort(ids)])


def test_meta_number_never_errors_and_never_invents_a_number(store: SqlStore) -> None:
    """Numeric metadata filters compile to meta_number; text such as "n/a" is NULL, not an error or 0."""
    from dataclasses import replace

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ragkit.indexes.filters import meta_number
    from ragkit.indexes.sql_store import DocumentRow

    prices = {"a": 5, "b": 2.5, "c": "7", "d": "n/a", "e": " -1e1 ", "f": None, "g": "1.2.3"}
    for name, price in prices.items():
        doc, spans = _doc(f"{name}.txt", [name])
        store.replace_document(replace(doc, meta={"price": price}), spans, unit_vectors(1, 8, 0))
    store.replace_document(*_doc("none.txt", ["none"]), unit_vectors(1, 8, 0))  # no price key at all
    with Session(store.engine) as s:
        got = dict(s.execute(select(DocumentRow.uri, meta_number("price"))).all())
        cheap = set(s.scalars(select(DocumentRow.uri).where(meta_number("price") <= 5)))
    numbers = {"a.txt": 5, "b.txt": 2.5, "c.txt": 7, "e.txt": -10}
    assert got == {**dict.fromkeys(["d.txt", "f.txt", "g.txt", "none.txt"]), **numbers}
    assert cheap == {"a.txt", "b.txt", "e.txt"}


def test_faiss_ids_are_sql_ids_and_survive_save(tmp_path: Path) -> None:
    index = FaissIndex.create(8, "Flat", device="cpu")
    x = unit_vectors(20, 8, 0)
    ids = np.arange(100, 120, dtype=np.int64)
    index.add(ids, x)
    _, got = index.search(x[:5], k=1)
    assert got[:, 0].tolist() == [100, 101, 102, 103, 104]
    assert index.remove(np.array([100, 101, 999], dtype=np.int64)) == 2
    index.save(tmp_path / "index.faiss")
    loaded = FaissIndex.load(tmp_path / "index.faiss", device="cpu")
    assert sorted(loaded.ids().tolist()) == list(range(102, 120))
    _, got = loaded.search(x[:1], k=3)
    assert 100 not in got[0].tolist()
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_index_returns_minus_one() -> None:
    index = FaissIndex.create(8, "Flat", device="cpu")
    scores, ids = index.search(unit_vectors(2, 8, 1), k=3)
    assert ids.tolist() == [[-1, -1, -1], [-1, -1, -1]]


def test_bad_spec_is_a_config_error() -> None:
    from ragkit.errors import ConfigError

    with pytest.raises(ConfigError, match="invalid FAISS index spec"):
        FaissIndex.create(8, "NoSuchIndex")


def test_gpu_search_maps_positions_back_to_sql_ids() -> None:
    """The GPU path searches a copy of the inner index and maps positions through the IDMap2 table; a CPU
    clone stands in for the GPU copy here (tests/test_gpu.py runs the real one where a GPU exists)."""
    import faiss

    index = FaissIndex.create(8, "Flat", device="cpu")
    x = unit_vectors(50, 8, 3)
    index.add(np.arange(1000, 1050, dtype=np.int64), x)
    index.remove(np.array([1000, 1001], dtype=np.int64))
    index._gpu = faiss.clone_index(faiss.downcast_index(index._cpu.index))
    index._gpu_ids = index.ids()
    cpu_scores, cpu_ids = index._cpu.search(x[:5], 60)  # 60 > 48 stored: the tail is empty (-1)
    gpu_scores, gpu_ids = index._gpu_search(x[:5], 60, None)  # type: ignore[misc]
    np.testing.assert_array_equal(gpu_ids, cpu_ids)
    assert gpu_ids[0, -1] == -1
