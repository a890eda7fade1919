"""Rule DN: a question that names some of the KB's documents searches them first (ragkit/indexes/named.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ragkit
from ragkit.indexes.named import DocumentNames, document_name, listed_commands, named_first, noun_names, written_names

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


def test_a_name_written_only_as_an_ordinary_noun_names_nothing() -> None:
    # rule DN2: "my script" is the user's script, not script(1); "the ls command", "a flock(1) option" are programs
    assert noun_names("In my script, how does ssh find the agent?") >= {"script"}
    assert "script" in noun_names("The backup script should wipe the old roles.")
    assert "column" in noun_names("Spell out the column names in every statement.")
    assert not {"ls", "flock", "xxd"} & noun_names("In the ls command, a flock(1) option, an xxd flag")
    # one plain use is enough: "script" names script(1) here
    assert "script" not in noun_names("My script runs script -q to record a session.")
    assert "git-stash" not in noun_names("How do I make git stash keep the index?")


def test_a_manual_page_is_also_named_by_the_commands_its_name_section_lists() -> None:
    first = "NAME\n\nbzip2, bunzip2 - a block-sorting file compressor, v1.0.8 bzcat - decompresses files to stdout"
    assert listed_commands(first) == {"bzip2", "bunzip2", "bzcat"}
    assert listed_commands("NAME\n\nzstd - zstd, zstdmt, unzstd - compress .zst files") >= {"zstd", "zstdmt", "unzstd"}
    assert listed_commands("Overview\n\nfoo, bar - not a manual's NAME section") == set()


# a real roff page through the man reader: its NAME section lists bunzip2, which the question uses; cp's page
# shares more of the question's words
BZIP2_PAGE = (
    ".TH BZIP2 1\n.SH NAME\nbzip2, bunzip2 \\- a block-sorting file compressor\n.br\n"
    "bzcat \\- decompresses files to stdout\n.SH OPTIONS\n.TP\n.B \\-f \\-\\-force\n"
    "Force overwrite of output files. Normally, bzip2 will not overwrite existing output files.\n"
)
CP_PAGE = (
    "# cp\n\ncp refuses to overwrite an existing file when run with -n; to clobber the existing file, "
    "run cp with -f: cp removes the existing file that refuses to open and tries again.\n"
)
BUNZIP2_QUESTION = (
    "bunzip2 refuses to run because report.txt already exists. How do I make it clobber the existing file?"
)


@pytest.mark.usefixtures("hashed")
def test_a_command_a_manual_page_lists_names_that_page(tmp_path: Path) -> None:
    with _kb(tmp_path / "off", {"bzip2.1": BZIP2_PAGE, "cp.md": CP_PAGE}, named=False) as kb:
        assert kb.search(BUNZIP2_QUESTION, 1)[0].chunk.source_name == "cp.md"  # without naming: cp's words win
    with _kb(tmp_path / "on", {"bzip2.1": BZIP2_PAGE, "cp.md": CP_PAGE}, named=True) as kb:
        names = DocumentNames(kb.store.sql.engine)
        assert len(names.named(BUNZIP2_QUESTION)) == 1
        assert names.named("What does bzcat print?") == names.named(BUNZIP2_QUESTION)
        assert kb.search(BUNZIP2_QUESTION, 1)[0].chunk.source_name == "bzip2.1"
        # "the bzip2 archive" is a noun; nothing else names a document, so the search is as before
        assert names.named("My job made the bzip2 archive; how do I clobber the existing file?") == ()
