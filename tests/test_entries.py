"""Rule E: an option the answer names is answered by its own entry in the sources (ragkit.entries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkit.answering import AnswerOptions, answer_question
from ragkit.entries import rival_entry, source_entries
from ragkit.testing import HashEmbedder, ScriptedGenerator, make_hit

# binutils' nm(1) as ragkit reads it: each option over its text
NM = (
    "-n, -v, --numeric-sort\n"
    "Sort symbols numerically by their addresses, rather than alphabetically by their names.\n\n"
    "-p, --no-sort\n"
    "Do not bother to sort the symbols in any order; print them in the order encountered.\n\n"
    "-P, --portability\n"
    'Use the POSIX.2 standard output format instead of the default format. Equivalent to "-f posix".\n\n'
    "-r, --reverse-sort\n"
    "Reverse the order of the sort (whether numeric or alphabetic); let the last come first.\n"
)
ASKED = "Which nm option prints symbols in the order encountered, without sorting them?"


def test_an_option_copied_from_the_entry_beside_the_right_one_has_a_rival() -> None:
    rival = rival_entry(ASKED, "The nm option that prints symbols in the order encountered is `-n` [1].", [NM])
    assert rival is not None and rival.named == "-n" and rival.rival == "-p, --no-sort"
    assert rival.own < 0.5 * rival.score and rival.score >= 0.25
    # the option whose entry says it, by either of its names, has none
    assert rival_entry(ASKED, "The `-p` option [1].", [NM]) is None
    assert rival_entry(ASKED, "--no-sort [1].", [NM]) is None


def test_only_questions_asking_for_a_named_thing_and_answers_naming_one_are_read() -> None:
    assert rival_entry("How does nm order the symbols it prints?", "-n [1].", [NM]) is None
    assert rival_entry(ASKED, "In the order encountered [1].", [NM]) is None
    # an option no entry heads (named only in a sentence) is left to the other checks
    assert rival_entry(ASKED, "--defined-only [1].", [NM]) is None


def test_an_entry_the_question_names_is_its_subject_not_a_rival() -> None:
    initdb = (
        "-D directory, --pgdata=directory\n"
        "This option specifies the directory where the database cluster should be stored. This is the only "
        "information required by initdb, but you can avoid writing it by setting the environment variable.\n\n"
        "PGDATA\n"
        "Specifies the directory where the database cluster is to be stored; can be overridden using the -D "
        "option.\n"
    )
    question = "Which environment variable can take the place of initdb's -D option?"
    assert rival_entry(question, "PGDATA [1].", [initdb]) is None


def test_a_tag_line_over_another_shares_the_entry_below() -> None:
    sed = (
        "'-i[SUFFIX]'\n'--in-place[=SUFFIX]'\n     This option specifies that files are to be edited in-place.\n\n"
        "'-n'\n'--quiet'\n     By default, sed prints out the pattern space at the end of each cycle.\n"
    )
    tag, text = source_entries(sed)[0]
    assert "-i[SUFFIX]" in tag and "--in-place" in tag and "edited in-place" in text
    assert rival_entry("Which sed option edits files in place?", "The `-i` option [1].", [sed]) is None


def test_ask_withholds_a_neighbours_option_as_ungrounded_and_says_which_entry_fits() -> None:
    hits = [make_hit(1, NM, "/usr/share/man/man1/nm.1.gz", dense=0.6)]
    reply = "The nm option that prints symbols in the order encountered, without sorting them, is `-n` [1]."
    ans = answer_question(ASKED, hits, ScriptedGenerator([reply]), AnswerOptions(), embed=HashEmbedder().embed)
    assert ans.abstained and ans.draft == reply
    (flag,) = [f for f in ans.flags if f.kind == "ungrounded"]
    assert "-n" in flag.detail and "-p, --no-sort" in flag.detail
    # the check is one of the grounding checks: off with them
    off = AnswerOptions(min_grounding=0, min_coverage=0)
    kept = answer_question(ASKED, hits, ScriptedGenerator([reply]), off, embed=HashEmbedder().embed)
    assert not any(f.kind == "ungrounded" for f in kept.flags)


DIFF = (
    "--color[=WHEN]\n"
    "color output; WHEN is 'never', 'always', or 'auto'; plain --color means --color='auto'\n\n"
    "AUTHOR\n\n"
    "Written by Paul Eggert, Mike Haertel, David Hayes, Richard Stallman, and Len Tower.\n\n"
    "GNU diffutils 3.8 is free software.\n"
)
FIND = "-files0-from file\nRead the starting points from file instead of the command line. Added in 4.9.0.\n"


def test_a_version_from_a_sentence_that_never_names_the_changed_thing_is_undated() -> None:
    from ragkit.entries import undated_change

    question = "Which version of GNU diffutils added the --color option?"
    assert undated_change(question, "The --color option was added in version 3.8 [1].", [DIFF]) == ("3.8", ("--color",))
    # the version of a change stated beside its name, and a version no source holds (left to other checks)
    asked = "In which findutils version was -files0-from added?"
    assert undated_change(asked, "In findutils 4.9.0 [1].", [FIND]) is None
    assert undated_change(question, "In version 3.4 [1].", [DIFF]) is None
    # not a change asked for, or no named thing: not read
    assert undated_change("Which version of diffutils is this page for?", "3.8 [1].", [DIFF]) is None
    assert undated_change("Which version of GNU diffutils added colours?", "3.8 [1].", [DIFF]) is None


def test_ask_withholds_an_undated_version_as_ungrounded() -> None:
    hits = [make_hit(1, DIFF, "/usr/share/man/man1/diff.1.gz", dense=0.6)]
    question = "Which version of GNU diffutils added the --color option?"
    reply = "The --color option was added in GNU diffutils version 3.8 [1]."
    ans = answer_question(question, hits, ScriptedGenerator([reply]), AnswerOptions(), embed=HashEmbedder().embed)
    assert ans.abstained and ans.draft == reply
    (flag,) = [f for f in ans.flags if f.kind == "ungrounded"]
    assert flag.detail == "the sources give 3.8 only in sentences that never name --color"


def test_an_entry_runs_on_past_a_blank_line_to_the_next_tag() -> None:
    # dmesg(1): the example under -l, --level holds the question's words; rule E read the entry short (trial 54)
    dmesg = (
        "-k, --kernel\nPrint kernel messages.\n\n"
        "-l, --level list\nRestrict output to the given (comma-separated) list of levels. For example:\n\n"
        "dmesg --level=err,warn\n\nwill print error and warning messages only.\n\n"
        "-J, --json\nUse JSON output format. The log priority level is not decoded by default.\n"
    )
    (_, kernel), (tag, level), (_, json_entry) = source_entries(dmesg)
    assert tag == "-l, --level list" and "err,warn" in level and "warning messages only" in level
    assert kernel.startswith("-k") and json_entry.startswith("-J")
    question = "Which dmesg option limits output to chosen priority levels such as err and warn?"
    assert rival_entry(question, "The dmesg option is --level [1].", [dmesg]) is None


def test_entry_order_puts_the_chunk_whose_entry_matches_the_question_first() -> None:
    from ragkit.entries import entry_order

    numeric, no_sort = NM.split("-p, --no-sort")
    chunks = ["SYNOPSIS\nnm [-n] [-p] [-r]", numeric, "-p, --no-sort" + no_sort]
    assert entry_order(ASKED, chunks)[0] == 2  # -p's entry holds every word asked
    assert entry_order("How does nm order symbols?", chunks) is None  # not a question asking for a named thing


ZAP = (
    "-a, --all\nPrint every symbol in the file, debugging symbols included.\n\n"
    "-n, --numeric-sort\nSymbols: order encountered, order encountered, order encountered, order encountered.\n\n"
    "-p, --no-sort\nPrint the symbols in the order encountered, without sorting them. This is useful when the "
    "input is large and sorting would otherwise dominate the run time of the whole listing.\n"
)


def test_search_with_entries_rescoring_reorders_a_which_option_questions_head(tmp_path: Path, hashed: None) -> None:
    """Rule O through a KB: retrieval.rescore = "entries" reorders the head by entry_order; rerank=False and other
    questions keep the plain order."""
    import ragkit
    from ragkit.entries import entry_order

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zap.txt").write_text(ZAP, encoding="utf-8")
    question = "Which zap option prints the symbols in the order encountered?"
    settings = {"chunking.max_tokens": 40, "chunking.overlap": 0}  # words, with the hashed fixture
    with ragkit.open(tmp_path / "kb", **settings) as kb:
        kb.ingest([tmp_path / "docs"])
        plain = kb.search(question, 20, mode="keyword")
    # keyword search puts the chunk of -a and -n first ("order encountered" four times); -p's entry holds the question
    assert "--numeric-sort" in plain[0].chunk.text and "--no-sort" in plain[1].chunk.text
    order = entry_order(question, [h.chunk.text for h in plain])
    assert order == [1, 0]
    expected = [plain[j].chunk.id for j in order]
    with ragkit.open(tmp_path / "kb", **settings, **{"retrieval.rescore": "entries"}) as kb:
        assert [h.chunk.id for h in kb.search(question, 2, mode="keyword")] == expected
        unranked = kb.search(question, 2, mode="keyword", rerank=False)
        assert [h.chunk.id for h in unranked] == [h.chunk.id for h in plain]
        other = "How does zap print symbols in the order encountered?"  # asks for no named thing: order kept
        assert [h.chunk.id for h in kb.search(other, 2, mode="keyword")] == [
            h.chunk.id for h in kb.search(other, 2, mode="keyword", rerank=False)
        ]


def _fixed_embed(vectors: dict[str, list[float]]):
    """Unit vectors looked up by how a text begins (a deterministic stand-in for the embedder)."""
    import numpy as np

    def embed(texts: list[str]) -> np.ndarray:
        rows = np.array([next(v for k, v in vectors.items() if t.startswith(k)) for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return embed


def test_meaning_order_alternates_the_nearest_entry_with_the_given_order() -> None:
    from ragkit.entries import meaning_order

    chunks = [
        "zap lists the symbols of an object file.",  # no entry: keeps its turn in the given order only
        "-a, --all\nPrint every symbol.\n\n-n, --numeric-sort\nSort by address.\n",
        "-p, --no-sort\nPrint them as found.\n",
    ]
    question = "I want zap to leave the symbols as they are in the file; which option?"
    embed = _fixed_embed({question: [1, 0], "-a, --all": [0, 1], "-n, --numeric": [0.2, 1], "-p, --no-sort": [1, 0.1]})
    # by meaning: -p's chunk (2), then the -a/-n chunk (1), then the entry-less one (0); alternated with 0, 1, 2
    assert meaning_order(question, chunks, embed) == [2, 0, 1]
    how = "How do I get zap to keep the order of the file?"  # a how-to question is read too
    embed_how = _fixed_embed({how: [0, 1], "-a, --all": [0, 1], "-n, --numeric": [0.2, 1], "-p, --no-sort": [1, 0]})
    assert meaning_order(how, chunks, embed_how) == [1, 0, 2]
    assert meaning_order("What does zap print?", chunks, embed) is None  # neither kind of question
    assert meaning_order(question, [chunks[0]], embed) is None  # no entry in view


@pytest.mark.slow
def test_meaning_order_finds_the_entry_a_user_worded_question_means_with_minilm(tmp_path: Path) -> None:
    """Rule M through the bundled MiniLM: asked in a user's words that share no word with the right entry, the chunk
    of xxd's -u comes first, where rule O's word share puts another entry's chunk first."""
    from ragkit.embedding import SentenceTransformerEmbedder
    from ragkit.entries import entry_order, meaning_order

    chunks = [
        "-c cols | -cols cols\nFormat <cols> octets per line. Default 16 (-i: 12, -ps: 30, -b: 6).\n\n"
        "-p | -ps | -postscript | -plain\nOutput in postscript continuous hex dump style. Also known as plain "
        "hex dump style.\n",
        "-s [+][-]seek\nStart at <seek> bytes abs. (or rel.) infile offset.\n\n"
        "-u\nUse upper case hex letters. Default is lower case.\n",
    ]
    question = "My dump shows a-f in small letters and our spec wants capitals per line. Which xxd option?"
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert entry_order(question, chunks) == [0, 1]  # "per line" is -c's
    assert meaning_order(question, chunks, embedder.embed) == [1, 0]


