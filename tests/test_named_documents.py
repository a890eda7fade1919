"""Rule DN: a question that names some of the KB's documents searches them first (ragkit/indexes/named.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ragkit
from ragkit.indexes.named import DocumentNames, document_name, named_first, written_names

# du's page shares the question's words ("print", "line", "only", "once"); sort's entry says it in its own words
SORT = (
    "# sort\n\nsort - sort lines of text files.\n\n"
    "-u, --unique: with -c, check for strict ordering; without -c, output only the first of an equal run.\n"
)
DU = (
    "# du\n\ndu - estimate file space usage. du can print each directory line only once, and print the sizes "
    "once per line; -0 ends each output line with NUL, not newline.\n"
)
QUESTION = "I want sort to print each distinct line only once. Which flag?"


def test_a_document_is_named_by_its_file_name_up_to_the_first_dot() -> None:
    assert document_name("/usr/share/man/man1/pg_basebackup.1.gz") == "pg-basebackup"
    assert document_name("/docs/git-stash.1.gz") == "git-stash"
    assert document_name("https://example.com/guide/install.html?x=1") == "install"
    words = written_names("How do I make git stash keep the index? Is pg_basebackup's -R set?")
    assert {"git-stash", "pg-basebackup", "stash", "index"} <= words
    assert "git-stash-keep" not in words  # two words at most


def test_named_first_keeps_order_and_drops_repeats() -> None:
    assert named_first([3, 1], [1, 2, 3, 4]) == [3, 1, 2, 4]


def _kb(tmp_path: Path, files: dict[str, str], named: bool) -> ragkit.KnowledgeBase:
    folder = tmp_path / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    kb = ragkit.open(tmp_path / "kb", **{"retrieval.mode": "keyword", "retrieval.named_documents": named})
    kb.ingest([folder])
    return kb


@pytest.mark.usefixtures("hashed")
def test_the_named_manual_comes_first_in_a_kb_of_several(tmp_path: Path) -> None:
    with _kb(tmp_path, {"sort.md": SORT, "du.md": DU}, named=False) as kb:
        assert kb.search(QUESTION, 1)[0].chunk.source_name == "du.md"  # what users of a shared KB met
    with _kb(tmp_path, {"sort.md": SORT, "du.md": DU}, named=True) as kb:
        hits = kb.search(QUESTION, 2)
        assert [h.chunk.source_name for h in hits] == ["sort.md", "du.md"]  # the rest still fill up to k
        assert [h.rank for h in hits] == [1, 2]
        # naming no document, or searching under a filter that excludes the named one, is as before
        assert kb.search("Which flag prints each line only once?", 1)[0].chunk.source_name == "du.md"
        assert [h.chunk.source_name for h in kb.search(QUESTION, 2, filters="source=*du.md")] == ["du.md"]


@pytest.mark.usefixtures("hashed")
def test_a_kb_of_one_document_or_a_question_naming_every_one_is_searched_as_before(tmp_path: Path) -> None:
    with _kb(tmp_path / "one", {"du.md": DU}, named=True) as kb:
        assert DocumentNames(kb.store.sql.engine).named("What does du print?") == ()
    with _kb(tmp_path / "two", {"sort.md": SORT, "du.md": DU}, named=True) as kb:
        names = DocumentNames(kb.store.sql.engine)
        assert names.named("Do sort and du both print lines?") == ()
        (sort_id,) = names.named(QUESTION)
        (tmp_path / "two" / "docs" / "sort.md").unlink()
        kb.ingest([tmp_path / "two" / "docs"], prune=True)  # a write: the names are read again
        assert names.named(QUESTION) == ()
