"""The Python API end to end with the real bundled embedder (and GPT where marked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ragkit
from ragkit.answering import MIN_RELEVANCE, default_min_relevance
from ragkit.errors import KnowledgeBaseError, SourceError
from ragkit.kbdir import KbPaths, WriterLock

pytestmark = pytest.mark.slow


def test_search_finds_the_file_that_holds_the_answer(built_kb: Path) -> None:
    with ragkit.open(built_kb, create=False) as kb:
        cases = {
            "How often must production API keys be rotated?": "key-rotation.md",
            "How fast must a page be acknowledged by the on-call engineer?": "on-call.txt",
            "Hotel reimbursement limit per night": "expenses.pdf",
            "Where is the laptop collected on the first morning?": "onboarding.docx",
            "How long is customer telemetry kept?": "data-retention.html",
        }
        hits = kb.search_batch(list(cases), k=3)
        for (question, name), ranked in zip(cases.items(), hits, strict=True):
            assert Path(ranked[0].chunk.uri).name == name, question
            assert [h.rank for h in ranked] == [1, 2, 3]
            assert ranked[0].score >= ranked[1].score
        pdf_hit = kb.search("Hotel reimbursement limit per night", k=1)[0]
        assert pdf_hit.chunk.page == 2
        backups = kb.search("How long are nightly backups kept?", k=1)[0].chunk
        assert "ListItem" in backups.kinds and backups.section == "Backups"  # element kinds stored per chunk


def test_manifest_and_config_are_written(built_kb: Path) -> None:
    import json

    manifest = json.loads((built_kb / "manifest.json").read_text())
    assert manifest["embedder"] == {"name": "all-MiniLM-L6-v2", "dim": 384, "max_tokens": 256}
    assert manifest["counts"]["documents"] == 5 and manifest["counts"]["chunks"] > 5
    assert 'model = "all-MiniLM-L6-v2"' in (built_kb / "ragkit.toml").read_text()
    assert (built_kb / "index.faiss").exists() and (built_kb / "ragkit.db").exists()


def test_reingest_skips_unchanged_replaces_changed_and_reports_failures(corpus: Path, tmp_path: Path) -> None:
    with ragkit.open(tmp_path / "kb") as kb:
        first = kb.ingest([corpus])
        assert (first.ingested, first.unchanged, first.failed) == (5, 0, ())
        n_chunks = kb.store.counts()["chunks"]

        again = kb.ingest([corpus])
        assert (again.ingested, again.unchanged, again.chunks_added) == (0, 5, 0)
        assert kb.store.counts()["chunks"] == n_chunks

        txt = corpus / "on-call.txt"
        txt.write_text("The on-call rotation changes every second Thursday at noon.", encoding="utf-8")
        (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
        third = kb.ingest([corpus])
        assert third.ingested == 1 and third.unchanged == 4
        assert [Path(f.uri).name for f in third.failed] == ["broken.pdf"]
        assert "not a readable PDF" in third.failed[0].reason
        assert third.partial
        fourth = kb.ingest([corpus])  # the broken file is untouched: reported again, not re-parsed
        assert (fourth.ingested, fourth.unchanged) == (0, 5) and fourth.failed == third.failed
        hit = kb.search("When does the on-call rotation change?", k=1)[0]
        assert "second Thursday" in hit.chunk.text
        # the old version of the file is gone from SQL and FAISS alike
        assert all("15 minutes" not in h.chunk.text for h in kb.search("acknowledge the page", k=10))
        assert sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())


def test_faiss_is_repaired_from_sql_on_open(built_kb: Path, tmp_path: Path) -> None:
    import shutil

    kb_dir = tmp_path / "copy"
    shutil.copytree(built_kb, kb_dir)
    (kb_dir / "index.faiss").unlink()  # as if the process died before the index was first saved
    with ragkit.open(kb_dir, create=False) as kb:
        assert len(kb.index) == kb.store.counts()["chunks"]
        assert Path(kb.search("API key rotation", k=1)[0].chunk.uri).name == "key-rotation.md"
        # a stale id in FAISS (its chunk was deleted from SQL) is dropped too
        kb.index.add(np.array([10_000], dtype=np.int64), np.ones((1, 384), dtype=np.float32) / np.sqrt(384))
        kb.store.sync()
        assert 10_000 not in kb.index.ids().tolist()


def test_user_errors(tmp_path: Path, built_kb: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="no knowledge base"):
        ragkit.open(tmp_path / "nothing", create=False)
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "file.txt").write_text("x")
    with pytest.raises(KnowledgeBaseError, match="not a ragkit knowledge base"):
        ragkit.open(tmp_path / "occupied")
    with ragkit.open(built_kb, create=False) as kb, pytest.raises(SourceError, match="no such file"):
        kb.ingest([tmp_path / "missing"])


def test_a_different_embedder_is_refused(built_kb: Path, tmp_path: Path) -> None:
    import shutil

    from ragkit.assets import resolve_embedder

    other = tmp_path / "my-embedder"
    shutil.copytree(resolve_embedder("all-MiniLM-L6-v2"), other)  # a local path works as a model spec
    with (
        ragkit.open(built_kb, create=False, **{"embedder.model": str(other)}) as kb,
        pytest.raises(KnowledgeBaseError, match="was built with embedder 'all-MiniLM-L6-v2'"),
    ):
        kb.search("anything")


def test_second_writer_is_refused(built_kb: Path) -> None:
    with WriterLock(KbPaths(built_kb)), ragkit.open(built_kb, create=False) as kb:
        with pytest.raises(KnowledgeBaseError, match="locked by PID"):
            kb.ingest([Path(__file__)])
        assert kb.search("API keys", k=1)  # readers keep working while a writer holds the lock


def test_ask_cites_the_one_file_that_holds_the_answer(built_kb: Path) -> None:
    with ragkit.open(built_kb, create=False, **{"generator.max_new_tokens": 48}) as kb:
        ans = kb.ask("Where do new employees collect their laptop?")
    assert "floor 3" in ans.text
    assert {Path(c.uri).name for c in ans.citations} == {"onboarding.docx"}
    assert not ans.abstained
    assert 0 < ans.prompt_tokens <= 2048 - 48 and 0 < ans.completion_tokens <= 48
    assert set(ans.timings) == {"retrieve", "pack", "generate", "check", "total"}
    assert len(ans.hits) == 3 and ans.dropped_hits == 0


def test_the_relevance_floor_defaults_to_the_measured_value_for_the_bundled_embedder(built_kb: Path) -> None:
    with ragkit.open(built_kb, create=False) as kb:
        # 0.40, or 0.20 where the KB's generator is Qwen 1.5B (GENERATOR_MIN_RELEVANCE)
        measured = default_min_relevance("all-MiniLM-L6-v2", kb.config.generator.model)
        assert kb.answer_options().min_relevance == measured and MIN_RELEVANCE["all-MiniLM-L6-v2"] == 0.40
        assert default_min_relevance("all-MiniLM-L6-v2", "Qwen2.5-Coder-1.5B-Instruct") == 0.20
        assert default_min_relevance("all-MiniLM-L6-v2", "SmolLM2-135M-Instruct") == 0.40
        assert kb.answer_options(min_relevance=0.0).min_relevance == 0.0  # the caller turns it off
    with ragkit.open(built_kb, create=False, **{"generator.min_relevance": 0.2}) as kb:
        assert kb.answer_options().min_relevance == 0.2
    # another embedder has no measured floor, so none is applied unless configured
    with ragkit.open(built_kb, create=False, **{"embedder.model": "/models/my-embedder"}) as kb:
        assert kb.answer_options().min_relevance == 0.0


def test_keyword_hits_get_their_relevance_measured_before_the_floor_applies(built_kb: Path) -> None:
    # keyword-only hits carry no cosine, so the KB embeds the question and hits to apply the floor
    with ragkit.open(built_kb, create=False) as kb:
        hits = kb.search("Who won the FIFA World Cup in 1998? The keys.", mode="keyword")
        assert hits and all(h.dense is None for h in hits)
        ans = kb.answer("Who won the FIFA World Cup in 1998?", hits, kb.answer_options())
        assert ans.abstained and ans.relevance is not None and ans.relevance < 0.35
        assert [f.kind for f in ans.flags] == ["low_relevance"]
        unfloored = kb.answer(
            "Who won the FIFA World Cup in 1998?", hits, kb.answer_options(min_relevance=0.0, max_new_tokens=4)
        )
        assert unfloored.relevance == ans.relevance  # measured and reported with the floor off too