def test_search_with_meaning_rescoring_reorders_a_how_to_questions_head(tmp_path: Path, hashed: None) -> None:
    """Rule M through a KB: retrieval.rescore = "meaning" reorders the head by meaning_order under the KB's own
    embedder, for a how-to question too (rule O leaves those alone); rerank=False keeps the plain order."""
    import ragkit
    from ragkit.entries import meaning_order
    from ragkit.testing import HashEmbedder

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zap.txt").write_text("zap lists symbols.\n\n" + ZAP, encoding="utf-8")
    question = "How do I get zap to print the symbols in the order encountered?"
    settings = {"chunking.max_tokens": 40, "chunking.overlap": 0}
    with ragkit.open(tmp_path / "kb", **settings) as kb:
        kb.ingest([tmp_path / "docs"])
        plain = kb.search(question, 20, mode="keyword")
    order = meaning_order(question, [h.chunk.text for h in plain], HashEmbedder(64, name="hash").embed)
    assert order is not None and sorted(order) == list(range(len(plain))) and order != sorted(order)
    expected = [plain[j].chunk.id for j in order]
    with ragkit.open(tmp_path / "kb", **settings, **{"retrieval.rescore": "meaning"}) as kb:
        assert [h.chunk.id for h in kb.search(question, 20, mode="keyword")] == expected
        unranked = kb.search(question, 20, mode="keyword", rerank=False)
        assert [h.chunk.id for h in unranked] == [h.chunk.id for h in plain]


