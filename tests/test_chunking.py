from __future__ import annotations

import re

import pytest

from ragkit.chunking import chunk_document, split_text
from ragkit.connectors.parsing import build_document
from ragkit.testing import HashEmbedder

WS = HashEmbedder()  # whitespace words as tokens, plus two special tokens like [CLS] and [SEP]
_ws_offsets, _ws_count = WS.token_offsets, WS.count_tokens


def test_short_text_is_one_chunk() -> None:
    text = "one two three. four five"
    assert split_text(text, _ws_offsets(text), _ws_count, max_tokens=20, overlap=2) == [(0, len(text), 7)]


def test_windows_respect_limit_and_prefer_sentence_ends() -> None:
    text = " ".join(f"w{i}." if i % 5 == 4 else f"w{i}" for i in range(100))
    spans = split_text(text, _ws_offsets(text), _ws_count, max_tokens=22, overlap=0)
    assert all(tokens <= 22 for _, _, tokens in spans)
    assert all(text[s:e].endswith(".") for s, e, _ in spans[:-1])  # every cut after a sentence
    assert " ".join(text[s:e] for s, e, _ in spans) == text  # no overlap: the pieces rebuild the text


def test_overlap_repeats_tokens_inside_a_paragraph() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    spans = split_text(text, _ws_offsets(text), _ws_count, max_tokens=12, overlap=3)
    first, second = text[spans[0][0] : spans[0][1]].split(), text[spans[1][0] : spans[1][1]].split()
    assert first[-3:] == second[:3]
    assert text[spans[-1][0] : spans[-1][1]].endswith("w49")


def test_sections_and_pages_are_never_merged() -> None:
    doc = build_document(
        "x.md",
        [
            ("Intro", "Title", None),
            ("alpha beta", "NarrativeText", None),
            ("Usage", "Title", None),
            ("gamma", "NarrativeText", None),
        ],
        "h",
        {},
    )
    chunks = chunk_document(doc, _ws_count, _ws_offsets, max_tokens=50, overlap=0)
    assert [(c.section, c.text) for c in chunks] == [("Intro", "Intro\n\nalpha beta"), ("Usage", "Usage\n\ngamma")]
    assert [c.kinds for c in chunks] == [("NarrativeText", "Title"), ("NarrativeText", "Title")]
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text


def test_tables_stay_whole_when_they_fit() -> None:
    raw = [
        ("Prices", "Title", None),
        ("intro " * 10, "NarrativeText", None),
        ("item | price\nwidget | 3.5\ngadget | 7", "Table", None),
        ("outro " * 10, "NarrativeText", None),
    ]
    doc = build_document("x.md", raw, "h", {})
    chunks = chunk_document(doc, _ws_count, _ws_offsets, max_tokens=60, overlap=0)
    tables = [c for c in chunks if "Table" in c.kinds]
    assert [c.text for c in tables] == ["item | price\nwidget | 3.5\ngadget | 7"]
    assert all(c.section == "Prices" for c in chunks) and len(chunks) == 3


def test_pages_split_chunks() -> None:
    raw = [("page one text", "NarrativeText", 1), ("page two text", "NarrativeText", 2)]
    doc = build_document("x.pdf", raw, "h", {})
    chunks = chunk_document(doc, _ws_count, _ws_offsets, max_tokens=50, overlap=0)
    assert [c.page for c in chunks] == [1, 2]


def test_real_tokenizer_never_exceeds_minilm_window(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Real technical English (the Python reference topics) chunked with MiniLM's own tokenizer."""
    pydoc_topics = pytest.importorskip("pydoc_data.topics").topics
    raw = [
        item
        for name, body in list(pydoc_topics.items())[:12]
        for item in ((name, "Title", None), (body, "NarrativeText", None))
    ]
    doc = build_document("pydoc.txt", raw, "h", {})

    def count(text: str) -> int:
        return len(minilm_tokenizer(text, add_special_tokens=True)["input_ids"])

    def offsets(text: str) -> list[tuple[int, int]]:
        enc = minilm_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(o) for o in enc["offset_mapping"]]

    chunks = chunk_document(doc, count, offsets, max_tokens=256, overlap=32)
    assert len(chunks) > 50
    for c in chunks:
        assert count(c.text) <= 256, c.text[:80]
        assert c.token_count == count(c.text)
        assert doc.text[c.start : c.end] == c.text
    # nothing is lost: every word of the document is inside some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    words = [m for m in re.finditer(r"\w+", doc.text)]
    assert all(m.start() in covered for m in words)


def test_a_run_without_spaces_is_cut_into_bounded_chunks(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """A 300 KB word (a base64 blob, minified code) is one [UNK] token to WordPiece; it used to become one chunk."""

    def count(text: str) -> int:
        return len(minilm_tokenizer(text, add_special_tokens=True)["input_ids"])

    def offsets(text: str) -> list[tuple[int, int]]:
        enc = minilm_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(o) for o in enc["offset_mapping"]]

    blob = "x" * 300_000
    text = f"The backup runs nightly.\n\n{blob}\n\nRestores take an hour."
    assert len(offsets(text)) < 20  # the tokenizer really sees the blob as one token
    spans = split_text(text, offsets(text), count, max_tokens=256, overlap=32)
    assert max(e - s for s, e, _ in spans) <= 16 * 256
    assert all(tokens <= 256 for _, _, tokens in spans)
    covered = [False] * len(text)
    for s, e, _ in spans:
        covered[s:e] = [True] * (e - s)
    assert all(covered[i] for i, c in enumerate(text) if not c.isspace())  # nothing dropped
    assert text[spans[-1][0] : spans[-1][1]].endswith("Restores take an hour.")


def test_sentences_still_end_chunks_when_characters_bound_them() -> None:
    words = [("y" * 40 + ("." if i % 3 == 2 else "")) for i in range(200)]  # long words: the character cap binds
    text = " ".join(words)
    spans = split_text(text, _ws_offsets(text), _ws_count, max_tokens=64, overlap=0)
    assert all(e - s <= 16 * 64 for s, e, _ in spans)
    assert all(text[s:e].endswith(".") for s, e, _ in spans[:-1])