def test_a_version_closing_one_entry_does_not_date_the_next_entrys_option() -> None:
    # curl(1) (trial 60): "Added in 7.52.0." ends --retry-connrefused's text, just above --retry-delay's tag (rule N');
    # the page gives --retry-delay no version: the "Added in 7.12.3." below is made up, a version its own entry states
    from ragkit.entries import undated_change

    curl = (
        "--retry-connrefused\nIn addition to the other conditions, consider ECONNREFUSED as a transient error too.\n\n"
        "See also --retry and --retry-all-errors. Added in 7.52.0.\n\n"
        "--retry-delay <seconds>\nMake curl sleep this amount of time before each retry. Added in 7.12.3.\n"
    )
    question = "Which curl version added the --retry-delay option?"
    assert undated_change(question, "It was added in curl 7.52.0 [1].", [curl]) == ("7.52.0", ("--retry-delay",))
    assert undated_change(question, "It was added in curl 7.12.3 [1].", [curl]) is None


def test_a_tag_listing_spellings_between_bars_heads_its_own_entry() -> None:
    """xxd(1) and ssh-keygen(1) list an option's spellings or arguments between bars; the bars are not columns."""
    xxd = (
        "-u\nUse upper case hex letters. Default is lower case.\n\n"
        "-v | -version\nShow version string.\n\n"
        "-n name  |  -name name\nOverride the variable name output when -i is used.\n\n"
        "-t dsa | ecdsa | ecdsa-sk | ed25519 | ed25519-sk | rsa\nSpecifies the type of key to create.\n"
    )
    entries = source_entries(xxd)
    assert [tag for tag, _ in entries] == [
        "-u",
        "-v | -version",
        "-n name  |  -name name",
        "-t dsa | ecdsa | ecdsa-sk | ed25519 | ed25519-sk | rsa",
    ]
    assert "version" not in entries[0][1]  # -u's entry stops where -v's begins
    table = "name | value | default\nA row of a table, not an entry.\n"
    assert source_entries(table) == []
